"""Shared pieces of the dataset loaders: errors, box conventions, counted skips, image headers.

Every loader in this package returns detectron2-style records (``list[dict]``) following the
schema documented in :mod:`hpps_d2.data.datasets`. The helpers here keep the conventions in one
place: boxes are ``XYXY_ABS`` floats with ``x2 = x + w`` (no ``-1``, as every person-search code
base does), an unlabeled person is :data:`UNLABELED`, and every dropped or repaired item is counted
and logged by a :class:`SkipCounter` instead of disappearing silently.
"""
import collections
import logging
import os
from typing import Dict, Iterable, List, Optional, Sequence

from PIL import Image, UnidentifiedImageError

__all__ = [
    "UNLABELED",
    "DATASETS_README",
    "DatasetNotFoundError",
    "DatasetFormatError",
    "ImageReadError",
    "SkipCounter",
    "require_path",
    "image_size",
    "xywh_to_xyxy",
    "clip_box",
    "box_is_valid",
    "relabel_contiguous",
    "count_identities",
]

logger = logging.getLogger(__name__)

#: Internal id of a person whose identity is unknown (PRW's -2, SeqNet's 5555, NAE's -1).
UNLABELED = -1

#: Where users are told to look when a dataset is missing.
DATASETS_README = "datasets/README.md"


class DatasetNotFoundError(FileNotFoundError):
    """A dataset file or folder that a loader needs does not exist."""


class DatasetFormatError(ValueError):
    """An annotation file does not have the structure its dataset's format prescribes."""


class ImageReadError(OSError):
    """An image is missing or cannot be decoded."""


def require_path(path: str, dataset: str, section: str) -> str:
    """
    Return ``path`` if it exists, else raise a :class:`DatasetNotFoundError` that names it.

    Args:
        path: the file or folder the loader needs.
        dataset: human name of the dataset, e.g. ``"CrowdHuman"``.
        section: the heading of ``datasets/README.md`` that describes the expected layout.
    """
    if not os.path.exists(path):
        raise DatasetNotFoundError(
            f"{dataset}: expected '{path}' but it does not exist. Prepare the dataset as described "
            f"in {DATASETS_README}, section '{section}' (the root is $HPPS_DATASETS, default "
            "./datasets)."
        )
    return path


def image_size(path: str) -> tuple:
    """
    Read only the header of an image.

    Returns:
        (height, width)
    Raises:
        ImageReadError: naming ``path`` when the file is missing or not a decodable image.
    """
    try:
        with Image.open(path) as im:
            width, height = im.size
    except FileNotFoundError:
        raise ImageReadError(f"image file not found: {path}") from None
    except (UnidentifiedImageError, OSError) as e:
        raise ImageReadError(f"cannot read image header of {path}: {e}") from None
    return height, width


def xywh_to_xyxy(box: Sequence[float]) -> List[float]:
    """``[x, y, w, h]`` -> ``[x1, y1, x2, y2]`` with ``x2 = x + w`` (continuous convention)."""
    x, y, w, h = (float(v) for v in box)
    return [x, y, x + w, y + h]


def clip_box(box: Sequence[float], width: float, height: float) -> List[float]:
    """Clip an XYXY box to the image ``[0, width] x [0, height]``."""
    x1, y1, x2, y2 = box
    return [
        min(max(float(x1), 0.0), width),
        min(max(float(y1), 0.0), height),
        min(max(float(x2), 0.0), width),
        min(max(float(y2), 0.0), height),
    ]


def box_is_valid(box: Sequence[float]) -> bool:
    """True for an XYXY box of positive width and height."""
    return box[2] > box[0] and box[3] > box[1]


def relabel_contiguous(pids: Iterable[int]) -> Dict[int, int]:
    """
    Map the distinct labeled ids (``>= 0``) to ``0..N-1`` in ascending order of the raw id.

    ``UNLABELED`` is never part of the mapping.
    """
    return {pid: i for i, pid in enumerate(sorted({int(p) for p in pids if p >= 0}))}


def count_identities(records: List[dict]) -> int:
    """
    Number of distinct labeled identities in a list of records of any kind.

    Counts ``person_id`` of crop records, of every scene annotation (ignore regions excluded),
    and of the ``query`` of query records. ``UNLABELED`` is not an identity.
    """
    pids = set()
    for r in records:
        if "person_id" in r:
            pids.add(r["person_id"])
        if "query" in r:
            pids.add(r["query"]["person_id"])
        for a in r.get("annotations", ()):
            if not a.get("iscrowd", 0):
                pids.add(a["person_id"])
    pids.discard(UNLABELED)
    return len(pids)


class SkipCounter:
    """
    Counts items a loader drops or repairs, by reason, and logs one summary line.

    Example::

        skips = SkipCounter("CrowdHuman annotation_train.odgt")
        skips.add("zero-size box", f"line {n}")
        ...
        skips.log()   # "CrowdHuman annotation_train.odgt: dropped/repaired 3 items: zero-size box: 3 (e.g. line 17)"
    """

    def __init__(self, source: str, max_examples: int = 3):
        self.source = source
        self.max_examples = max_examples
        self.counts: Dict[str, int] = collections.Counter()
        self.examples: Dict[str, List[str]] = collections.defaultdict(list)

    def add(self, reason: str, where: Optional[str] = None, n: int = 1) -> None:
        self.counts[reason] += n
        if where is not None and len(self.examples[reason]) < self.max_examples:
            self.examples[reason].append(str(where))

    def __getitem__(self, reason: str) -> int:
        return self.counts.get(reason, 0)

    def total(self) -> int:
        return sum(self.counts.values())

    def summary(self) -> str:
        parts = []
        for reason, n in sorted(self.counts.items()):
            ex = self.examples.get(reason)
            parts.append(f"{reason}: {n}" + (f" (e.g. {', '.join(ex)})" if ex else ""))
        return f"{self.source}: dropped/repaired {self.total()} items: " + "; ".join(parts)

    def log(self, log: logging.Logger = logger) -> None:
        """Log the summary at WARNING level when anything was counted."""
        if self.counts:
            log.warning(self.summary())
