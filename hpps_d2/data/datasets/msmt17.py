"""
MSMT17 (Wei et al., "Person Transfer GAN to Bridge Domain Gap for Person Re-Identification",
CVPR 2018): person crops from 15 cameras of a campus, V1 and the face-blurred V2.

Layout under ``<root>/msmt17`` (``MSMT17_V1`` is used when present, else ``MSMT17_V2``)::

    MSMT17_V1/train/<pid4>/<img>.jpg     MSMT17_V1/test/<pid4>/<img>.jpg
    MSMT17_V2/mask_train_v2/...          MSMT17_V2/mask_test_v2/...   (also spelled mask_*_V2)
    MSMT17_V*/list_train.txt  list_val.txt  list_query.txt  list_gallery.txt

Each list line is ``<relative/path> <pid>``, the path relative to the train folder (``list_train``)
or the test folder (``list_query``, ``list_gallery``), e.g.
``0002/0002_001_03_0303morning_0001_0.jpg 2``. File names are taken from the list files as they
are (never rebuilt: V2 extensions vary). The camera is the third ``_`` field of the file name,
1-based (01..15); ``camera_id = int(name.split('_')[2]) - 1`` (0..14).

Protocol (the standard one of torchreid / fast-reid): ``msmt17_train`` is ``list_train`` only
(``list_val`` is not added), with person ids relabelled to ``0..N-1``; query and gallery keep the
raw test ids of the list files (0..3059, shared by both). Duplicated list lines are counted and
dropped; an image listed twice with two different person ids is a :class:`DatasetFormatError`
naming both lines. Images are only checked to exist, not opened.

Counts (docs/datasets.md section 3): 4,101 identities, 126,441 boxes, 15 cameras; train + val
32,621 images of 1,041 identities (the list_train / list_val split, 30,248 / 2,373, is not
verified, so ``msmt17_train`` has no published count); query 11,659 and gallery 82,161 images of
3,060 test identities.
"""

import os
from typing import List, Tuple

from .catalog import standard_splits
from .common import (
    DATASETS_README,
    DatasetFormatError,
    DatasetNotFoundError,
    ImageReadError,
    SkipCounter,
    confined_path,
    reading_annotation,
    relabel_contiguous,
    require_path,
)

__all__ = ["load_msmt17", "parse_msmt17_line", "find_msmt17", "SPLITS"]

_SECTION = "MSMT17"
_NAME = "MSMT17"
_NUM_CAMERAS = 15

#: Image folder of each list, per version: (train folder candidates, test folder candidates).
_IMAGE_DIRS = {
    "MSMT17_V1": (("train",), ("test",)),
    "MSMT17_V2": (("mask_train_v2", "mask_train_V2"), ("mask_test_v2", "mask_test_V2")),
}


def find_msmt17(dataset_dir: str) -> Tuple[str, str, str]:
    """
    Find the MSMT17 version folder and its image folders.

    Returns:
        (version_dir, train_dir, test_dir): absolute paths; ``MSMT17_V1`` wins over ``MSMT17_V2``.
    """
    require_path(dataset_dir, _NAME, _SECTION)
    for version, (train_names, test_names) in _IMAGE_DIRS.items():
        version_dir = os.path.join(dataset_dir, version)
        if not os.path.isdir(version_dir):
            continue
        found = []
        for names in (train_names, test_names):
            dirs = [os.path.join(version_dir, n) for n in names]
            existing = [d for d in dirs if os.path.isdir(d)]
            if not existing:
                raise DatasetNotFoundError(
                    f"{_NAME}: expected the image folder {' or '.join(repr(d) for d in dirs)} "
                    f"but it does not exist. Prepare the dataset as described in "
                    f"{DATASETS_README}, section '{_SECTION}'."
                )
            found.append(existing[0])
        return version_dir, found[0], found[1]
    raise DatasetNotFoundError(
        f"{_NAME}: expected '{os.path.join(dataset_dir, 'MSMT17_V1')}' or "
        f"'{os.path.join(dataset_dir, 'MSMT17_V2')}' but neither exists. Prepare the dataset as "
        f"described in {DATASETS_README}, section '{_SECTION}'."
    )


def parse_msmt17_line(line: str, where: str) -> Tuple[str, int, int]:
    """
    Parse one list-file line.

    Args:
        line: ``"<relative/path> <pid>"`` (trailing newline, CR included, allowed).
        where: ``"<file>:<line number>"``, used in error messages.

    Returns:
        (relative_path, pid, camera_id): ``camera_id`` 0-based (0..14).
    """
    fields = line.split()
    if len(fields) != 2:
        raise DatasetFormatError(
            f"{where}: expected '<relative/path> <pid>' (two fields separated by a space), "
            f"got {line.rstrip()!r}"
        )
    rel, pid_str = fields
    try:
        pid = int(pid_str)
    except ValueError:
        raise DatasetFormatError(
            f"{where}: expected an integer person id as second field, got {pid_str!r}"
        ) from None
    if pid < 0:
        raise DatasetFormatError(f"{where}: expected a person id >= 0, got {pid}")
    parts = os.path.basename(rel).split("_")
    try:
        camera = int(parts[2]) - 1
    except (IndexError, ValueError):
        raise DatasetFormatError(
            f"{where}: expected a file name 'PPPP_NNN_CC_...' with a 1-based camera number CC "
            f"as third '_' field, got {os.path.basename(rel)!r}"
        ) from None
    if not 0 <= camera < _NUM_CAMERAS:
        raise DatasetFormatError(
            f"{where}: camera number {parts[2]!r} of {os.path.basename(rel)!r} is outside "
            f"01..{_NUM_CAMERAS}"
        )
    return rel, pid, camera


def load_msmt17(dataset_dir: str, split: str) -> List[dict]:
    """
    Load one MSMT17 list as crop records.

    Args:
        dataset_dir: the folder holding ``MSMT17_V1`` or ``MSMT17_V2``.
        split: ``"train"``, ``"query"`` or ``"gallery"``.

    Returns:
        list[dict]: crop records ``{"file_name", "image_id", "person_id", "camera_id"}`` in list
        order; ``image_id`` is the list's relative path; ``person_id`` is ``0..N-1`` for train
        (in ascending order of the raw id) and the raw test id for query/gallery.
    """
    if split not in ("train", "query", "gallery"):
        raise ValueError(f"MSMT17 split must be 'train', 'query' or 'gallery', got {split!r}")
    version_dir, train_dir, test_dir = find_msmt17(dataset_dir)
    list_file = require_path(os.path.join(version_dir, f"list_{split}.txt"), _NAME, _SECTION)
    img_dir = train_dir if split == "train" else test_dir
    skips = SkipCounter(f"{_NAME} {list_file}")
    entries, seen = [], {}  # relative path -> (line number, pid) of its first listing
    with open(list_file, encoding="utf-8") as f, reading_annotation(list_file):
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            where = f"{list_file}:{lineno}"
            rel, pid, camera = parse_msmt17_line(line, where)
            confined_path(os.path.join(img_dir, rel), f"line {lineno}")  # before any stat
            if rel in seen:
                first_line, first_pid = seen[rel]
                if first_pid != pid:
                    raise DatasetFormatError(
                        f"{where}: image '{rel}' is listed with person id {pid} here but with "
                        f"person id {first_pid} at line {first_line} ({list_file}:{first_line}); "
                        "expected one identity per image"
                    )
                skips.add("duplicated list entry (later line dropped)", where)
                continue
            seen[rel] = (lineno, pid)
            entries.append((rel, pid, camera))
    if not entries:
        raise DatasetFormatError(f"{list_file}: expected '<relative/path> <pid>' lines, got none")
    missing = [rel for rel, _, _ in entries if not os.path.exists(os.path.join(img_dir, rel))]
    if missing:
        raise ImageReadError(
            f"image file not found: {os.path.join(img_dir, missing[0])} (listed in {list_file}; "
            f"{len(missing)} of {len(entries)} listed images are missing)"
        )
    mapping = relabel_contiguous(p for _, p, _ in entries) if split == "train" else None
    records = [
        {
            "file_name": os.path.join(img_dir, rel),
            "image_id": rel,
            "person_id": mapping[pid] if mapping is not None else pid,
            "camera_id": camera,
        }
        for rel, pid, camera in entries
    ]
    skips.log()
    return records


SPLITS = standard_splits(
    "msmt17",
    task="reid",
    domain="msmt17",
    loader=load_msmt17,
    subdir="msmt17",
    section=_SECTION,
    published={"train": {}, "query": {"images": 11659}, "gallery": {"images": 82161}},
    labeled=True,
    evaluator_type="reid",
)
