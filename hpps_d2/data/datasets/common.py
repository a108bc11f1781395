"""Shared pieces of the dataset loaders: errors, box conventions, counted skips, image headers.

Every loader in this package returns detectron2-style records (``list[dict]``) following the
schema documented in :mod:`hpps_d2.data.datasets`. The helpers here keep the conventions in one
place: boxes are ``XYXY_ABS`` floats with ``x2 = x + w`` (no ``-1``, as every person-search code
base does), an unlabeled person is :data:`UNLABELED`, and every dropped or repaired item is counted
and logged by a :class:`SkipCounter` instead of disappearing silently.

Paths built from annotation content (an image name, a ``file_name``, an ID) must stay inside the
dataset's folder: :func:`check_record_paths` refuses a record whose path leaves it, and while a
split is loaded inside :func:`confine_paths` (as the catalog does), the loaders refuse such a path
before they touch it: while a loader turns one annotation file into records it is inside
:func:`reading_annotation`, and every path it builds from that file's text goes through
:func:`confined_path` (so does :func:`image_size`), whose error names the annotation file and the
line or field. See :func:`path_inside` for the rule.
"""
import collections
import contextlib
import contextvars
import logging
import os
from typing import Dict, Iterable, List, Optional, Sequence

from PIL import Image, UnidentifiedImageError

__all__ = [
    "UNLABELED",
    "DATASETS_README",
    "ENV_VAR",
    "default_datasets_root",
    "get_datasets_root",
    "searching_root",
    "root_hint",
    "DatasetNotFoundError",
    "DatasetFormatError",
    "UnsafePathError",
    "ImageReadError",
    "SkipCounter",
    "require_path",
    "path_inside",
    "confine_paths",
    "reading_annotation",
    "confined_path",
    "check_record_paths",
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

#: Environment variable naming the datasets root.
ENV_VAR = "HPPS_DATASETS"

# The repository checkout holding this package (hpps_d2/data/datasets/common.py -> 3 folders up).
_REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

# The datasets root being searched by the split now loading (set by the catalog), or None.
_SEARCHED_ROOT: contextvars.ContextVar = contextvars.ContextVar("hpps_searched_root", default=None)


def default_datasets_root() -> str:
    """
    The datasets root when ``$HPPS_DATASETS`` is not set: the repository's ``datasets/`` folder
    (absolute, whatever the working directory), or ``./datasets`` of the working directory when
    the package is installed without its checkout (no ``datasets/`` folder next to it).
    """
    repo_datasets = os.path.join(_REPO, "datasets")
    return repo_datasets if os.path.isdir(repo_datasets) else os.path.abspath("datasets")


def get_datasets_root() -> str:
    """
    ``$HPPS_DATASETS`` (``~`` expanded, a relative value taken relative to the working
    directory), or :func:`default_datasets_root` when it is unset or empty; always absolute.
    """
    value = os.getenv(ENV_VAR, "")
    return os.path.abspath(os.path.expanduser(value)) if value else default_datasets_root()


@contextlib.contextmanager
def searching_root(root: str):
    """While active, a :class:`DatasetNotFoundError` names ``root`` as the datasets root searched."""
    token = _SEARCHED_ROOT.set(root)
    try:
        yield
    finally:
        _SEARCHED_ROOT.reset(token)


def root_hint() -> str:
    """
    The sentence ending a "missing dataset" error: which datasets root was searched and how to
    change it. The root is the one of the split being loaded (:func:`searching_root`), else
    :func:`get_datasets_root`.
    """
    searched = _SEARCHED_ROOT.get()
    value = os.getenv(ENV_VAR, "")
    if value:
        origin = f"${ENV_VAR} is set to '{value}'"
    else:
        default = default_datasets_root()
        in_repo = default == os.path.join(_REPO, "datasets")
        which = "the repository's datasets/ folder" if in_repo else "./datasets of the working directory"
        origin = f"${ENV_VAR} is not set, so the default root is {which} '{default}'"
    if searched:
        where = f"Searched the datasets root '{os.path.abspath(searched)}'"
    else:
        where = f"Datasets are looked for under the datasets root '{get_datasets_root()}'"
    return (
        f"{where} ({origin}); to read the datasets from another folder, "
        f"set {ENV_VAR}=/path/to/datasets (the folder holding PRW/, CUHK-SYSU/, ...)."
    )


class DatasetNotFoundError(FileNotFoundError):
    """
    A dataset file or folder that a loader needs does not exist.

    The message is completed with :func:`root_hint`: the datasets root that was searched and how
    to change it (``$HPPS_DATASETS``), so that every loader's "missing" error says it.
    """

    def __init__(self, message: str):
        if ENV_VAR not in message:  # a message that already says it (e.g. unpickled) keeps one
            message = f"{message} {root_hint()}"
        super().__init__(message)


class DatasetFormatError(ValueError):
    """An annotation file does not have the structure its dataset's format prescribes."""


class ImageReadError(OSError):
    """An image is missing or cannot be decoded."""


class UnsafePathError(DatasetFormatError):
    """A path taken from annotation content leaves its dataset's root folder."""


#: Record fields holding a path: top-level keys, or ``"outer.inner"`` for a nested dict.
PATH_FIELDS = ("file_name", "image_source.path", "sem_seg_file_name", "pan_seg_file_name")

# (root, split, readme section) of the split being loaded inside confine_paths(), or None.
_CONFINEMENT: contextvars.ContextVar = contextvars.ContextVar("hpps_confinement", default=None)


def _absolute(path: str) -> str:
    return path if os.path.isabs(path) else os.path.join(os.getcwd(), path)


def path_inside(path: str, root: str) -> bool:
    """
    Whether ``path`` stays inside the folder ``root``, judged on the path's text.

    A path that starts with ``root`` (as the loaders' ``os.path.join(root, ...)`` do) must have no
    ``..`` component after it; any other path must normalise (``os.path.normpath``) to ``root`` or
    below. An absolute name from an annotation file therefore fails (``os.path.join`` drops the
    root for it), and so does any ``..`` after the root, even one that would land back inside.
    Symbolic links are not resolved: a folder the user linked into the dataset (images on another
    disk) is trusted, and with ``..`` refused, annotation text cannot climb out through one.
    """
    raw, prefix = _absolute(path), _absolute(root).rstrip(os.sep) + os.sep
    if raw.startswith(prefix):
        return ".." not in raw[len(prefix) :].split(os.sep)
    norm, norm_root = os.path.normpath(raw), os.path.normpath(_absolute(root))
    return norm == norm_root or norm.startswith(norm_root.rstrip(os.sep) + os.sep)


# The annotation file a loader is turning into records (reading_annotation), or None.
_ANNOTATION: contextvars.ContextVar = contextvars.ContextVar("hpps_annotation", default=None)


def _unsafe(
    split: str, what: str, path: str, root: str, section: str, origin: str = ""
) -> UnsafePathError:
    where = f" (datasets/README.md, section '{section}')" if section else ""
    which = f"{origin}" if origin else "this split's annotation file"
    found = f" (found in {origin})" if origin else ""
    return UnsafePathError(
        f"{split}: {what} '{path}'{found} leaves the dataset root '{root}' (it resolves to "
        f"'{os.path.normpath(_absolute(path))}'). Paths in annotation files must be relative to "
        f"the dataset folder, without '..' or a leading '/': fix the image name / file_name / ID "
        f"in {which}{where}."
    )


@contextlib.contextmanager
def confine_paths(root: str, split: str, section: str = ""):
    """
    While active, :func:`image_size` refuses (:class:`UnsafePathError`) a path outside ``root``.

    Args:
        root: the dataset folder of the split being loaded.
        split: named in the error (the catalog name).
        section: the ``datasets/README.md`` heading of the dataset's layout, named in the error.
    """
    token = _CONFINEMENT.set((root, split, section))
    try:
        yield
    finally:
        _CONFINEMENT.reset(token)


@contextlib.contextmanager
def reading_annotation(path: str):
    """
    While active, a path refused by :func:`confined_path` or :func:`image_size` is said to come
    from the annotation file ``path``. Loaders enter it while they turn one file into records.
    """
    token = _ANNOTATION.set(path)
    try:
        yield
    finally:
        _ANNOTATION.reset(token)


def confined_path(path: str, where: Optional[str] = None, what: str = "image path") -> str:
    """
    Return ``path``; inside :func:`confine_paths`, refuse it first if it leaves the dataset root.

    Loaders call it on every path they build from annotation text, before the path is touched
    (stat, open, read). Outside :func:`confine_paths` (a loader called directly) it checks nothing.

    Args:
        where: the place in the annotation file of :func:`reading_annotation`, e.g. ``"line 3"``
            or ``"images[2].file_name"``.
        what: what the path is, named in the error.

    Raises:
        UnsafePathError: naming the split, the path, the root and the annotation file (with
            ``where``) that held it.
    """
    confinement = _CONFINEMENT.get()
    if confinement is not None and not path_inside(path, confinement[0]):
        root, split, section = confinement
        origin = _ANNOTATION.get() or ""
        if origin and where:
            origin += f", {where}" if where.startswith("line") else f" {where}"
        raise _unsafe(split, what, path, root, section, origin)
    return path


def check_record_paths(records: List[dict], root: str, split: str, section: str = "") -> None:
    """
    Refuse records with a path (:data:`PATH_FIELDS`) outside ``root`` (see :func:`path_inside`).

    Raises:
        UnsafePathError: naming the split, the record, the field, the path and the root.
    """
    # a compact record sequence names the records that decide for all (CropRecords)
    checks = getattr(records, "path_check_indices", None)
    for i in range(len(records)) if checks is None else checks().tolist():
        record = records[i]
        for field in PATH_FIELDS:
            outer, _, inner = field.partition(".")
            value = record.get(outer)
            if inner:
                value = value.get(inner) if isinstance(value, dict) else None
            if isinstance(value, str) and not path_inside(value, root):
                what = f"record {i} (image_id {record.get('image_id')!r}): field '{field}' ="
                raise _unsafe(split, what, value, root, section)


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
            f"in {DATASETS_README}, section '{section}'."
        )
    return path


def image_size(path: str) -> tuple:
    """
    Read only the header of an image.

    Returns:
        (height, width)
    The size is the stored one: an EXIF orientation tag is ignored, as by
    :func:`hpps_d2.data.image_io.read_image`.

    Raises:
        ImageReadError: naming ``path`` when the file is missing or not a decodable image.
        UnsafePathError: inside :func:`confine_paths`, when ``path`` leaves the dataset root
            (checked before the file is opened, by :func:`confined_path`).
    """
    confined_path(path)
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
    n = getattr(records, "num_identities", None)  # a compact record sequence knows (CropRecords)
    if n is not None:
        return int(n)
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

    def as_json(self) -> List[list]:
        """The counts as ``[[reason, count, examples], ...]`` (JSON-able), for a cached parse
        (:mod:`hpps_d2.data.protocol_cache`) to replay with :meth:`replay`."""
        return [[r, n, self.examples.get(r, [])] for r, n in self.counts.items()]

    def replay(self, counted: List[list]) -> None:
        """Add counts recorded by :meth:`as_json` (a cached load logs what the parse logged)."""
        for reason, n, examples in counted:
            self.counts[reason] += n
            self.examples[reason].extend(examples[: self.max_examples])

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
