"""
Dataset loaders: one pure function per format, registered in detectron2's catalogs at import.

Every loader is a pure function ``load_<dataset>(dataset_dir, split) -> list[dict]`` and every
record follows one of four kinds. Boxes are always ``[x1, y1, x2, y2]`` floats in absolute pixels
(``BoxMode.XYXY_ABS``) with ``x2 = x + w``; an unknown identity is ``UNLABELED`` (-1).

**Scene** (detection datasets; person-search train and gallery splits)::

    {
        "file_name": str,          # image path
        "image_id": str,           # unique within the split
        "height": int, "width": int,
        "annotations": [{
            "bbox": [x1, y1, x2, y2], "bbox_mode": BoxMode.XYXY_ABS, "category_id": 0,
            "person_id": int,      # >= 0 labeled; UNLABELED otherwise. Train splits: 0..N-1;
                                   # query/gallery splits: the dataset's raw test id
            "iscrowd": 0 | 1,      # 1 = ignore region (crowd, reflection, far group, ...)
            # optional: "vbox", "hbox" (CrowdHuman), "tags", "identity" (ECP)
        }, ...],
        "camera_id": int,          # optional (PRW: 1..6, 1-based as the dataset writes it)
        "ignore_regions": [...],   # optional (PoseTrack21: polygons [[x, y], ...])
    }

**Crop** (re-ID datasets)::

    {
        "file_name": str, "image_id": str,
        "person_id": int,          # train: 0..N-1; query/gallery: raw id; UNLABELED for LUPerson
        "camera_id": int,          # 0-based
        "image_source": {...},     # optional, for images not stored as files:
                                   # {"type": "lmdb", "path": lmdb_dir, "key": str}
                                   # {"type": "hdf5", "path": mat_file, "dataset": h5_name}
    }

**Query** (person-search query splits)::

    {
        "file_name": str, "image_id": str, "height": int, "width": int,
        "query": {"bbox": [x1, y1, x2, y2], "person_id": int},
        "camera_id": int,          # PRW
        "gallery_lists": {k: {...}},  # CUHK-SYSU: one protocol gallery per size k (see cuhk_sysu.py)
    }

**Classification** (ImageNet and its synthetic stand-in, generic pre-training; see imagenet.py)::

    {
        "file_name": str, "image_id": "<wnid>/<file stem>", "height": int, "width": int,
        "class_id": int,           # index of the wnid in sorted order (torchvision's ImageFolder)
    }

Bad input gets an error that names the file and what was expected
(:class:`~.common.DatasetNotFoundError`, :class:`~.common.DatasetFormatError`,
:class:`~.common.ImageReadError`), or, where the dataset's own convention drops or repairs an item
(zero-size boxes, out-of-image boxes, duplicates), a counted and logged skip
(:class:`~.common.SkipCounter`).
"""
from .builtin import ALL_SPLITS, get_datasets_root, register_all
from .common import (
    UNLABELED,
    DatasetFormatError,
    DatasetNotFoundError,
    ImageReadError,
    count_identities,
)

__all__ = [
    "ALL_SPLITS",
    "UNLABELED",
    "DatasetFormatError",
    "DatasetNotFoundError",
    "ImageReadError",
    "count_identities",
    "get_datasets_root",
    "register_all",
]
