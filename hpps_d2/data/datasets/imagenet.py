"""
ImageNet (ILSVRC2012 classification, Russakovsky et al., IJCV 2015) in the folder layout that
torchvision's ``ImageNet`` / ``ImageFolder`` read, and the synthetic stand-in written in it by
:mod:`hpps_d2.synth.writers.imagenet` (no person in any image).

Layout under ``<root>/imagenet``::

    LOC_synset_mapping.txt              optional: "<wnid> <name>" per line (ImageNet LOC files)
    train/<wnid>/<wnid>_<k>.JPEG
    val/<wnid>/ILSVRC2012_val_<8 digits>.JPEG

``val/`` is the layout after torchvision's val preparation, which moves every val image into the
folder of its wnid (torchvision datasets/imagenet.py L189-222, ``parse_val_archive``); the split
folder is ``<root>/<split>`` (L78-79).

Class index: ``class_id`` is the index of the wnid in sorted order, as ``ImageFolder`` assigns it
(torchvision datasets/folder.py L36-45, ``find_classes``: ``sorted`` folder names, then
``enumerate``), so a model trained here predicts torchvision's indices. With a
``LOC_synset_mapping.txt`` the sorted wnids are those of the mapping: every class folder must be
listed there (else :class:`DatasetFormatError`), and a split missing a class keeps the indices of
the others. Images are files with one of ImageFolder's extensions (folder.py L257,
``IMG_EXTENSIONS``), in sorted order per class (folder.py L84); a class folder without images is a
:class:`DatasetFormatError`, as ImageFolder refuses one (``make_dataset``: "Found no valid file").

Records (classification kind)::

    {"file_name": str, "image_id": "<wnid>/<file stem>", "class_id": int,
     "height": int, "width": int}    # from the image header

Counts (ILSVRC2012): 1,000 classes; 1,281,167 train and 50,000 val images.
"""

import os
from typing import Dict, List, Optional

from .catalog import standard_splits
from .common import (
    DatasetFormatError,
    DatasetNotFoundError,
    DATASETS_README,
    confined_path,
    image_size,
    reading_annotation,
    require_path,
)

__all__ = ["load_imagenet", "read_synset_mapping", "class_names", "IMG_EXTENSIONS", "SPLITS"]

_SECTION = "ImageNet"
_NAME = "ImageNet"
MAPPING = "LOC_synset_mapping.txt"
#: torchvision datasets/folder.py L257 (compared in lower case, as ``has_file_allowed_extension``).
IMG_EXTENSIONS = (".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp")


def read_synset_mapping(dataset_dir: str) -> Optional[Dict[str, str]]:
    """``{wnid: name}`` of ``<dataset_dir>/LOC_synset_mapping.txt``, or None without the file.

    Raises:
        DatasetFormatError: a line that is not ``<wnid> <name>``, or a wnid listed twice, naming
            the file and the line.
    """
    path = os.path.join(dataset_dir, MAPPING)
    if not os.path.isfile(path):
        return None
    out: Dict[str, str] = {}
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, start=1):
            line = line.strip()
            if not line:
                continue
            wnid, _, name = line.partition(" ")
            if not name.strip() or os.sep in wnid or "/" in wnid:
                raise DatasetFormatError(
                    f"{path}, line {n}: expected '<wnid> <class name>', got {line!r}"
                )
            if wnid in out:
                raise DatasetFormatError(f"{path}, line {n}: wnid {wnid!r} is listed twice")
            out[wnid] = name.strip()
    if not out:
        raise DatasetFormatError(f"{path}: no '<wnid> <class name>' line")
    return out


def class_names(dataset_dir: str) -> List[str]:
    """Class names in ``class_id`` order (from the mapping; the wnids of ``train/`` without it)."""
    mapping = read_synset_mapping(dataset_dir)
    if mapping is None:
        return _class_folders(os.path.join(dataset_dir, "train"))
    return [mapping[w] for w in sorted(mapping)]


def _class_folders(split_dir: str) -> List[str]:
    require_path(split_dir, _NAME, _SECTION)
    wnids = sorted(e.name for e in os.scandir(split_dir) if e.is_dir())
    if not wnids:
        raise DatasetNotFoundError(
            f"{_NAME}: no class folder in '{split_dir}' (expected <wnid>/ folders of images). "
            f"Prepare the dataset as described in {DATASETS_README}, section '{_SECTION}'."
        )
    return wnids


def load_imagenet(dataset_dir: str, split: str) -> List[dict]:
    """
    Args:
        dataset_dir: the ``imagenet`` folder.
        split: ``"train"`` or ``"val"``.

    Returns:
        list[dict]: classification records, classes in ``class_id`` order, files sorted per class.

    Raises:
        DatasetNotFoundError: ``dataset_dir/<split>`` is missing or holds no class folder.
        DatasetFormatError: a class folder absent from ``LOC_synset_mapping.txt`` or without images.
    """
    if split not in ("train", "val"):
        raise ValueError(f"ImageNet split must be 'train' or 'val', got {split!r}")
    require_path(dataset_dir, _NAME, _SECTION)
    split_dir = os.path.join(dataset_dir, split)
    wnids = _class_folders(split_dir)
    mapping = read_synset_mapping(dataset_dir)
    if mapping is not None:
        unknown = [w for w in wnids if w not in mapping]
        if unknown:
            shown = ", ".join(unknown[:5]) + (", ..." if len(unknown) > 5 else "")
            raise DatasetFormatError(
                f"{split_dir}: unknown wnid folder(s) {shown} ({len(unknown)} in all): not listed "
                f"in {os.path.join(dataset_dir, MAPPING)} (every class folder must be listed there)"
            )
        index = {w: i for i, w in enumerate(sorted(mapping))}
    else:
        index = {w: i for i, w in enumerate(wnids)}
    records = []
    for wnid in wnids:
        folder = os.path.join(split_dir, wnid)
        names = sorted(
            e.name
            for e in os.scandir(folder)
            if e.is_file() and e.name.lower().endswith(IMG_EXTENSIONS)
        )
        if not names:
            raise DatasetFormatError(
                f"{folder}: class folder without images (expected files ending in "
                f"{', '.join(IMG_EXTENSIONS)})"
            )
        with reading_annotation(folder):
            for name in names:
                path = confined_path(os.path.join(folder, name), f"file {name}")
                height, width = image_size(path)
                records.append(
                    {
                        "file_name": path,
                        "image_id": f"{wnid}/{os.path.splitext(name)[0]}",
                        "class_id": index[wnid],
                        "height": height,
                        "width": width,
                    }
                )
    return records


SPLITS = standard_splits(
    "imagenet",
    task="classification",
    domain="imagenet",
    loader=load_imagenet,
    subdir="imagenet",
    section=_SECTION,
    published={"train": {"images": 1281167}, "val": {"images": 50000}},
    labeled=False,
    evaluator_type="classification",
)
