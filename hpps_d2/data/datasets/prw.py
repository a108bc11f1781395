"""
PRW, Person Re-identification in the Wild (Zheng et al., "Person Re-identification in the Wild",
CVPR 2017): person search in campus video frames from six cameras.

Layout under ``<root>/PRW`` (docs/datasets.md section 7)::

    frames/c<cam>s<seq>_<frame6>.jpg    11,816 frames (c1-c5 1920x1080, c6 720x576)
    annotations/<frame>.jpg.mat         (N, 5) float64 [pid, x, y, w, h] named box_new,
                                        anno_file or anno_previous (tried in that order)
    frame_train.mat                     'img_index_train' 5704 x 1 cell of frame names
    frame_test.mat                      'img_index_test'  6112 x 1 cell of frame names
    query_info.txt                      2,057 CRLF lines "pid x y w h frame_name"
    query_box/<pid>_<frame>.jpg         the hand-drawn query crops

Counts: train 5,704 frames, 18,048 boxes, 483 labeled ids in the data (the paper says 482);
gallery 6,112 frames, 25,062 boxes, 544 labeled ids; 2,057 queries of 450 ids.

Conventions (SeqNet / NAE): ``x, y, w, h`` are clipped at 0 *before* ``x2 = x + w``; boxes with
``w <= 0`` or ``h <= 0`` are dropped. pid ``-2`` is an unlabeled person (``UNLABELED``). Train ids
are remapped to ``0..N-1`` (SeqNet's raw ids overflow its lookup table); gallery and query keep the
raw id. A pid labeled twice in one frame keeps only its first box labeled in train; the gallery
keeps both (the evaluator handles it). Query boxes are converted to ``x1y1x2y2`` first and then
clipped at 0. Every scene carries ``camera_id``, the digit after ``c`` in its name, 1-based.
Every drop and every repair is counted and logged.

Also counted and logged, but kept (the references keep them): a train or gallery box that lies
wholly outside its frame (``x1 >= width`` or ``y1 >= height``; the training mapper drops it), a
query whose frame is a train frame or is not listed in ``frame_test.mat``, and a query whose
person id no other test frame shows (no gallery match; the query loader reads the gallery
annotations for this check). A NaN or infinite number in an annotation row or in
``query_info.txt`` is a :class:`DatasetFormatError` naming the file, row or line, and the field.

Box coordinates (``boxes``): PRW stores float boxes, and the reference loaders truncate them to
integers, for training and evaluation alike, so published PRW numbers are measured on integer
boxes:

* ``"int32"`` (default; the references): train and gallery rows are clipped at 0, ``x2 = x + w``,
  then ``astype(np.int32)`` (SeqNet datasets/prw.py L75-87, NAE4PS lib/datasets/prw.py L41-54);
  query boxes are ``[x, y, x + w, y + h]`` ``astype(np.int32)`` first, then clipped at 0 (SeqNet
  L35-36, NAE4PS L81-82). E.g. gallery row ``[10.7, 5.2, 20.6, 30.9]`` -> ``[10, 5, 31, 36]``. A
  box that truncation leaves of zero width or height is dropped and counted (the references keep
  it as a degenerate ground truth; ours).
* ``"float"`` (ours): the stored floats, clipped the same way (``[10.7, 5.2, 31.3, 36.1]``).

The switch (ours) is the ``boxes`` argument of :func:`load_prw`; the registered splits
(``prw_*``, ``synth_prw_*``) call the loader without it, which then reads the environment variable
``HPPS_PRW_BOXES`` (``int32`` when unset) at load time, e.g. ``HPPS_PRW_BOXES=float``. Coordinates
are returned as Python floats either way.

The query split's parse (``query_info.txt`` checked against ``frame_test.mat``, every test
annotation and ``frame_train.mat``) is cached by :mod:`hpps_d2.data.protocol_cache`, per box
convention, with its skip counts; frame sizes and query crops are read on every load.
"""

import os
import re
from typing import List, Optional, Tuple

import numpy as np
from detectron2.structures import BoxMode

from ..protocol_cache import load_or_build
from .catalog import standard_splits
from .common import (
    UNLABELED,
    DatasetFormatError,
    SkipCounter,
    confined_path,
    image_size,
    reading_annotation,
    relabel_contiguous,
    require_path,
)
from .coords import check_coordinate
from .matlab import mat_string, read_mat_variable

__all__ = [
    "load_prw",
    "read_prw_annotation",
    "parse_query_line",
    "SPLITS",
    "BOX_CONVENTIONS",
    "BOXES_ENV",
]

_NAME = "PRW"
_SECTION = "PRW"
#: Annotation variable names, in the order public loaders try them.
_ANNO_VARS = ("box_new", "anno_file", "anno_previous")
#: PRW's own mark of a person whose identity is unknown.
_PRW_UNLABELED = -2
_FRAME_LISTS = {
    "train": ("frame_train.mat", "img_index_train"),
    "gallery": ("frame_test.mat", "img_index_test"),
}
_OUTSIDE = "box wholly outside the image (kept; the training mapper drops it)"
_NO_MATCH = "query without a gallery match (no other test frame shows its person id; kept)"
#: Column names of an annotation row and of the numbers of a query line, for messages.
_ANNO_FIELDS = ("pid", "x", "y", "w", "h")
_CAMERA = re.compile(r"c(\d)")
_QUERY_FORMAT = "'pid x y w h frame_name' (six fields separated by spaces)"
#: Box coordinate conventions (module docstring) and the environment variable that picks one.
BOX_CONVENTIONS = ("int32", "float")
BOXES_ENV = "HPPS_PRW_BOXES"
#: Bumped whenever the cached query table (:func:`_query_table`) changes.
_QUERY_CACHE_VERSION = 1


def _box_convention(boxes) -> str:
    """The ``boxes`` argument, or else ``$HPPS_PRW_BOXES`` (default ``int32``), checked."""
    value, where = (os.environ.get(BOXES_ENV, "int32"), BOXES_ENV) if boxes is None else (boxes, "PRW boxes")
    if value not in BOX_CONVENTIONS:
        raise ValueError(f"{where} must be 'int32' (SeqNet/NAE) or 'float', got {value!r}")
    return value


def _to_int32(values) -> List[float]:
    """numpy ``astype(np.int32)`` (truncation toward zero), returned as floats."""
    return [float(v) for v in np.asarray(values, dtype=np.float64).astype(np.int32)]


def _camera_id(frame: str, where: str) -> int:
    m = _CAMERA.search(frame)
    if m is None:
        raise DatasetFormatError(f"{where}: frame name '{frame}' has no camera 'c<digit>'")
    return int(m.group(1))


def _read_frame_list(dataset_dir: str, split: str) -> List[str]:
    """Frame names (without extension) of ``frame_train.mat`` or ``frame_test.mat``, in order."""
    fname, var = _FRAME_LISTS[split]
    path = os.path.join(dataset_dir, fname)
    cells = read_mat_variable(path, (var,), _NAME, _SECTION)
    frames = []
    for i, cell in enumerate(cells.reshape(-1)):
        name = mat_string(cell, f"{path} {var}[{i}]")
        frames.append(name[: -len(".jpg")] if name.endswith(".jpg") else name)
    return frames


def read_prw_annotation(path: str) -> np.ndarray:
    """
    Read one ``annotations/<frame>.jpg.mat``.

    Returns:
        np.ndarray: (N, 5) float64 rows ``[pid, x, y, w, h]`` as stored (N may be 0).
    """
    a = np.asarray(read_mat_variable(path, _ANNO_VARS, _NAME, _SECTION))
    if a.size == 0:
        return np.zeros((0, 5), dtype=np.float64)
    if a.ndim != 2 or a.shape[1] != 5 or a.dtype.kind not in "uif":
        raise DatasetFormatError(
            f"{path}: expected an (N, 5) numeric array [pid, x, y, w, h], "
            f"got shape {a.shape} {a.dtype}"
        )
    a = a.astype(np.float64)
    bad = [i for i, row in enumerate(a) if not np.all(np.isfinite(row))]
    if bad:
        for field, v in zip(_ANNO_FIELDS, a[bad[0]]):
            check_coordinate(float(v), f"{path}: row {bad[0]}", field)  # says NaN or infinite
    return a


def _frame_boxes(
    path: str, rows: np.ndarray, skips: SkipCounter, boxes_as: str = "int32", with_rows=False
) -> Tuple[list, ...]:
    """
    Clip, filter and convert the rows of one frame: (XYXY boxes, raw pids or UNLABELED), and
    with ``with_rows`` the row index of each kept box as a third list.
    """
    boxes, pids, kept = [], [], []
    for i, row in enumerate(rows):
        pid = row[0]
        if pid != int(pid) or (pid < 0 and pid != _PRW_UNLABELED):
            raise DatasetFormatError(
                f"{path}: row {i}: person id {pid} is neither an integer >= 0 nor -2 (unlabeled)"
            )
        x, y, w, h = (max(float(v), 0.0) for v in row[1:])
        if w <= 0 or h <= 0:
            skips.add("non-positive box size (dropped)", f"{path} row {i}")
            continue
        if np.any(row[1:] < 0):
            skips.add("negative coordinate clipped at 0", f"{path} row {i}")
        box = [x, y, x + w, y + h]
        if boxes_as == "int32":
            box = _to_int32(box)
            if box[2] <= box[0] or box[3] <= box[1]:
                skips.add("box of zero size after int32 truncation (dropped)", f"{path} row {i}")
                continue
        boxes.append(box)
        pids.append(UNLABELED if pid == _PRW_UNLABELED else int(pid))
        kept.append(i)
    return (boxes, pids, kept) if with_rows else (boxes, pids)


def _frame_paths(dataset_dir: str, frame: str, where: str) -> Tuple[str, str]:
    """
    (annotation .mat, frame .jpg) of a frame name read from an annotation file (inside
    :func:`~.common.reading_annotation`), both refused before use if they leave the dataset.
    """
    anno = os.path.join(dataset_dir, "annotations", frame + ".jpg.mat")
    image = os.path.join(dataset_dir, "frames", frame + ".jpg")
    return confined_path(anno, where, "annotation path"), confined_path(image, where)


def _load_scenes(dataset_dir: str, split: str, skips: SkipCounter, boxes_as: str) -> List[dict]:
    require_path(os.path.join(dataset_dir, "frames"), _NAME, _SECTION)
    require_path(os.path.join(dataset_dir, "annotations"), _NAME, _SECTION)
    list_name, list_var = _FRAME_LISTS[split]
    list_path = os.path.join(dataset_dir, list_name)
    records, listed = [], set()
    for index, frame in enumerate(_read_frame_list(dataset_dir, split)):
        if frame in listed:
            where = f"{list_path} {list_var}[{index}] {frame}"
            skips.add("frame listed twice (later entry dropped)", where)
            continue
        listed.add(frame)
        with reading_annotation(list_path):
            anno_path, file_name = _frame_paths(dataset_dir, frame, f"{list_var}[{index}]")
        boxes, pids, rows = _frame_boxes(
            anno_path, read_prw_annotation(anno_path), skips, boxes_as, with_rows=True
        )
        height, width = image_size(file_name)
        for box, i in zip(boxes, rows):
            if box[0] >= width or box[1] >= height:
                skips.add(_OUTSIDE, f"{anno_path} row {i}")
        seen = set()
        twice = "pid labeled twice in one frame"
        for k, pid in enumerate(pids):
            if pid == UNLABELED:
                continue
            if pid in seen and split == "train":
                skips.add(f"{twice} (later box set unlabeled)", f"{anno_path} row {rows[k]}")
                pids[k] = UNLABELED
            elif pid in seen:
                skips.add(f"{twice} (both kept)", f"{anno_path} row {rows[k]}")
            seen.add(pid)
        if not boxes:
            skips.add("frame without any person box (kept, background only)", anno_path)
        annos = [
            {
                "bbox": box,
                "bbox_mode": BoxMode.XYXY_ABS,
                "category_id": 0,
                "person_id": pid,
                "iscrowd": 0,
            }
            for box, pid in zip(boxes, pids)
        ]
        records.append(
            {
                "file_name": file_name,
                "image_id": frame + ".jpg",
                "height": height,
                "width": width,
                "annotations": annos,
                "camera_id": _camera_id(frame, anno_path),
            }
        )
    if split == "train":
        mapping = relabel_contiguous(a["person_id"] for r in records for a in r["annotations"])
        for r in records:
            for a in r["annotations"]:
                a["person_id"] = mapping.get(a["person_id"], UNLABELED)
    return records


def parse_query_line(line: str, where: str) -> Tuple[int, List[float], str]:
    """
    Parse one ``query_info.txt`` line ``pid x y w h frame_name`` (any line ending).

    Args:
        where: ``"<file>:<line number>"``, used in error messages.

    Returns:
        (raw pid, [x, y, w, h] floats, frame name without extension)
    """
    fields = line.rstrip().split()
    if len(fields) != 6:
        raise DatasetFormatError(f"{where}: expected {_QUERY_FORMAT}, got {line.rstrip()!r}")
    try:
        values = [float(v) for v in fields[:5]]
    except ValueError:
        raise DatasetFormatError(
            f"{where}: expected {_QUERY_FORMAT} with numbers first, got {line.rstrip()!r}"
        ) from None
    for field, v in zip(_ANNO_FIELDS, values):
        check_coordinate(v, where, field)  # float() accepts 'nan' and 'inf': named as such
    pid = values[0]
    if pid != int(pid) or pid < 0:
        raise DatasetFormatError(f"{where}: expected {_QUERY_FORMAT} with pid an integer >= 0")
    frame = fields[5][: -len(".jpg")] if fields[5].endswith(".jpg") else fields[5]
    return int(pid), values[1:], frame


def _gallery_pid_frames(
    dataset_dir: str, boxes_as: str, depend=lambda p: p
) -> Tuple[dict, set, set]:
    """
    ({raw pid: set of test frames showing it}, set of test frames, set of train frames), for the
    query checks (docs: a query's gallery is every test frame but its own). ``depend`` is called
    on each annotation file before it is read (:func:`~hpps_d2.data.protocol_cache.load_or_build`).
    """
    list_name, list_var = _FRAME_LISTS["gallery"]
    list_path = os.path.join(dataset_dir, list_name)
    pid_frames: dict = {}
    test = _read_frame_list(dataset_dir, "gallery")
    for index, frame in enumerate(test):
        with reading_annotation(list_path):
            path = depend(_frame_paths(dataset_dir, frame, f"{list_var}[{index}]")[0])
        _, pids = _frame_boxes(path, read_prw_annotation(path), SkipCounter(path), boxes_as)
        for pid in pids:
            if pid != UNLABELED:
                pid_frames.setdefault(pid, set()).add(frame)
    train_list = os.path.join(dataset_dir, _FRAME_LISTS["train"][0])
    train = set(_read_frame_list(dataset_dir, "train")) if os.path.exists(train_list) else set()
    return pid_frames, set(test), train


def _query_table(dataset_dir: str, boxes_as: str, depend) -> Tuple[dict, dict]:
    """
    Parse ``query_info.txt`` and check it against the test annotations (the cached part).

    Returns:
        arrays: per non-empty line, ``lineno`` (N,) int64, ``pid`` (N,) int64, ``frame`` (N,) str,
            ``box`` (N, 4) float64 (the query box, converted and clipped), ``kept`` (N,) bool
            (False: the box was dropped).
        meta: ``skips``, the counted items as ``[reason, count, examples]``.
    """
    path = os.path.join(dataset_dir, "query_info.txt")
    pid_frames, test_frames, train_frames = _gallery_pid_frames(dataset_dir, boxes_as, depend)
    skips = SkipCounter(path)
    rows = []
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            where = f"{path}:{lineno}"
            pid, (x, y, w, h), frame = parse_query_line(line, where)
            raw = [x, y, x + w, y + h]
            if boxes_as == "int32":
                raw = _to_int32(raw)  # truncated before the clip (SeqNet L35-36, NAE4PS L81-82)
            box = [max(v, 0.0) for v in raw]  # converted first, then clipped (SeqNet / NAE)
            kept = not (box[2] <= box[0] or box[3] <= box[1])
            rows.append((lineno, pid, frame, box, kept))
            if not kept:
                skips.add("query box of non-positive size (query dropped)", where)
                continue
            if box != raw:
                skips.add("query box clipped at 0", where)
            if frame in train_frames:
                skips.add(
                    "query frame is a train frame (frame_train.mat), not a gallery frame (kept)",
                    where,
                )
            elif frame not in test_frames:
                skips.add("query frame not listed in frame_test.mat (kept)", where)
            if not pid_frames.get(pid, set()) - {frame}:
                skips.add(_NO_MATCH, where)
    arrays = {
        "lineno": np.array([r[0] for r in rows], dtype=np.int64),
        "pid": np.array([r[1] for r in rows], dtype=np.int64),
        "frame": np.array([r[2] for r in rows], dtype=str),
        "box": np.array([r[3] for r in rows], dtype=np.float64).reshape(-1, 4),
        "kept": np.array([r[4] for r in rows], dtype=bool),
    }
    return arrays, {"skips": skips.as_json()}


def _load_queries(dataset_dir: str, skips: SkipCounter, boxes_as: str) -> List[dict]:
    path = require_path(os.path.join(dataset_dir, "query_info.txt"), _NAME, _SECTION)
    frames_dir = require_path(os.path.join(dataset_dir, "frames"), _NAME, _SECTION)
    crops_dir = os.path.join(dataset_dir, "query_box")
    lists = [os.path.join(dataset_dir, _FRAME_LISTS[s][0]) for s in ("gallery", "train")]
    arrays, meta = load_or_build(
        "prw.query",
        _QUERY_CACHE_VERSION,
        dataset_dir,
        [path] + lists,
        lambda depend: _query_table(dataset_dir, boxes_as, depend),
        scope={"boxes": boxes_as},
    )
    skips.replay(meta["skips"])
    records = []
    rows = zip(
        arrays["lineno"].tolist(),
        arrays["pid"].tolist(),
        arrays["frame"].tolist(),
        arrays["box"].tolist(),
        arrays["kept"].tolist(),
    )
    for lineno, pid, frame, box, kept in rows:
        with reading_annotation(path):  # refused before the frame or the crop is touched
            file_name = os.path.join(frames_dir, frame + ".jpg")
            file_name = confined_path(file_name, f"line {lineno}")
            crop = os.path.join(crops_dir, f"{pid}_{frame}.jpg")
            crop = confined_path(crop, f"line {lineno}", "query crop path")
        if not kept:
            continue
        height, width = image_size(file_name)
        record = {
            "file_name": file_name,
            "image_id": frame + ".jpg",
            "height": height,
            "width": width,
            "query": {"bbox": box, "person_id": pid},
            "camera_id": _camera_id(frame, f"{path}:{lineno}"),
        }
        if os.path.isfile(crop):
            record["query_box_file"] = crop
        records.append(record)
    return records


def load_prw(dataset_dir: str, split: str, boxes: Optional[str] = None) -> List[dict]:
    """
    Load one PRW split.

    Args:
        dataset_dir: the PRW folder.
        split: ``"train"`` (``frame_train.mat``), ``"gallery"`` (every frame of
            ``frame_test.mat``) or ``"query"`` (``query_info.txt``).
        boxes: ``"int32"`` (SeqNet/NAE truncation) or ``"float"`` (ours); ``None``: the
            ``HPPS_PRW_BOXES`` environment variable, ``"int32"`` when unset (module docstring).

    Returns:
        list[dict]: scene records with ``camera_id`` (train: ``person_id`` in ``0..N-1``, N counted
        from the data; gallery: the raw PRW id), or query records with the raw PRW id,
        ``camera_id`` and ``query_box_file`` (the query crop, when it exists).
    """
    if split not in ("train", "gallery", "query"):
        raise ValueError(f"PRW split must be 'train', 'gallery' or 'query', got {split!r}")
    boxes_as = _box_convention(boxes)
    require_path(dataset_dir, _NAME, _SECTION)
    if split == "query":  # the summary names the files the counted items come from
        files = os.path.join(dataset_dir, "query_info.txt")
    else:
        frame_list = os.path.join(dataset_dir, _FRAME_LISTS[split][0])
        annotations = os.path.join(dataset_dir, "annotations")
        files = f"{annotations}/<frame>.jpg.mat, frames of {frame_list}"
    skips = SkipCounter(f"PRW {split} ({files})")
    if split == "query":
        records = _load_queries(dataset_dir, skips, boxes_as)
    else:
        records = _load_scenes(dataset_dir, split, skips, boxes_as)
    skips.log()
    return records


SPLITS = standard_splits(
    "prw",
    task="search",
    domain="prw",
    loader=load_prw,
    subdir="PRW",
    section=_SECTION,
    published={
        # 483 labeled ids occur in the train frames; the paper and SeqNet's config say 482.
        "train": {"images": 5704, "boxes": 18048, "identities": 483},
        "gallery": {"images": 6112, "boxes": 25062, "identities": 544},
        "query": {"queries": 2057, "identities": 450},
    },
    labeled=True,
    evaluator_type="person_search",
)
