"""
PoseTrack21 person search (Doering et al., "PoseTrack21: A Dataset for Person Search,
Multi-Object Tracking and Multi-Person Pose Tracking", CVPR 2022).

Layout under ``<root>/PoseTrack21`` (docs/datasets.md section 8)::

    images/{train,val}/<video>/<frame6>.jpg
    posetrack_person_search/train.json    training scenes
    posetrack_person_search/val.json      the gallery: every image
    posetrack_person_search/query.json    one query per annotation

Each JSON is COCO-like: ``images[]`` with ``id``, ``file_name`` (relative to the dataset root)
and optional ``ignore_regions_x`` / ``ignore_regions_y`` (one list of coordinates per polygon);
``annotations[]`` with ``bbox`` ``[x, y, w, h]``, ``image_id``, ``person_id`` and ``id``.

Counts (paper): train 42,861 images / 5,474 identities (raw ids 11..7529); gallery 19,935 images
(1,656 ids in val.json); 1,313 query identities.

Conventions: train ids are remapped to ``0..N-1``; gallery and query keep the raw ``person_id``.
There is no unlabeled mark in the data; a negative id would become ``UNLABELED`` (counted). Boxes
are clipped to the image and dropped when of non-positive size or fully outside (counted). Ignore
regions become ``"ignore_regions"``: a list of polygons ``[[x, y], ...]``. The ``image_id`` of a
record is its ``file_name`` relative to the dataset root, so that a query finds its gallery image.
Every drop and every repair is counted and logged.

The query split's parse (``query.json`` and ``val.json``) is cached by
:mod:`hpps_d2.data.protocol_cache`; image sizes and the clipping of query boxes (and its counts)
are redone on every load.
"""

import json
import os
from typing import Dict, List, Tuple

import numpy as np
from detectron2.structures import BoxMode

from ..protocol_cache import load_or_build
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
    relabel_contiguous,
    require_path,
    xywh_to_xyxy,
)
from .coords import coordinate_problem

__all__ = ["load_posetrack21", "SPLITS"]

_NAME = "PoseTrack21"
_SECTION = "PoseTrack21"
_ANNO_DIR = "posetrack_person_search"
_FILES = {"train": "train.json", "gallery": "val.json", "query": "query.json"}
#: Bumped whenever the cached query table (:func:`_query_table`) changes.
_QUERY_CACHE_VERSION = 1


def _is_number(v) -> bool:
    return coordinate_problem(v) is None


def _name_bad_numbers(values, where: str, expected: str) -> None:
    """A NaN, infinite or boolean entry of a coordinate list is an error that says so."""
    if not isinstance(values, list):
        return
    for i, v in enumerate(values):
        problem = coordinate_problem(v)
        if problem not in (None, "not a number"):
            raise DatasetFormatError(
                f"{where}[{i}] is {problem} ({v!r}); expected {expected} of finite numbers"
            )


def _is_id(v) -> bool:
    return (isinstance(v, int) and not isinstance(v, bool)) or (isinstance(v, str) and v != "")


def _read_json(path: str, need_images: bool = True) -> dict:
    require_path(path, _NAME, _SECTION)
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except json.JSONDecodeError as e:
        raise DatasetFormatError(
            f"{path}: not valid JSON ({e.msg} at line {e.lineno} column {e.colno})"
        ) from None
    except UnicodeDecodeError as e:
        raise DatasetFormatError(f"{path}: not UTF-8 text ({e})") from None
    keys = ("images", "annotations") if need_images else ("annotations",)
    if not isinstance(data, dict) or not all(isinstance(data.get(k), list) for k in keys):
        raise DatasetFormatError(f"{path}: expected a JSON object with lists {keys}")
    return data


def _ignore_regions(im: dict, where: str, skips: SkipCounter) -> List[List[List[float]]]:
    xs, ys = im.get("ignore_regions_x"), im.get("ignore_regions_y")
    if xs is None and ys is None:
        return []
    if not (isinstance(xs, list) and isinstance(ys, list) and len(xs) == len(ys)):
        raise DatasetFormatError(
            f"{where}.ignore_regions_x/_y: expected two lists of polygons of the same length"
        )
    polygons = []
    for k, (px, py) in enumerate(zip(xs, ys)):
        _name_bad_numbers(px, f"{where}.ignore_regions_x[{k}]", "a list of x coordinates")
        _name_bad_numbers(py, f"{where}.ignore_regions_y[{k}]", "a list of y coordinates")
        if not (
            isinstance(px, list)
            and isinstance(py, list)
            and len(px) == len(py)
            and all(_is_number(v) for v in px + py)
        ):
            raise DatasetFormatError(
                f"{where}.ignore_regions_x[{k}]: expected x and y lists of numbers, equally long"
            )
        if len(px) < 3:
            skips.add("ignore polygon with fewer than 3 points (dropped)", where)
            continue
        polygons.append([[float(x), float(y)] for x, y in zip(px, py)])
    return polygons


def _parse_images(path: str, data: dict, skips: SkipCounter) -> Dict[object, dict]:
    """``images[]`` -> {id: {"file_name": str, "ignore_regions": list}}, in file order."""
    images: Dict[object, dict] = {}
    file_names = set()
    for i, im in enumerate(data.get("images", [])):
        where = f"{path} images[{i}]"
        if not isinstance(im, dict):
            raise DatasetFormatError(f"{where}: expected an object")
        if not _is_id(im.get("id")):
            raise DatasetFormatError(f"{where}.id: expected an integer id, got {im.get('id')!r}")
        file_name = im.get("file_name")
        if not isinstance(file_name, str) or not file_name:
            raise DatasetFormatError(f"{where}.file_name: expected a path, got {file_name!r}")
        if im["id"] in images:
            raise DatasetFormatError(f"{where}.id: id {im['id']!r} is used twice")
        if file_name in file_names:
            raise DatasetFormatError(f"{where}.file_name: '{file_name}' is listed twice")
        file_names.add(file_name)
        images[im["id"]] = {
            "file_name": file_name,
            "where": where,
            "ignore_regions": _ignore_regions(im, where, skips),
        }
    return images


def _parse_annotation(ann, where: str) -> Tuple[object, List[float], int]:
    """Validate one annotation; returns (image id, XYXY box as stored, person id)."""
    if not isinstance(ann, dict):
        raise DatasetFormatError(f"{where}: expected an object")
    bbox = ann.get("bbox")
    _name_bad_numbers(bbox, f"{where}.bbox", "[x, y, w, h]")
    if not (isinstance(bbox, list) and len(bbox) == 4 and all(_is_number(v) for v in bbox)):
        raise DatasetFormatError(f"{where}.bbox: expected [x, y, w, h] numbers, got {bbox!r}")
    if not _is_id(ann.get("image_id")):
        got = ann.get("image_id")
        raise DatasetFormatError(f"{where}.image_id: expected an image id, got {got!r}")
    pid = ann.get("person_id")
    if not (_is_number(pid) and pid == int(pid)):
        raise DatasetFormatError(f"{where}.person_id: expected an integer, got {pid!r}")
    return ann["image_id"], xywh_to_xyxy(bbox), int(pid)


def _fit_box(box: List[float], height: int, width: int, skips: SkipCounter, where: str):
    """Clip an XYXY box to the image; None (counted) when nothing of it remains."""
    if not box_is_valid(box):
        skips.add("non-positive box size (dropped)", where)
        return None
    clipped = clip_box(box, width, height)
    if not box_is_valid(clipped):
        skips.add("box outside the image (dropped)", where)
        return None
    if clipped != box:
        skips.add("box clipped to the image", where)
    return clipped


def _load_scenes(dataset_dir: str, split: str, skips: SkipCounter) -> List[dict]:
    path = os.path.join(dataset_dir, _ANNO_DIR, _FILES[split])
    data = _read_json(path)
    images = _parse_images(path, data, skips)
    per_image: Dict[object, list] = {image_id: [] for image_id in images}
    for j, ann in enumerate(data["annotations"]):
        where = f"{path} annotations[{j}]"
        image_id, box, pid = _parse_annotation(ann, where)
        if image_id not in images:
            raise DatasetFormatError(f"{where}.image_id: unknown image id {image_id!r}")
        if pid < 0:
            skips.add("negative person_id (unlabeled)", where)
            pid = UNLABELED
        per_image[image_id].append((where, box, pid))
    records = []
    for image_id, im in images.items():
        with reading_annotation(path):
            field = f"{im['where'][len(path) + 1:]}.file_name"  # images[i].file_name
            file_name = confined_path(os.path.join(dataset_dir, im["file_name"]), field)
        height, width = image_size(file_name)
        annos, seen = [], set()
        for where, box, pid in per_image[image_id]:
            box = _fit_box(box, height, width, skips, where)
            if box is None:
                continue
            if pid != UNLABELED and pid in seen:
                if split == "train":
                    skips.add("person labeled twice in one image (later set unlabeled)", where)
                    pid = UNLABELED
                else:
                    skips.add("person labeled twice in one image (both kept)", where)
            seen.add(pid)
            annos.append(
                {
                    "bbox": box,
                    "bbox_mode": BoxMode.XYXY_ABS,
                    "category_id": 0,
                    "person_id": pid,
                    "iscrowd": 0,
                }
            )
        if not annos:
            where = f"{im['where']} '{im['file_name']}'"
            skips.add("image without any person box (kept, background only)", where)
        records.append(
            {
                "file_name": file_name,
                "image_id": im["file_name"],
                "height": height,
                "width": width,
                "annotations": annos,
                "ignore_regions": im["ignore_regions"],
            }
        )
    if split == "train":
        mapping = relabel_contiguous(a["person_id"] for r in records for a in r["annotations"])
        for r in records:
            for a in r["annotations"]:
                a["person_id"] = mapping.get(a["person_id"], UNLABELED)
    return records


def _query_table(dataset_dir: str) -> Tuple[dict, dict]:
    """
    Parse ``query.json`` and find each query's image in ``val.json`` (the cached part).

    Returns:
        arrays: per annotation, ``box`` (N, 4) float64 (XYXY as stored), ``pid`` (N,) int64,
            ``rel`` (N,) str (the image's ``file_name``), ``field`` (N,) str (where that name
            was read, e.g. ``images[3].file_name``) and ``from_query`` (N,) bool (read in
            ``query.json``, else in ``val.json``).
        meta: ``query_ids``, each annotation's ``id`` as the file gives it (its index if none).
    """
    gallery_path = os.path.join(dataset_dir, _ANNO_DIR, _FILES["gallery"])
    query_path = os.path.join(dataset_dir, _ANNO_DIR, _FILES["query"])
    gallery = _parse_images(gallery_path, _read_json(gallery_path), SkipCounter(gallery_path))
    by_file = {im["file_name"]: image_id for image_id, im in gallery.items()}
    data = _read_json(query_path, need_images=False)
    query_images = _parse_images(query_path, data, SkipCounter(query_path))
    rows, query_ids = [], []
    for j, ann in enumerate(data["annotations"]):
        where = f"{query_path} annotations[{j}]"
        image_id, box, pid = _parse_annotation(ann, where)
        if pid < 0:
            raise DatasetFormatError(f"{where}.person_id: a query needs an id >= 0, got {pid}")
        own = query_images.get(image_id)
        if own is not None and own["file_name"] in by_file:
            rel, source = own["file_name"], own["where"]
        elif image_id in gallery:
            rel, source = gallery[image_id]["file_name"], gallery[image_id]["where"]
        else:
            raise DatasetFormatError(
                f"{where}: the image of query {j} (id {image_id!r}) is not a gallery image of "
                f"{gallery_path} (looked up by image id and by file_name)"
            )
        # the file that gave the file_name: query.json, or val.json when found by image id
        from_query = source.startswith(query_path + " ")
        file_path = query_path if from_query else gallery_path
        rows.append((box, pid, rel, f"{source[len(file_path) + 1:]}.file_name", from_query))
        query_ids.append(ann.get("id", j))
    arrays = {
        "box": np.array([r[0] for r in rows], dtype=np.float64).reshape(-1, 4),
        "pid": np.array([r[1] for r in rows], dtype=np.int64),
        "rel": np.array([r[2] for r in rows], dtype=str),
        "field": np.array([r[3] for r in rows], dtype=str),
        "from_query": np.array([r[4] for r in rows], dtype=bool),
    }
    return arrays, {"query_ids": query_ids}


def _load_queries(dataset_dir: str, skips: SkipCounter) -> List[dict]:
    gallery_path = os.path.join(dataset_dir, _ANNO_DIR, _FILES["gallery"])
    query_path = os.path.join(dataset_dir, _ANNO_DIR, _FILES["query"])
    require_path(gallery_path, _NAME, _SECTION)
    require_path(query_path, _NAME, _SECTION)
    arrays, meta = load_or_build(
        "posetrack21.query",
        _QUERY_CACHE_VERSION,
        dataset_dir,
        [query_path, gallery_path],
        lambda depend: _query_table(dataset_dir),
    )
    sizes: Dict[str, Tuple[int, int]] = {}
    records = []
    rows = zip(
        arrays["box"].tolist(),
        arrays["pid"].tolist(),
        arrays["rel"].tolist(),
        arrays["field"].tolist(),
        arrays["from_query"].tolist(),
        meta["query_ids"],
    )
    for j, (box, pid, rel, field, from_query, query_id) in enumerate(rows):
        where = f"{query_path} annotations[{j}]"
        with reading_annotation(query_path if from_query else gallery_path):
            file_name = confined_path(os.path.join(dataset_dir, rel), field)
        if rel not in sizes:
            sizes[rel] = image_size(file_name)
        height, width = sizes[rel]
        box = _fit_box(box, height, width, skips, where)
        if box is None:
            continue
        if not _is_id(query_id):
            raise DatasetFormatError(f"{where}.id: expected an annotation id, got {query_id!r}")
        records.append(
            {
                "file_name": file_name,
                "image_id": rel,
                "height": height,
                "width": width,
                "query": {"bbox": box, "person_id": pid},
                "query_id": query_id,
            }
        )
    return records


def load_posetrack21(dataset_dir: str, split: str) -> List[dict]:
    """
    Load one PoseTrack21 person-search split.

    Args:
        dataset_dir: the PoseTrack21 folder.
        split: ``"train"`` (``train.json``), ``"gallery"`` (every image of ``val.json``) or
            ``"query"`` (one query per annotation of ``query.json``).

    Returns:
        list[dict]: scene records with ``ignore_regions`` (train: ``person_id`` in ``0..N-1``;
        gallery: the raw ``person_id``), or query records with the raw ``person_id`` and
        ``query_id`` (the annotation id; its index when the file gives none).
    """
    if split not in _FILES:
        raise ValueError(f"PoseTrack21 split must be one of {tuple(_FILES)}, got {split!r}")
    require_path(dataset_dir, _NAME, _SECTION)
    files = [os.path.join(dataset_dir, _ANNO_DIR, _FILES[split])]
    if split == "query":  # a query's image may come from the gallery file
        files.append(os.path.join(dataset_dir, _ANNO_DIR, _FILES["gallery"]))
    # the summary names the files the counted items come from
    skips = SkipCounter(f"PoseTrack21 {split} ({', '.join(files)})")
    if split == "query":
        records = _load_queries(dataset_dir, skips)
    else:
        records = _load_scenes(dataset_dir, split, skips)
    skips.log()
    return records


SPLITS = standard_splits(
    "posetrack21",
    task="search",
    domain="posetrack21",
    loader=load_posetrack21,
    subdir="PoseTrack21",
    section=_SECTION,
    published={
        "train": {"images": 42861, "identities": 5474},
        "gallery": {"images": 19935, "identities": 1656},
        "query": {"identities": 1313},
    },
    labeled=True,
    evaluator_type="person_search",
)
