"""
EuroCity Persons (Braun et al., "EuroCity Persons: A Novel Benchmark for Person Detection in Traffic
Scenes", TPAMI 41(8), 2019): pedestrian detection in 31 European cities, day and night.

Layout under ``<root>/ECP`` (official zips extracted in place; only the day part is registered)::

    day/img/{train,val}/<city>/<city>_<NNNNN>.png        1920 x 1024 images
    day/labels/{train,val}/<city>/<city>_<NNNNN>.json    one frame JSON per image

The label path is the image path with ``img`` replaced by ``labels`` and ``.png`` by ``.json``.
A frame JSON has ``identity == "frame"``, ``imagewidth``, ``imageheight`` and ``children``: objects
with ``identity``, corner boxes ``x0, y0, x1, y1`` (absolute pixels), ``tags`` (``occluded>40``,
``sitting-lying``, ...) and their own ``children`` (a rider's vehicle). The two wrapped forms the
ECPB benchmark kit accepts are unwrapped the same way: a file with ``@converter`` holds the frame at
``children[0].children[0]``, and one with ``identity == "seqlist"`` at ``children.children``.

Counts (docs/datasets.md section 2, uncertain, so not used as ``published``): more than 47,300
images and 238,200 persons in all; day split about 23,892 / 4,266 / 12,059 (train / val / test).

Which objects become what (the ECPB ``ignore_gt`` rules of the pedestrian evaluation, with
``ignore_other_vru=True``; each annotation keeps its ECP ``identity`` and ``tags``):

* ``pedestrian``: a person box (``iscrowd = 0``), unless tagged ``sitting-lying``, ``behind-glass``
  or ``depiction``, which make it an ignore region (``iscrowd = 1``). ECPB ignores the first two;
  ``depiction`` (posters, statues) is added here so that a picture of a person is never a positive.
* ``rider``: an ignore region, as ECPB does with ``ignore_other_vru=True`` (a rider detected as a
  pedestrian is not a false positive). The box is the rider's own box, without its vehicle; the
  vehicle children are not persons and are never read.
* ``person-group-far-away`` and ``rider+vehicle-group-far-away``: ignore regions (ECPB don't-care
  regions), except a ``person-group-far-away`` tagged ``depiction``, which is discarded.
* vehicles (``bicycle``, ``motorbike``, ..., their groups, ``co-rider``) and any other identity:
  skipped, they are not persons. An identity outside the documented vocabulary is also counted.

A coordinate or image size that is NaN, infinite or a boolean (``json`` accepts ``NaN``,
``Infinity`` and ``true``) is a :class:`DatasetFormatError` naming the file, ``children[k]`` and
the field.

Boxes are clipped to ``[0, imagewidth] x [0, imageheight]`` as ECPB's ``clipping_boxes`` does;
boxes of non-positive size, and boxes that lie fully outside the image, are dropped. Clips, drops
and exact duplicates (same identity and box twice in a frame) are counted and logged. Persons carry
no identity (``UNLABELED``).
"""

import json
import os
from typing import List, Optional

from detectron2.structures import BoxMode

from .catalog import standard_splits
from .common import (
    DATASETS_README,
    UNLABELED,
    DatasetFormatError,
    DatasetNotFoundError,
    ImageReadError,
    SkipCounter,
    box_is_valid,
    clip_box,
    confined_path,
    reading_annotation,
    require_path,
)
from .coords import check_coordinate, coordinate_problem

__all__ = ["load_ecp", "parse_ecp_frame", "ecp_annotation", "SPLITS"]

_SECTION = "EuroCity Persons"
_NAME = "EuroCity Persons"

#: Pedestrian tags that make a pedestrian an ignore region.
IGNORED_PEDESTRIAN_TAGS = ("sitting-lying", "behind-glass", "depiction")
#: Identities that become ignore regions (besides ignored pedestrians).
IGNORE_IDENTITIES = ("rider", "person-group-far-away", "rider+vehicle-group-far-away")
#: Identities that are not persons (ECP vocabulary, docs/datasets.md section 2).
NON_PERSON_IDENTITIES = (
    "bicycle",
    "buggy",
    "motorbike",
    "scooter",
    "tricycle",
    "wheelchair",
    "bicycle-group",
    "buggy-group",
    "motorbike-group",
    "scooter-group",
    "tricycle-group",
    "wheelchair-group",
    "co-rider",
)


def _read_json(path: str) -> dict:
    try:
        with open(path, "rb") as f:
            return json.load(f)
    except json.JSONDecodeError as e:
        raise DatasetFormatError(
            f"{path}:{e.lineno}: not a JSON file ({e.msg} at column {e.colno})"
        ) from None
    except UnicodeDecodeError as e:
        raise DatasetFormatError(f"{path}: not a UTF-8 JSON file ({e.reason})") from None


def parse_ecp_frame(obj, where: str) -> dict:
    """
    Return the ``frame`` object of an ECP label file, unwrapping the two wrapped forms.

    Args:
        obj: the decoded JSON.
        where: the file name, used in error messages.

    Returns:
        dict: the frame, with ``imagewidth`` and ``imageheight`` checked to be positive integers
        and ``children`` to be a list.
    """
    try:
        if isinstance(obj, dict) and "@converter" in obj:
            obj = obj["children"][0]["children"][0]
        elif isinstance(obj, dict) and obj.get("identity") == "seqlist":
            obj = obj["children"]["children"]
    except (KeyError, IndexError, TypeError):
        raise DatasetFormatError(
            f"{where}: a wrapped ECP label file ('@converter' or 'seqlist') must hold its frame at "
            "children[0].children[0] ('@converter') or children.children ('seqlist')"
        ) from None
    if not isinstance(obj, dict) or obj.get("identity") != "frame":
        got = obj.get("identity") if isinstance(obj, dict) else type(obj).__name__
        raise DatasetFormatError(f"{where}: expected an object with identity 'frame', got {got!r}")
    for key in ("imagewidth", "imageheight"):
        v = obj.get(key)
        problem = coordinate_problem(v)
        if problem is not None or v <= 0 or v != int(v):
            what = f" ({problem})" if problem not in (None, "not a number") else ""
            raise DatasetFormatError(
                f"{where}: field '{key}' must be a positive integer, got {v!r}{what}"
            )
    if not isinstance(obj.get("children", []), list):
        raise DatasetFormatError(f"{where}: field 'children' must be a list")
    return obj


def _number(obj: dict, key: str, where: str) -> float:
    v = obj.get(key)
    if coordinate_problem(v) == "not a number":
        raise DatasetFormatError(f"{where}: field '{key}' must be a number, got {v!r}")
    return check_coordinate(v, where, key)  # NaN, infinite, boolean: named as such


def ecp_annotation(child: dict, where: str) -> Optional[dict]:
    """
    Turn one object of a frame's ``children`` into an annotation, before clipping.

    Args:
        child: the ECP object (``identity``, ``x0``, ``y0``, ``x1``, ``y1``, ``tags``).
        where: ``"<file> children[k]"``, used in error messages.

    Returns:
        dict or None: ``{"bbox", "bbox_mode", "category_id", "person_id", "iscrowd", "identity",
        "tags"}``, or None for an object that is not a person (or a discarded depicted group).
    """
    if not isinstance(child, dict):
        raise DatasetFormatError(f"{where}: expected an object, got {type(child).__name__}")
    identity = child.get("identity")
    if not isinstance(identity, str):
        raise DatasetFormatError(f"{where}: missing string field 'identity'")
    if identity != "pedestrian" and identity not in IGNORE_IDENTITIES:
        return None
    tags = child.get("tags", [])
    if not (isinstance(tags, list) and all(isinstance(t, str) for t in tags)):
        raise DatasetFormatError(f"{where}: field 'tags' must be a list of strings, got {tags!r}")
    if identity == "person-group-far-away" and "depiction" in tags:
        return None
    if identity == "pedestrian":
        iscrowd = int(any(t in IGNORED_PEDESTRIAN_TAGS for t in tags))
    else:
        iscrowd = 1
    box = [_number(child, k, where) for k in ("x0", "y0", "x1", "y1")]
    return {
        "bbox": box,
        "bbox_mode": BoxMode.XYXY_ABS,
        "category_id": 0,
        "person_id": UNLABELED,
        "iscrowd": iscrowd,
        "identity": identity,
        "tags": list(tags),
    }


def _label_files(label_root: str) -> List[str]:
    """Every ``.json`` under ``label_root``, as paths relative to it, in sorted order."""
    files = []
    for dirpath, dirnames, filenames in os.walk(label_root):
        dirnames.sort()
        rel = os.path.relpath(dirpath, label_root)
        for name in sorted(filenames):
            if name.endswith(".json"):
                files.append(os.path.normpath(os.path.join(rel, name)))
    return files


def load_ecp(dataset_dir: str, split: str, time: str = "day") -> List[dict]:
    """
    Load the ECP frames of one split as scene records.

    Args:
        dataset_dir: the ECP folder (holding ``day/``).
        split: ``"train"`` or ``"val"`` (test labels are not public).
        time: ``"day"`` or ``"night"``.

    Returns:
        list[dict]: scene records (see :mod:`hpps_d2.data.datasets`) in sorted order of
        ``<city>/<city>_<NNNNN>``; ``image_id`` is ``<city>_<NNNNN>``; ``height``/``width`` come
        from the JSON. Person boxes have ``person_id = UNLABELED``, ignore regions ``iscrowd = 1``;
        every annotation keeps ``identity`` and ``tags``.
    """
    require_path(dataset_dir, _NAME, _SECTION)
    label_root = require_path(os.path.join(dataset_dir, time, "labels", split), _NAME, _SECTION)
    img_root = require_path(os.path.join(dataset_dir, time, "img", split), _NAME, _SECTION)
    rel_files = _label_files(label_root)
    if not rel_files:
        raise DatasetNotFoundError(
            f"{_NAME}: no .json label file under '{label_root}'. Prepare the dataset as described "
            f"in {DATASETS_README}, section '{_SECTION}'."
        )
    skips = SkipCounter(f"{_NAME} {label_root}")
    records, seen = [], set()
    for rel in rel_files:
        label_file = os.path.join(label_root, rel)
        image_id = os.path.splitext(os.path.basename(rel))[0]
        if image_id in seen:
            skips.add("duplicated frame name (later file dropped)", label_file)
            continue
        seen.add(image_id)
        frame = parse_ecp_frame(_read_json(label_file), label_file)
        width, height = int(frame["imagewidth"]), int(frame["imageheight"])
        with reading_annotation(label_file):  # refused before the image is looked for
            file_name = confined_path(os.path.join(img_root, os.path.splitext(rel)[0] + ".png"))
        if not os.path.exists(file_name):
            raise ImageReadError(f"image file not found: {file_name} (labels: {label_file})")
        annos, seen_objects = [], set()
        for k, child in enumerate(frame.get("children", [])):
            where = f"{label_file} children[{k}]"
            anno = ecp_annotation(child, where)
            if anno is None:
                identity = child["identity"]
                if identity not in NON_PERSON_IDENTITIES and identity not in IGNORE_IDENTITIES:
                    skips.add(f"unknown identity {identity!r} (skipped)", where)
                continue
            box = anno["bbox"]
            if not box_is_valid(box):
                skips.add("non-positive box size (dropped)", where)
                continue
            clipped = clip_box(box, width, height)
            if not box_is_valid(clipped):
                skips.add("box outside the image (dropped)", where)
                continue
            if clipped != box:
                skips.add("box clipped to the image", where)
                anno["bbox"] = clipped
            key = (anno["identity"], tuple(box))
            if key in seen_objects:
                skips.add("duplicated object, same identity and box (dropped)", where)
                continue
            seen_objects.add(key)
            annos.append(anno)
        if not any(a["iscrowd"] == 0 for a in annos):
            skips.add("image without any person box (kept, background only)", label_file)
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
    "ecp_day",
    task="detection",
    domain="ecp",
    loader=load_ecp,
    subdir="ECP",
    section=_SECTION,
    # ECP's image and box counts are uncertain (docs/datasets.md, [U]): none is published here.
    published={"train": {}, "val": {}},
    labeled=False,
    evaluator_type="detection",
)
