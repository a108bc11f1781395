"""
CUHK-SYSU (Xiao et al., "Joint Detection and Identification Feature Learning for Person Search",
CVPR 2017): person search in street snaps and movie frames.

Layout under ``<root>/CUHK-SYSU`` (docs/datasets.md section 6)::

    Image/SSM/s<N>.jpg                      18,184 scene images
    annotation/Images.mat                   'Img' 1 x 18184 struct (imname, nAppear, box)
    annotation/pool.mat                     'pool' 6978 x 1 cell: the test images
    annotation/test/train_test/Train.mat    'Train' 5532 x 1 cell of 1x1 structs
                                            (idname, nAppear, scene(imname, idlocate, ishard))
    annotation/test/train_test/TestG<k>.mat 'TestG<k>' 1 x 2900 struct (Query, Gallery),
                                            k in 50, 100, 500, 1000, 2000, 4000

Counts: train 11,206 images / 5,532 identities; gallery 6,978 images; 2,900 queries.

Conventions (as psdb, SeqNet and NAE load it): boxes are ``[x, y, w, h]`` uint16 (uint8 when
every value is below 256), read by position and cast before any arithmetic. Train images are
``Img`` minus ``pool``; the gallery is ``pool`` in file order. Boxes with ``w <= 0`` or ``h <= 0``
and exact duplicates within an image are dropped; a train image left without a box is skipped, a
gallery image is kept. Train ids are the identity's index in ``Train.mat`` (``0..N-1``), gallery ids
the query's index in ``TestG50.mat``; both are matched by exactly equal ``[x, y, w, h]`` and stay
``UNLABELED`` otherwise. Every drop and every repair is counted and logged.

Query records carry the protocol galleries of every ``TestG<k>.mat`` on disk, compactly::

    "gallery_lists": {k: {
        "images": np.int32 (k,),           # index of each listed image in the gallery split
        "pos_index": np.int32 (P,),        # positions of the list that show the query person
        "pos_boxes": np.float32 (P, 4),    # their XYXY boxes
    }}

The list is kept exactly as the file gives it, duplicated entries and the query image included.
The arrays are views into one array per size, parsed once and cached (read-only) by
:mod:`hpps_d2.data.protocol_cache`, keyed by ``Images.mat``, ``pool.mat`` and every
``TestG<k>.mat``; the query images' sizes are read on every load. The gallery split is cached
the same way (boxes, ids and skip counts, keyed by ``Images.mat``, ``pool.mat`` and
``TestG50.mat``); its image paths are confined and its image sizes read on every load.
A query (or gallery entry) whose image is not in ``Images.mat`` or not in ``pool.mat`` is a
:class:`DatasetFormatError` naming the protocol file and the query index.
This module also holds the small MATLAB readers shared with :mod:`.prw`.
"""

import logging
import os
import re
from typing import Dict, List, Optional, Tuple

import numpy as np
from detectron2.structures import BoxMode

from ..protocol_cache import load_or_build
from .catalog import standard_splits
from .matlab import (
    Box,
    MatValueError,
    as_box,
    as_string,
    mat_box,
    mat_string,
    mat_structs,
    read_mat_variable,
    struct_items,
)
from .common import (
    UNLABELED,
    DatasetFormatError,
    SkipCounter,
    confined_path,
    image_size,
    reading_annotation,
    require_path,
    xywh_to_xyxy,
)

__all__ = ["load_cuhk_sysu", "SPLITS"]

logger = logging.getLogger(__name__)

_NAME = "CUHK-SYSU"
_SECTION = "CUHK-SYSU"
_PROTOCOL_DIR = os.path.join("annotation", "test", "train_test")
_TESTG_FILE = re.compile(r"^TestG(\d+)\.mat$")
#: The protocol file that defines the queries and the gallery identities.
_REFERENCE_SIZE = 50
#: Bumped whenever the cached query protocol (:func:`_query_protocol`) changes.
_QUERY_CACHE_VERSION = 1
#: Bumped whenever the cached gallery split (:func:`_gallery_protocol`) changes.
_GALLERY_CACHE_VERSION = 1

def _read_images(dataset_dir: str) -> Dict[str, List[Box]]:
    """``Images.mat`` -> {imname: boxes in file order}, in ``Img`` order."""
    path = os.path.join(dataset_dir, "annotation", "Images.mat")
    img = read_mat_variable(path, ("Img",), _NAME, _SECTION)
    images: Dict[str, List[Box]] = {}
    for i, entry in enumerate(mat_structs(img, ("imname", "nAppear", "box"), f"{path} Img")):
        where = f"{path} Img[{i}]"
        name = mat_string(entry[0], f"{where}.imname")
        if name in images:
            raise DatasetFormatError(f"{where}: image '{name}' is listed twice")
        boxes: List[Box] = []
        for j, b in enumerate(mat_structs(entry[2], ("idlocate",), f"{where}.box")):
            box = mat_box(b[0], f"{where}.box[{j}]")
            if box is None:
                raise DatasetFormatError(f"{where}.box[{j}]: expected [x, y, w, h], got empty")
            boxes.append(box)
        images[name] = boxes
    return images


def _valid_boxes(where: str, boxes: List[Box], skips: SkipCounter) -> List[Box]:
    """
    Drop boxes of non-positive size and exact duplicates (counted), keeping the file order.
    ``where`` (``"<Images.mat> Img[i] '<imname>'"``) locates the image in the counts.
    """
    kept: List[Box] = []
    for j, box in enumerate(boxes):
        if box[2] <= 0 or box[3] <= 0:
            skips.add("non-positive box size (dropped)", f"{where} box {j}")
        elif box in kept:
            skips.add("duplicate box in one image (dropped)", f"{where} box {j}")
        else:
            kept.append(box)
    return kept


def _read_pool(dataset_dir: str, images: Optional[Dict[str, List[Box]]] = None) -> List[str]:
    """``pool.mat``: the gallery image names in file order, checked against ``images``."""
    path = os.path.join(dataset_dir, "annotation", "pool.mat")
    pool = read_mat_variable(path, ("pool",), _NAME, _SECTION)
    names = [mat_string(v, f"{path} pool[{i}]") for i, v in enumerate(pool.reshape(-1))]
    if len(set(names)) != len(names):
        raise DatasetFormatError(f"{path}: an image is listed twice in the pool")
    missing = [name for name in names if images is not None and name not in images]
    if missing:
        raise DatasetFormatError(f"{path}: pool lists '{missing[0]}', which Images.mat lacks")
    return names


def _read_train_labels(dataset_dir: str, skips: SkipCounter) -> Dict[Tuple[str, Box], int]:
    """``Train.mat`` -> {(imname, [x, y, w, h]): index of the identity}."""
    path = os.path.join(dataset_dir, _PROTOCOL_DIR, "Train.mat")
    train = read_mat_variable(path, ("Train",), _NAME, _SECTION)
    labels: Dict[Tuple[str, Box], int] = {}
    fields = ("idname", "nAppear", "scene")
    for pid, cell in enumerate(train.reshape(-1)):
        where = f"{path} Train[{pid}]"
        if isinstance(cell, np.void):  # a struct array instead of a cell of structs
            identity = cell
        else:
            items = mat_structs(cell, fields, where)
            if len(items) != 1:
                raise DatasetFormatError(f"{where}: expected one 1x1 struct, got {len(items)}")
            identity = items[0]
        if len(identity) < len(fields):
            raise DatasetFormatError(f"{where}: expected a struct with fields {fields}")
        scenes = mat_structs(identity[2], ("imname", "idlocate", "ishard"), f"{where}.scene")
        for j, s in enumerate(scenes):
            name = mat_string(s[0], f"{where}.scene[{j}].imname")
            box = mat_box(s[1], f"{where}.scene[{j}].idlocate")
            if box is None:
                raise DatasetFormatError(f"{where}.scene[{j}].idlocate: expected [x, y, w, h]")
            if labels.setdefault((name, box), pid) != pid:
                skips.add(
                    "box claimed by two Train.mat identities (first kept)", f"{where}.scene[{j}]"
                )
    return labels


def _read_protocol(path: str, k: int) -> Tuple[list, list]:
    """
    Parse ``TestG<k>.mat``.

    Returns:
        queries: list of (imname, [x, y, w, h], idname), one per query.
        galleries: per query, a list of (imname, [x, y, w, h] or None for a negative entry).
    """
    var = f"TestG{k}"
    protocol = read_mat_variable(path, (var,), _NAME, _SECTION)
    items = mat_structs(protocol, ("Query", "Gallery"), f"{path} {var}")
    queries, galleries = [], []
    q, j = 0, None  # j: the gallery entry being read, None while reading the query
    try:  # a hot loop (2,900 x k entries): errors are located once, here
        for q, item in enumerate(items):
            j = None
            query = struct_items(item[0], ("imname", "idlocate", "ishard", "idname"))
            if len(query) != 1:
                raise MatValueError(f"expected one 1x1 Query struct, got {len(query)}")
            qbox = as_box(query[0][1])
            if qbox is None or qbox[2] <= 0 or qbox[3] <= 0:
                raise MatValueError(f"query box {qbox} is empty or of non-positive size")
            queries.append((as_string(query[0][0]), qbox, as_string(query[0][3])))
            gallery = []
            j = -1
            for j, g in enumerate(struct_items(item[1], ("imname", "idlocate", "ishard"))):
                gallery.append((as_string(g[0]), as_box(g[1])))
            galleries.append(gallery)
    except MatValueError as e:
        field = "Query" if j is None else "Gallery" if j < 0 else f"Gallery[{j}]"
        raise DatasetFormatError(f"{path} {var}[{q}].{field}: {e}") from None
    return queries, galleries


def _protocol_files(dataset_dir: str) -> Dict[int, str]:
    """Every ``TestG<k>.mat`` on disk, by k ascending; ``TestG50.mat`` is required."""
    folder = os.path.join(dataset_dir, _PROTOCOL_DIR)
    require_path(os.path.join(folder, f"TestG{_REFERENCE_SIZE}.mat"), _NAME, _SECTION)
    files = {}
    for fname in os.listdir(folder):
        m = _TESTG_FILE.match(fname)
        if m:
            files[int(m.group(1))] = os.path.join(folder, fname)
    return dict(sorted(files.items()))


def _annotation_files(dataset_dir: str) -> Tuple[str, str, str, str]:
    """Paths of ``Images.mat``, ``Train.mat``, ``TestG50.mat`` and ``pool.mat``."""
    protocol = os.path.join(dataset_dir, _PROTOCOL_DIR)
    return (
        os.path.join(dataset_dir, "annotation", "Images.mat"),
        os.path.join(protocol, "Train.mat"),
        os.path.join(protocol, f"TestG{_REFERENCE_SIZE}.mat"),
        os.path.join(dataset_dir, "annotation", "pool.mat"),
    )


def _image_path(dataset_dir: str, name: str, source: str, where: str) -> str:
    """``Image/SSM/<name>`` of a name read at ``where`` of the file ``source``, confined."""
    with reading_annotation(source):
        return confined_path(os.path.join(dataset_dir, "Image", "SSM", name), where)


def _scene(dataset_dir: str, name: str, boxes: List[Box], pids: List[int], index: int) -> dict:
    """The record of the image ``Img[index]`` of ``Images.mat``, named ``name``."""
    source = _annotation_files(dataset_dir)[0]
    file_name = _image_path(dataset_dir, name, source, f"Img[{index}].imname")
    height, width = image_size(file_name)
    annos = [
        {
            "bbox": xywh_to_xyxy(box),
            "bbox_mode": BoxMode.XYXY_ABS,
            "category_id": 0,
            "person_id": pid,
            "iscrowd": 0,
        }
        for box, pid in zip(boxes, pids)
    ]
    return {
        "file_name": file_name,
        "image_id": name,
        "height": height,
        "width": width,
        "annotations": annos,
    }


def _assign_ids(
    name: str,
    boxes: List[Box],
    labels: Dict,
    matched: set,
    skips: SkipCounter,
    train: bool,
    where: str,
) -> List[int]:
    """
    Person id of each box of one image, by exact ``[x, y, w, h]`` equality with ``labels``.

    An id met a second time in the image is set ``UNLABELED`` in train and kept in the gallery;
    both are counted (at ``where``, the image in ``Images.mat``). Matched keys are added to
    ``matched``.
    """
    pids, seen = [], set()
    for box in boxes:
        pid = labels.get((name, box), UNLABELED)
        if pid != UNLABELED:
            matched.add((name, box))
            if pid in seen and train:
                skips.add("identity labeled twice in one image (later set unlabeled)", where)
                pid = UNLABELED
            elif pid in seen:
                skips.add("query person labeled twice in one gallery image (kept)", where)
            seen.add(pid)
        pids.append(pid)
    return pids


def _count_unmatched(
    labels: Dict, matched: set, reason: str, skips: SkipCounter, source: str
) -> None:
    """Count the ``labels`` keys no image box matched; ``source`` is the file that gave them."""
    unmatched = [key for key in labels if key not in matched]
    if unmatched:
        skips.add(reason, f"{source} '{unmatched[0][0]}' {unmatched[0][1]}", len(unmatched))


def _load_train(dataset_dir: str, skips: SkipCounter) -> List[dict]:
    images = _read_images(dataset_dir)
    pool = set(_read_pool(dataset_dir, images))
    labels = _read_train_labels(dataset_dir, skips)
    images_mat, train_mat = _annotation_files(dataset_dir)[:2]
    matched, records = set(), []
    for i, (name, boxes) in enumerate(images.items()):
        if name in pool:
            continue
        where = f"{images_mat} Img[{i}] '{name}'"
        boxes = _valid_boxes(where, boxes, skips)
        if not boxes:
            skips.add("train image without any valid box (skipped)", where)
            continue
        pids = _assign_ids(name, boxes, labels, matched, skips, True, where)
        records.append(_scene(dataset_dir, name, boxes, pids, i))
    reason = "Train.mat box without an equal train-image box (ignored)"
    _count_unmatched(labels, matched, reason, skips, train_mat)
    return records


def _gallery_protocol(dataset_dir: str) -> Tuple[dict, dict]:
    """
    Parse the gallery split (``Images.mat``, ``pool.mat``, ``TestG50.mat``) into arrays.

    Returns:
        arrays: ``names`` (G,) str in pool order, ``image_index`` (G,) int64 their ``Img``
            index, ``box_offsets`` (G + 1,) int64, ``boxes`` (B, 4) float64 ``[x, y, w, h]`` and
            ``person_ids`` (B,) int64 of the kept boxes, image by image.
        meta: ``skips``, the counted items as ``[reason, count, examples]``.
    """
    skips = SkipCounter("")
    images = _read_images(dataset_dir)
    pool = _read_pool(dataset_dir, images)
    path = os.path.join(dataset_dir, _PROTOCOL_DIR, f"TestG{_REFERENCE_SIZE}.mat")
    queries, galleries = _read_protocol(path, _REFERENCE_SIZE)
    labels: Dict[Tuple[str, Box], int] = {}
    for q, ((qname, qbox, _), gallery) in enumerate(zip(queries, galleries)):
        for key in [(qname, qbox)] + [(n, b) for n, b in gallery if b is not None]:
            if labels.setdefault(key, q) != q:
                where = f"{path} TestG{_REFERENCE_SIZE}[{q}] '{key[0]}' {key[1]}"
                skips.add("box claimed by two TestG50 queries (first kept)", where)
    images_mat = _annotation_files(dataset_dir)[0]
    index = {name: i for i, name in enumerate(images)}
    matched, all_boxes, all_pids, offsets = set(), [], [], [0]
    for name in pool:
        where = f"{images_mat} Img[{index[name]}] '{name}'"
        boxes = _valid_boxes(where, images[name], skips)
        if not boxes:
            skips.add("gallery image without any valid box (kept)", where)
        all_pids += _assign_ids(name, boxes, labels, matched, skips, False, where)
        all_boxes += boxes
        offsets.append(len(all_boxes))
    reason = "TestG50 box without an equal gallery box (ignored)"
    _count_unmatched(labels, matched, reason, skips, path)
    arrays = {
        "names": np.array(pool, dtype=str),
        "image_index": np.array([index[name] for name in pool], dtype=np.int64),
        "box_offsets": np.array(offsets, dtype=np.int64),
        "boxes": np.array(all_boxes, dtype=np.float64).reshape(-1, 4),
        "person_ids": np.array(all_pids, dtype=np.int64),
    }
    return arrays, {"skips": skips.as_json()}


def _load_gallery(dataset_dir: str, skips: SkipCounter) -> List[dict]:
    images_mat, _, testg, pool_mat = _annotation_files(dataset_dir)
    arrays, meta = load_or_build(
        "cuhk_sysu.gallery",
        _GALLERY_CACHE_VERSION,
        dataset_dir,
        [images_mat, pool_mat, testg],
        lambda depend: _gallery_protocol(dataset_dir),
    )
    skips.replay(meta["skips"])
    offsets = arrays["box_offsets"].tolist()
    boxes = [tuple(b) for b in arrays["boxes"].tolist()]
    pids = arrays["person_ids"].tolist()
    records = []
    for i, (name, img) in enumerate(zip(arrays["names"].tolist(), arrays["image_index"].tolist())):
        a, b = offsets[i], offsets[i + 1]
        records.append(_scene(dataset_dir, name, boxes[a:b], pids[a:b], img))
    return records


def _gallery_arrays(
    galleries: list, pool_index: Dict[str, int], where: str
) -> Dict[str, np.ndarray]:
    """
    The gallery lists of one ``TestG<k>.mat``, all queries concatenated: query ``q``'s list is
    ``images[offsets[q]:offsets[q + 1]]``, its positives ``pos_index`` / ``pos_boxes`` rows
    ``pos_offsets[q]:pos_offsets[q + 1]`` (``where``: ``"<path> TestG<k>"``).
    """
    images, pos_index, pos_boxes = [], [], []
    offsets, pos_offsets = [0], [0]
    for q, gallery in enumerate(galleries):
        for j, (name, box) in enumerate(gallery):
            if name not in pool_index:
                raise DatasetFormatError(
                    f"{where}[{q}].Gallery[{j}]: image '{name}' is not in pool.mat"
                )
            images.append(pool_index[name])
            if box is not None:
                pos_index.append(j)
                pos_boxes.append(xywh_to_xyxy(box))
        offsets.append(len(images))
        pos_offsets.append(len(pos_index))
    return {
        "images": np.asarray(images, dtype=np.int32),
        "offsets": np.asarray(offsets, dtype=np.int64),
        "pos_index": np.asarray(pos_index, dtype=np.int32),
        "pos_offsets": np.asarray(pos_offsets, dtype=np.int64),
        "pos_boxes": np.asarray(pos_boxes, dtype=np.float32).reshape(-1, 4),
    }


def _query_protocol(dataset_dir: str, files: Dict[int, str]) -> Tuple[dict, dict]:
    """
    Parse the query protocol (``Images.mat``, ``pool.mat``, every ``TestG<k>.mat``) into arrays.

    Returns:
        arrays: ``query_names`` / ``query_idnames`` (Q,) str, ``query_boxes`` (Q, 4) float64
            XYXY, and per size k ``g<k>_<name>`` for each array of :func:`_gallery_arrays`.
        meta: ``sizes`` (the k, ascending) and ``warnings``: ``[path, sizes found, k]`` per file
            whose lists do not all hold k images.
    """
    images = _read_images(dataset_dir)
    pool_index = {name: i for i, name in enumerate(_read_pool(dataset_dir, images))}
    ref_path = files[_REFERENCE_SIZE]
    queries, ref_galleries = _read_protocol(ref_path, _REFERENCE_SIZE)
    annotation = os.path.join(dataset_dir, "annotation")
    for q, (name, _, _) in enumerate(queries):
        where = f"{ref_path} TestG{_REFERENCE_SIZE}[{q}].Query"
        if name not in images:
            raise DatasetFormatError(
                f"{where}: image '{name}' is not in {os.path.join(annotation, 'Images.mat')}; "
                "expected a query on an annotated test image"
            )
        if name not in pool_index:
            raise DatasetFormatError(
                f"{where}: image '{name}' is not in {os.path.join(annotation, 'pool.mat')} "
                "(the test images); expected a query on a test image, not a train image"
            )
    arrays = {
        "query_names": np.array([name for name, _, _ in queries], dtype=str),
        "query_idnames": np.array([idname for _, _, idname in queries], dtype=str),
        "query_boxes": np.array(
            [xywh_to_xyxy(box) for _, box, _ in queries], dtype=np.float64
        ).reshape(-1, 4),
    }
    warnings = []
    for k, path in files.items():  # one file at a time: TestG4000 alone is large
        if k == _REFERENCE_SIZE:
            file_queries, galleries = queries, ref_galleries
        else:
            file_queries, galleries = _read_protocol(path, k)
        if len(file_queries) != len(queries):
            raise DatasetFormatError(
                f"{path}: lists {len(file_queries)} queries, {ref_path} lists {len(queries)}"
            )
        for q, query in enumerate(file_queries):
            if query != queries[q]:
                raise DatasetFormatError(
                    f"{path} TestG{k}[{q}].Query: {query} differs from the query of the same "
                    f"index in {ref_path}, {queries[q]} (files must list the same queries in order)"
                )
        sizes = {len(gallery) for gallery in galleries}
        if sizes != {k}:
            warnings.append([path, sorted(sizes), k])
        for field, a in _gallery_arrays(galleries, pool_index, f"{path} TestG{k}").items():
            arrays[f"g{k}_{field}"] = a
        del file_queries, galleries
    return arrays, {"sizes": list(files), "warnings": warnings}


def _load_queries(dataset_dir: str) -> List[dict]:
    images_mat, _, _, pool_mat = _annotation_files(dataset_dir)
    require_path(images_mat, _NAME, _SECTION)
    require_path(pool_mat, _NAME, _SECTION)
    files = _protocol_files(dataset_dir)
    arrays, meta = load_or_build(
        "cuhk_sysu.query",
        _QUERY_CACHE_VERSION,
        dataset_dir,
        [images_mat, pool_mat] + list(files.values()),
        lambda depend: _query_protocol(dataset_dir, files),
    )
    for path, sizes, k in meta["warnings"]:
        logger.warning("%s: gallery lists hold %s images, not %d", path, sizes, k)
    ref_path = files[_REFERENCE_SIZE]
    records = []
    names, idnames = arrays["query_names"].tolist(), arrays["query_idnames"].tolist()
    for q, (name, box, idname) in enumerate(zip(names, arrays["query_boxes"].tolist(), idnames)):
        field = f"TestG{_REFERENCE_SIZE}[{q}].Query.imname"
        file_name = _image_path(dataset_dir, name, ref_path, field)
        height, width = image_size(file_name)
        records.append(
            {
                "file_name": file_name,
                "image_id": name,
                "height": height,
                "width": width,
                "query": {"bbox": box, "person_id": q},
                "query_name": idname,
                "gallery_lists": {},
            }
        )
    for k in meta["sizes"]:  # views into the shared (read-only) arrays, one list per query
        images, offsets = arrays[f"g{k}_images"], arrays[f"g{k}_offsets"].tolist()
        pos_index, pos_boxes = arrays[f"g{k}_pos_index"], arrays[f"g{k}_pos_boxes"]
        pos_offsets = arrays[f"g{k}_pos_offsets"].tolist()
        for q, record in enumerate(records):
            a, b = pos_offsets[q], pos_offsets[q + 1]
            record["gallery_lists"][k] = {
                "images": images[offsets[q] : offsets[q + 1]],
                "pos_index": pos_index[a:b],
                "pos_boxes": pos_boxes[a:b],
            }
    return records


def load_cuhk_sysu(dataset_dir: str, split: str) -> List[dict]:
    """
    Load one CUHK-SYSU split.

    Args:
        dataset_dir: the CUHK-SYSU folder.
        split: ``"train"``, ``"gallery"`` or ``"query"``.

    Returns:
        list[dict]: scene records (train: ``person_id`` in ``0..N-1``, N = identities in
        ``Train.mat``; gallery: the ``TestG50`` query index) or query records with
        ``query_name`` (the ``idname``) and ``gallery_lists`` (see the module docstring).
    """
    if split not in ("train", "gallery", "query"):
        raise ValueError(f"CUHK-SYSU split must be 'train', 'gallery' or 'query', got {split!r}")
    require_path(dataset_dir, _NAME, _SECTION)
    require_path(os.path.join(dataset_dir, "Image", "SSM"), _NAME, _SECTION)
    if split == "query":
        return _load_queries(dataset_dir)
    images_mat, train_mat, testg, pool_mat = _annotation_files(dataset_dir)
    files = (images_mat, train_mat) if split == "train" else (images_mat, testg)
    # the summary names the files the counted items come from
    skips = SkipCounter(f"CUHK-SYSU {split} ({', '.join(files)}, {pool_mat})")
    load = _load_train if split == "train" else _load_gallery
    records = load(dataset_dir, skips)
    skips.log()
    return records


SPLITS = standard_splits(
    "cuhk_sysu",
    task="search",
    domain="cuhk_sysu",
    loader=load_cuhk_sysu,
    subdir="CUHK-SYSU",
    section=_SECTION,
    published={
        "train": {"images": 11206, "identities": 5532},
        "gallery": {"images": 6978},
        "query": {"queries": 2900, "identities": 2900},
    },
    labeled=True,
    evaluator_type="person_search",
)
