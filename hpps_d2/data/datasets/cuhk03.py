"""
CUHK03 (Li et al., "DeepReID: Deep Filter Pairing Neural Network for Person Re-identification",
CVPR 2014) under the new 767/700 protocol (CUHK03-NP; Zhong et al., "Re-ranking Person
Re-identification with k-reciprocal Encoding", CVPR 2017), ``labeled`` and ``detected`` boxes.

Layout under ``<root>/cuhk03``::

    cuhk03_new_protocol_config_labeled.mat     MATLAB v5 split files (scipy)
    cuhk03_new_protocol_config_detected.mat
    images_labeled/<name>.png                  optional: PNGs extracted by torchreid / fast-reid
    images_detected/<name>.png
    cuhk03_release/cuhk-03.mat                 MATLAB v7.3 (HDF5) raw release, used when the
                                               images_<variant> folder does not exist

A split file holds ``filelist`` ((N, 1) cell of names ``{pair}_{person:03d}_{view}_{slot:02d}.png``,
all 1-based), ``labels`` ((N, 1) identity 1..1467), ``camId`` ((N, 1) view, 1 or 2) and
``train_idx`` / ``query_idx`` / ``gallery_idx`` ((K, 1) 1-based rows of ``filelist``). Integer
variables are stored as small integer types and are cast. The name's view must equal ``camId``,
and every (pair, person) of the names must carry one label: anything else is a format error.

Without extracted PNGs, pixels are read from ``cuhk-03.mat`` without writing anything to disk:
``f[variant]`` is a (1, 5) array of references, one per camera pair; ``f[ref][:].T`` is an
(N_pair, 10) array of image references (slots 1-5 view 1, 6-10 view 2), and an image reference
gives the transposed (H, W, 3) RGB array. The record then carries
``image_source = {"type": "hdf5", "path": <cuhk-03.mat>, "dataset": <HDF5 object name>}`` (read
by :func:`hpps_d2.data.image_io.read_image`) and ``file_name`` is the path the extracted PNG would
have. A name whose slot is empty (size 0 or fewer than 3 dimensions) is an error naming it.

Protocol: train person ids are relabelled to ``0..766`` (ascending raw label); query and gallery
keep the raw ``labels``; ``camera_id = view - 1``. Duplicated indices are counted and dropped.

Counts (docs/datasets.md section 4, verified on the real split files): 767 train / 700 test
identities; labeled 7,368 / 1,400 / 5,328 and detected 7,365 / 1,400 / 5,332 images
(train / query / gallery); one query per view and test identity.
"""

import functools
import os
import re
from typing import Dict, List, Tuple

import h5py
import numpy as np

from .catalog import standard_splits
from .matlab import load_mat
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

__all__ = ["load_cuhk03", "read_split_config", "parse_cuhk03_name", "SPLITS"]

_SECTION = "CUHK03"
_NAME = "CUHK03"
_VARIANTS = ("labeled", "detected")
_SPLITS = ("train", "query", "gallery")
_NAME_RE = re.compile(r"^(\d+)_(\d{3})_([12])_(\d{2})\.png$")


def parse_cuhk03_name(name: str, where: str) -> Tuple[int, int, int, int]:
    """
    Parse ``{pair}_{person:03d}_{view}_{slot:02d}.png``.

    Returns:
        (pair, person, view, slot): all 1-based as written; slot in 1..10, view in 1..2.
    """
    m = _NAME_RE.match(name)
    if m is None or not 1 <= int(m.group(4)) <= 10:
        raise DatasetFormatError(
            f"{where}: expected an image name like '1_001_1_01.png' "
            f"(pair_person_view_slot.png, view 1 or 2, slot 01..10), got {name!r}"
        )
    return tuple(int(g) for g in m.groups())


def _int_column(mat: dict, var: str, path: str) -> np.ndarray:
    if var not in mat:
        raise DatasetFormatError(f"{path}: missing variable '{var}'")
    arr = np.asarray(mat[var])
    if arr.dtype.kind not in "iuf" or (arr.ndim == 2 and min(arr.shape) > 1) or arr.ndim > 2:
        raise DatasetFormatError(
            f"{path}: variable '{var}' must be an (N, 1) numeric column, got {arr.dtype} "
            f"of shape {arr.shape}"
        )
    arr = arr.ravel()
    if arr.dtype.kind == "f" and not np.all(np.isfinite(arr) & (arr == np.round(arr))):
        raise DatasetFormatError(f"{path}: variable '{var}' must hold integers")
    return arr.astype(np.int64)


def _names(mat: dict, path: str) -> List[str]:
    if "filelist" not in mat:
        raise DatasetFormatError(f"{path}: missing variable 'filelist'")
    arr = np.asarray(mat["filelist"])
    if arr.dtype.kind in "US":
        return [str(s).strip() for s in arr.ravel()]
    names = []
    for i, cell in enumerate(arr.ravel()):
        c = np.asarray(cell).ravel()
        if c.size != 1 or c.dtype.kind not in "US":
            raise DatasetFormatError(
                f"{path}: filelist[{i}] must be a 1-element string cell, got {c.dtype} "
                f"of size {c.size}"
            )
        names.append(str(c[0]).strip())
    return names


def read_split_config(path: str) -> Dict[str, object]:
    """
    Read and check a ``cuhk03_new_protocol_config_<variant>.mat``.

    Returns:
        dict: ``names`` (list[str], N), ``labels`` and ``cameras`` (int64 arrays (N,): raw label
        1..1467 and view - 1), and ``train`` / ``query`` / ``gallery`` (int64 arrays (K,) of
        0-based rows, as stored, duplicates included).
    """
    mat = load_mat(path)
    names = _names(mat, path)
    n = len(names)
    cols = {}
    for var in ("labels", "camId"):
        cols[var] = _int_column(mat, var, path)
        if len(cols[var]) != n:
            raise DatasetFormatError(
                f"{path}: variable '{var}' has {len(cols[var])} rows, expected {n} (filelist)"
            )
    cameras = np.empty(n, dtype=np.int64)
    key_of_label, label_of_key = {}, {}
    for i, name in enumerate(names):
        where = f"{path} filelist[{i}]"
        pair, person, view, _ = parse_cuhk03_name(name, where)
        label, cam = int(cols["labels"][i]), int(cols["camId"][i])
        if cam != view:
            raise DatasetFormatError(
                f"{where}: camId is {cam} but the name {name!r} says view {view}"
            )
        if label < 1:
            raise DatasetFormatError(f"{where}: expected a label >= 1, got {label}")
        key = (pair, person)
        known_label = label_of_key.setdefault(key, label)
        known_key = key_of_label.setdefault(label, key)
        if known_label != label or known_key != key:
            raise DatasetFormatError(
                f"{where}: label {label} of {name!r} disagrees with another row: each "
                "(pair, person) of the names must carry exactly one label"
            )
        cameras[i] = view - 1
    out = {"names": names, "labels": cols["labels"], "cameras": cameras}
    for split in _SPLITS:
        idx = _int_column(mat, f"{split}_idx", path)
        if idx.size == 0:
            raise DatasetFormatError(f"{path}: variable '{split}_idx' is empty")
        bad = idx[(idx < 1) | (idx > n)]
        if bad.size:
            raise DatasetFormatError(
                f"{path}: variable '{split}_idx' must hold 1-based rows 1..{n}, got {int(bad[0])}"
            )
        out[split] = idx - 1
    return out


class _RawRelease:
    """Finds image datasets of one variant inside the HDF5 ``cuhk-03.mat`` (metadata only)."""

    def __init__(self, f: h5py.File, path: str, variant: str):
        self.f, self.path = f, path
        if variant not in f:
            raise DatasetFormatError(f"{path}: missing dataset '{variant}'")
        pairs = f[variant]
        if not isinstance(pairs, h5py.Dataset) or h5py.check_dtype(ref=pairs.dtype) is None:
            raise DatasetFormatError(
                f"{path}: '{variant}' must be a (1, 5) array of object references"
            )
        self.pairs = pairs[()].ravel()
        self.tables: Dict[int, np.ndarray] = {}

    def _table(self, pair: int, name: str) -> np.ndarray:
        if pair not in self.tables:
            if not 1 <= pair <= len(self.pairs):
                raise DatasetFormatError(
                    f"{self.path}: {name!r} names camera pair {pair}, the file has "
                    f"{len(self.pairs)}"
                )
            table = self.f[self.pairs[pair - 1]][()].T
            if table.ndim != 2 or table.shape[1] != 10 or table.dtype != object:
                raise DatasetFormatError(
                    f"{self.path}: camera pair {pair} must be an (N_pair, 10) array of "
                    f"references, got shape {table.shape}"
                )
            self.tables[pair] = table
        return self.tables[pair]

    def dataset_name(self, name: str, pair: int, person: int, slot: int) -> str:
        """HDF5 name of the image ``name``; ImageReadError when its slot is empty."""
        table = self._table(pair, name)
        if not 1 <= person <= table.shape[0]:
            raise DatasetFormatError(
                f"{self.path}: {name!r} names person {person} of camera pair {pair}, which "
                f"has {table.shape[0]}"
            )
        ref = table[person - 1, slot - 1]
        obj = self.f[ref] if ref else None
        if not isinstance(obj, h5py.Dataset) or obj.size == 0 or obj.ndim < 3:
            raise ImageReadError(
                f"{self.path}: image {name!r} (camera pair {pair}, person {person}, slot {slot}) "
                "is an empty slot of the raw release"
            )
        return obj.name


def _hdf5_sources(mat_path: str, variant: str, names: List[str]) -> List[dict]:
    try:
        f = h5py.File(mat_path, "r")
    except OSError as e:
        raise DatasetFormatError(f"{mat_path}: not a MATLAB v7.3 (HDF5) file ({e})") from None
    with f:
        raw = _RawRelease(f, mat_path, variant)
        sources = []
        for name in names:
            pair, person, _, slot = parse_cuhk03_name(name, mat_path)
            try:
                dataset = raw.dataset_name(name, pair, person, slot)
            except (KeyError, ValueError, TypeError) as e:
                if isinstance(e, DatasetFormatError):
                    raise
                raise DatasetFormatError(
                    f"{mat_path}: cannot resolve the reference of {name!r} ({e})"
                ) from None
            sources.append({"type": "hdf5", "path": mat_path, "dataset": dataset})
    return sources


def load_cuhk03(dataset_dir: str, split: str, variant: str = "labeled") -> List[dict]:
    """
    Load one split of the CUHK03 new protocol as crop records.

    Args:
        dataset_dir: the cuhk03 folder.
        split: ``"train"``, ``"query"`` or ``"gallery"``.
        variant: ``"labeled"`` (hand-drawn boxes) or ``"detected"`` (DPM boxes).

    Returns:
        list[dict]: crop records ``{"file_name", "image_id", "person_id", "camera_id"}`` (plus
        ``image_source`` when read from ``cuhk-03.mat``) in ascending row order; ``image_id`` is
        the file name; ``person_id`` is ``0..766`` for train and the raw label for query/gallery.
    """
    if split not in _SPLITS or variant not in _VARIANTS:
        raise ValueError(f"CUHK03: split must be one of {_SPLITS} and variant one of {_VARIANTS}")
    require_path(dataset_dir, _NAME, _SECTION)
    cfg_path = os.path.join(dataset_dir, f"cuhk03_new_protocol_config_{variant}.mat")
    cfg = read_split_config(require_path(cfg_path, _NAME, _SECTION))
    skips = SkipCounter(f"{_NAME} {cfg_path} {split}_idx")
    rows, seen = [], set()
    for i in cfg[split]:
        if i in seen:
            skips.add("duplicated index (dropped)", f"row {int(i) + 1}")
            continue
        seen.add(i)
        rows.append(int(i))
    names = [cfg["names"][i] for i in rows]

    img_dir = os.path.join(dataset_dir, f"images_{variant}")
    with reading_annotation(cfg_path):  # names are refused before the images are looked for
        for k, i in enumerate(rows):
            confined_path(os.path.join(img_dir, names[k]), f"filelist[{i}]")
    if os.path.isdir(img_dir):
        sources = None
        missing = [n for n in names if not os.path.exists(os.path.join(img_dir, n))]
        if missing:
            raise ImageReadError(
                f"image file not found: {os.path.join(img_dir, missing[0])} ({len(missing)} of "
                f"{len(names)} images of {split}_idx in {cfg_path} are missing)"
            )
    else:
        mat_path = os.path.join(dataset_dir, "cuhk03_release", "cuhk-03.mat")
        if not os.path.exists(mat_path):
            raise DatasetNotFoundError(
                f"{_NAME}: expected the image folder '{img_dir}' or the raw release '{mat_path}' "
                f"but neither exists. Prepare the dataset as described in {DATASETS_README}, "
                f"section '{_SECTION}'."
            )
        sources = _hdf5_sources(mat_path, variant, names)

    labels = cfg["labels"][rows]
    mapping = relabel_contiguous(labels.tolist()) if split == "train" else None
    records = []
    for k, i in enumerate(rows):
        label = int(labels[k])
        record = {
            "file_name": os.path.join(img_dir, names[k]),
            "image_id": names[k],
            "person_id": mapping[label] if mapping is not None else label,
            "camera_id": int(cfg["cameras"][i]),
        }
        if sources is not None:
            record["image_source"] = sources[k]
        records.append(record)
    skips.log()
    return records


#: Published counts of the 767/700 protocol (docs/datasets.md section 4).
_PUBLISHED = {
    "labeled": {"train": {"images": 7368, "identities": 767}, "query": {"images": 1400, "identities": 700}, "gallery": {"images": 5328}},
    "detected": {"train": {"images": 7365, "identities": 767}, "query": {"images": 1400, "identities": 700}, "gallery": {"images": 5332}},
}

SPLITS = [
    spec
    for variant, published in _PUBLISHED.items()
    for spec in standard_splits(
        f"cuhk03_{variant}",
        task="reid",
        domain="cuhk03",
        loader=functools.partial(load_cuhk03, variant=variant),
        subdir="cuhk03",
        section=_SECTION,
        published=published,
        labeled=True,
        evaluator_type="reid",
    )
]
