"""
CrowdHuman (Shao et al., arXiv 1805.00123): crowded-scene pedestrian detection.

Layout under ``<root>/CrowdHuman`` (official zips extracted in place)::

    Images/<ID>.jpg                 train01-03 and val zips share one folder
    annotation_train.odgt           15,000 images
    annotation_val.odgt             4,370 images

Each ``.odgt`` line is one JSON object ``{"ID": str, "gtboxes": [...]}``; each gtbox has ``tag``
(``"person"`` or ``"mask"``), ``fbox``/``vbox``/``hbox`` as ``[x, y, w, h]`` and an optional
``extra`` dict (``ignore``, ``box_id``, ``occ``; any key may be missing).

Malformed input fails with a :class:`DatasetFormatError` naming ``<file>:<line> gtboxes[k]`` and the
field: a box that is not 4 finite numbers (NaN, infinite and boolean values are named as such), an
``extra`` that is not an object, an ``extra.ignore`` other than 0 or 1, a line that is not UTF-8.

Conventions (docs/datasets.md section 1): the training box is the full-body ``fbox``
(CrowdDet's ``gt_boxes_name``); ``"mask"`` boxes and boxes with ``extra.ignore == 1`` become ignore
regions (``iscrowd = 1``), as CrowdDet labels them -1. ``fbox`` covers occluded and out-of-frame
parts, so it is clipped to the image; boxes with non-positive width or height, or that lie fully
outside the image, are dropped. Both are counted and logged. Persons carry no identity
(``UNLABELED``): the data unification gives each box its own pseudo-identity.
"""
import json
import os
from typing import List, Optional

from detectron2.structures import BoxMode

from .catalog import standard_splits
from .common import (
    UNLABELED,
    DatasetFormatError,
    SkipCounter,
    box_is_valid,
    clip_box,
    confined_path,
    image_size,
    reading_annotation,
    require_path,
    xywh_to_xyxy,
)
from .coords import check_box

__all__ = ["load_crowdhuman", "parse_odgt_line", "SPLITS"]

_SECTION = "CrowdHuman"


def _box(gt: dict, key: str, where: str) -> Optional[List[float]]:
    if key not in gt:
        return None
    return xywh_to_xyxy(check_box(gt[key], where, key, "[x, y, w, h]"))


def _extra_ignore(gt: dict, where: str) -> bool:
    """``extra.ignore == 1``; ``extra`` must be an object and ``ignore`` 0 or 1 (both optional)."""
    extra = gt.get("extra")
    if extra is None:
        return False
    if not isinstance(extra, dict):
        raise DatasetFormatError(
            f"{where}: field 'extra' must be an object (ignore, box_id, occ), got {extra!r}"
        )
    ignore = extra.get("ignore", 0)
    if isinstance(ignore, bool) or ignore not in (0, 1):
        raise DatasetFormatError(f"{where}: field 'extra.ignore' must be 0 or 1, got {ignore!r}")
    return ignore == 1


def parse_odgt_line(line: str, where: str) -> dict:
    """
    Parse one ``.odgt`` line into ``{"ID": str, "gtboxes": list}``.

    Args:
        where: ``"<file>:<line number>"``, used in error messages.
    """
    try:
        obj = json.loads(line)
    except json.JSONDecodeError as e:
        raise DatasetFormatError(f"{where}: not a JSON object ({e.msg} at column {e.colno})") from None
    if not isinstance(obj, dict):
        raise DatasetFormatError(f"{where}: expected a JSON object, got {type(obj).__name__}")
    if not isinstance(obj.get("ID"), str):
        raise DatasetFormatError(f"{where}: missing string field 'ID'")
    if not isinstance(obj.get("gtboxes", []), list):
        raise DatasetFormatError(f"{where}: field 'gtboxes' must be a list")
    return obj


def load_crowdhuman(
    dataset_dir: str, split: str, image_dir: str = "Images", ext: str = ".jpg"
) -> List[dict]:
    """
    Load ``annotation_<split>.odgt`` as scene records.

    Args:
        dataset_dir: the CrowdHuman folder.
        split: ``"train"`` or ``"val"``.
        image_dir: image folder, relative to ``dataset_dir`` unless absolute.
        ext: image file extension (``.jpg`` for the official zips).

    Returns:
        list[dict]: scene records (see :mod:`hpps_d2.data.datasets`); person boxes have
        ``person_id = UNLABELED``, ignore regions ``iscrowd = 1``.
    """
    odgt = require_path(os.path.join(dataset_dir, f"annotation_{split}.odgt"), "CrowdHuman", _SECTION)
    img_root = require_path(os.path.join(dataset_dir, image_dir), "CrowdHuman", _SECTION)
    skips = SkipCounter(f"CrowdHuman {odgt}")
    records, seen = [], set()
    with open(odgt, "rb") as f, reading_annotation(odgt):
        for lineno, raw in enumerate(f, 1):
            where = f"{odgt}:{lineno}"
            try:
                line = raw.decode("utf-8-sig" if lineno == 1 else "utf-8")  # a BOM is harmless
            except UnicodeDecodeError as e:
                raise DatasetFormatError(
                    f"{where}: not UTF-8 text (byte {raw[e.start]:#04x} at column {e.start + 1}); "
                    "an .odgt file is UTF-8 JSON, one object per line"
                ) from None
            if not line.strip():
                continue
            obj = parse_odgt_line(line, where)
            image_id = obj["ID"]
            if image_id in seen:
                skips.add("duplicated image entry (later line dropped)", where)
                continue
            seen.add(image_id)
            file_name = confined_path(os.path.join(img_root, image_id + ext), f"line {lineno}")
            height, width = image_size(file_name)
            annos = []
            for k, gt in enumerate(obj.get("gtboxes", [])):
                bwhere = f"{where} gtboxes[{k}]"
                if not isinstance(gt, dict):
                    raise DatasetFormatError(f"{bwhere}: expected an object")
                fbox = _box(gt, "fbox", bwhere)
                if fbox is None:
                    raise DatasetFormatError(f"{bwhere}: missing field 'fbox'")
                tag = gt.get("tag")
                extra_ignore = _extra_ignore(gt, bwhere)
                if tag not in ("person", "mask"):
                    skips.add(f"unknown tag {tag!r} treated as ignore region", bwhere)
                ignore = tag != "person" or extra_ignore
                if not box_is_valid(fbox):
                    skips.add("non-positive box size (dropped)", bwhere)
                    continue
                clipped = clip_box(fbox, width, height)
                if not box_is_valid(clipped):
                    skips.add("box outside the image (dropped)", bwhere)
                    continue
                if clipped != fbox:
                    skips.add("box clipped to the image", bwhere)
                anno = {
                    "bbox": clipped,
                    "bbox_mode": BoxMode.XYXY_ABS,
                    "category_id": 0,
                    "person_id": UNLABELED,
                    "iscrowd": int(ignore),
                }
                for key in ("vbox", "hbox"):
                    b = _box(gt, key, bwhere)
                    if b is not None:
                        anno[key] = b
                annos.append(anno)
            if not any(a["iscrowd"] == 0 for a in annos):
                skips.add("image without any person box (kept, background only)", where)
            records.append(
                {
                    "file_name": file_name,
                    "image_id": image_id,
                    "height": height,
                    "width": width,
                    "annotations": annos,
                }
            )
    skips.log()
    return records


SPLITS = standard_splits(
    "crowdhuman",
    task="detection",
    domain="crowdhuman",
    loader=load_crowdhuman,
    subdir="CrowdHuman",
    section=_SECTION,
    published={"train": {"images": 15000}, "val": {"images": 4370}},
    labeled=False,
    evaluator_type="detection",
)
