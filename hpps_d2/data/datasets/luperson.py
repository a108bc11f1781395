"""
LUPerson (Fu et al., "Unsupervised Pre-training for Person Re-identification", CVPR 2021):
unlabeled person crops detected in street-view videos (about 4.18M images, 46,260 videos).

Layout under ``<root>/luperson`` (the LMDB form the official ``convert_lmdb.py`` writes)::

    lmdb/          LMDB environment folder; each value is the encoded JPEG of one crop
    keys.pkl       pickled list of the LMDB keys (str), or a dict {"keys": [...], "pids": [...]}
                   ("pids" / "vids" optional, same length as "keys")

Key strings are used as they are and never parsed (community rebuilds name them differently).

``keys.pkl`` is read by a restricted unpickler (:func:`read_keys`): only lists, tuples, dicts,
strings, bytes, integers, floats, booleans and None can be built, so a pickle cannot run code
while it is read. Any other object (a class instance, a NumPy array, a callable such as
``os.system`` in a ``__reduce__`` payload) is refused with a :class:`DatasetFormatError` naming
the file and the global it asked for; rewrite such a file with plain lists.

``luperson_30k`` ("LUPerson30k" of the paper) is defined by this project, as no public source
defines it: let ``keys`` be the key list of ``keys.pkl`` with later duplicates removed (counted)
and ``n = len(keys)``. If ``n > 30000`` the split is
``[keys[i] for i in np.sort(np.random.default_rng(0).choice(n, size=30000, replace=False))]``,
i.e. 30,000 keys drawn without replacement by NumPy's default generator seeded with 0, returned
in the order of ``keys.pkl``; otherwise it is every key (and a warning says fewer exist). The
sample size and the seed are the ``num_images`` and ``seed`` arguments of :func:`load_luperson`.
Every chosen key must exist in the LMDB.

Each crop has ``person_id = UNLABELED`` (identity pseudo-labels come from data unification),
``camera_id = 0`` (one camera, as fast-reid's ``LUP``), and
``image_source = {"type": "lmdb", "path": <lmdb folder>, "key": key}``, read by
:func:`hpps_d2.data.image_io.read_image`; ``file_name`` is ``<lmdb folder>/<key>``, a name only.
"""

import codecs
import dataclasses
import logging
import os
from typing import List, Optional, Sequence

import numpy as np

from ...utils.safe_pickle import restricted_load
from ..crop_records import CropRecords, unusual_keys
from ..image_io import open_lmdb
from .catalog import SplitSpec
from .common import (
    UNLABELED,
    DatasetFormatError,
    ImageReadError,
    SkipCounter,
    confined_path,
    reading_annotation,
    require_path,
)

__all__ = ["load_luperson", "load_luperson_all", "read_keys", "sample_keys", "sample_indices", "SPLITS"]

logger = logging.getLogger(__name__)

_SECTION = "LUPerson"
_NAME = "LUPerson"


def _key_str(key, where: str) -> str:
    if isinstance(key, bytes):
        try:
            return key.decode("utf-8")
        except UnicodeDecodeError:
            raise DatasetFormatError(f"{where}: key {key!r} is not UTF-8") from None
    if not isinstance(key, str):
        raise DatasetFormatError(f"{where}: keys must be strings, got {type(key).__name__}")
    return key


#: The only globals a ``keys.pkl`` may name: pickle protocols 0-2 write ``bytes`` objects as calls
#: to these two (``_codecs.encode(str, "latin1")``, ``bytes()``), which build bytes and nothing
#: else.
_SAFE_GLOBALS = {
    ("_codecs", "encode"): codecs.encode,
    ("builtins", "bytes"): bytes,
    ("__builtin__", "bytes"): bytes,
}


def _refuse(path: str):
    def error(what: str) -> DatasetFormatError:
        return DatasetFormatError(
            f"{path}: refused to load the global '{what}': keys.pkl may only hold "
            "lists, tuples, dicts, strings, bytes and numbers (a list of keys or a dict "
            "{'keys': [...], 'pids'|'vids': [...]}); nothing from it was executed. Rewrite it "
            "with plain Python lists (e.g. pids.tolist() for a NumPy array)."
        )

    return error


def read_keys(path: str) -> List[str]:
    """
    Read ``keys.pkl``: a list of keys, or a dict with ``keys`` and optional ``pids`` / ``vids``.

    The file is unpickled by a restricted unpickler that builds plain containers only (see the
    module docstring): no code in the file runs.

    Returns:
        list[str]: the keys in file order (duplicates included; bytes decoded as UTF-8).
    """
    try:
        with open(path, "rb") as f:
            obj = restricted_load(f, _SAFE_GLOBALS, _refuse(path))
    except DatasetFormatError:
        raise
    except Exception as e:  # unpickling a corrupt file can raise almost any type
        raise DatasetFormatError(
            f"{path}: not a readable pickle ({type(e).__name__}: {e})"
        ) from None
    keys = obj["keys"] if isinstance(obj, dict) and "keys" in obj else obj
    if not isinstance(keys, (list, tuple)):
        raise DatasetFormatError(
            f"{path}: expected a list of keys or a dict {{'keys': [...], 'pids'|'vids': [...]}}, "
            f"got {type(keys).__name__}" + (" without 'keys'" if isinstance(keys, dict) else "")
        )
    for extra in ("pids", "vids"):
        values = obj.get(extra) if isinstance(obj, dict) else None
        if values is not None and (not hasattr(values, "__len__") or len(values) != len(keys)):
            raise DatasetFormatError(
                f"{path}: entry '{extra}' must be a sequence with one item per key "
                f"({len(keys)}), got {type(values).__name__} of length "
                f"{len(values) if hasattr(values, '__len__') else 'none'}"
            )
    return [_key_str(k, f"{path} keys[{i}]") for i, k in enumerate(keys)]


def sample_indices(n: int, num_images: Optional[int], seed: int) -> np.ndarray:
    """
    The ``luperson_30k`` sampling rule (see the module docstring) on ``n`` distinct keys.

    Returns:
        np.ndarray: sorted indices of the ``min(num_images, n)`` chosen keys (all when
        ``num_images`` is None or ``n <= num_images``).
    """
    if num_images is None or n <= num_images:
        if num_images is not None and n < num_images:
            logger.warning(f"{_NAME}: only {n} keys exist, fewer than {num_images}: using all")
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).choice(n, size=num_images, replace=False))


def sample_keys(keys: List[str], num_images: Optional[int], seed: int) -> List[str]:
    """:func:`sample_indices` applied to ``keys`` (distinct, in file order); keeps their order."""
    return [keys[i] for i in sample_indices(len(keys), num_images, seed)]


def _key_array(keys: List[str], path: str) -> np.ndarray:
    """(N,) UTF-8 byte-string array of ``keys`` (numpy's ``S`` dtype, which cannot end in NUL)."""
    encoded = [k.encode("utf-8") for k in keys]
    arr = np.array(encoded, dtype=bytes) if encoded else np.zeros(0, dtype="S1")
    cut = np.flatnonzero(np.char.str_len(arr) != np.fromiter(map(len, encoded), np.int64, len(encoded)))
    if cut.size:
        i = int(cut[0])
        raise DatasetFormatError(f"{path}: keys[{i}] {keys[i]!r} ends in a NUL byte, which this loader does not support")
    return arr


def _check_keys_exist(lmdb_dir: str, keys: np.ndarray) -> None:
    # The environment comes from image_io's per-process cache: py-lmdb refuses a second open of
    # an environment in one process, and read_image may already hold it.
    try:
        env = open_lmdb(lmdb_dir)
    except ImageReadError as e:
        raise DatasetFormatError(f"{lmdb_dir}: not a readable LMDB environment ({e})") from None
    with env.begin(buffers=True) as txn:
        cursor = txn.cursor()
        for key in keys.tolist():
            if not cursor.set_key(key):
                raise ImageReadError(
                    f"{_NAME}: key {key.decode('utf-8')!r} of keys.pkl is not in the LMDB '{lmdb_dir}'"
                )


def load_luperson(
    dataset_dir: str, split: str = "30k", num_images: int = 30000, seed: int = 0, compact: bool = False
) -> Sequence[dict]:
    """
    Load LUPerson crops as unlabeled crop records.

    Args:
        dataset_dir: the luperson folder (holding ``lmdb/`` and ``keys.pkl``).
        split: ``"30k"`` (a sample of ``num_images`` keys, see the module docstring) or ``"all"``.
        num_images: sample size of ``"30k"``.
        seed: seed of the sample.
        compact: return a :class:`~hpps_d2.data.crop_records.CropRecords` (the keys in one byte
            array, about 24 bytes per crop) instead of a list of dicts (about 1 KiB per crop);
            the records are the same.

    Returns:
        list[dict] or CropRecords: crop records ``{"file_name", "image_id", "person_id",
        "camera_id", "image_source"}``; ``image_id`` is the key, ``person_id`` is ``UNLABELED``,
        ``camera_id`` is 0.
    """
    if split not in ("30k", "all"):
        raise ValueError(f"LUPerson split must be '30k' or 'all', got {split!r}")
    require_path(dataset_dir, _NAME, _SECTION)
    lmdb_dir = require_path(os.path.join(dataset_dir, "lmdb"), _NAME, _SECTION)
    keys_path = require_path(os.path.join(dataset_dir, "keys.pkl"), _NAME, _SECTION)
    skips = SkipCounter(f"{_NAME} {keys_path}")
    keys = _key_array(read_keys(keys_path), keys_path)
    # later duplicates dropped: the first index of each distinct key, in file order
    first = np.sort(np.unique(keys, return_index=True)[1]) if keys.size else np.zeros(0, np.int64)
    if first.size != keys.size:
        dropped = np.ones(keys.size, bool)
        dropped[first] = False
        for i in np.flatnonzero(dropped).tolist():
            skips.add("duplicated key (later entry dropped)", f"keys[{i}]")
    where = first[sample_indices(first.size, num_images if split == "30k" else None, seed)]  # index in keys.pkl
    keys = keys[where]
    with reading_annotation(keys_path):  # file_name is <lmdb>/<key>: refused before any lookup
        for i in unusual_keys(keys).tolist():
            confined_path(os.path.join(lmdb_dir, keys[i].decode("utf-8")), f"keys[{where[i]}]", "key path")
        if keys.size:  # any other key is inside exactly when the LMDB folder is
            confined_path(os.path.join(lmdb_dir, keys[0].decode("utf-8")), f"keys[{where[0]}]", "key path")
    _check_keys_exist(lmdb_dir, keys)
    skips.log()
    records = CropRecords(lmdb_dir, keys)
    return records if compact else list(records)


def load_luperson_all(dataset_dir: str, split: str = "all") -> CropRecords:
    """Every LUPerson crop, held compactly (:class:`~hpps_d2.data.crop_records.CropRecords`):
    the ``luperson_all`` split of full-scale pre-training (configs/pretrain_lup4m.yaml)."""
    return load_luperson(dataset_dir, split, compact=True)


SPLITS = [
    SplitSpec(
        name="luperson_30k",
        loader=load_luperson,
        subdir="luperson",
        split="30k",
        task="reid",
        role="train",
        domain="luperson",
        labeled=False,
        evaluator_type=None,
        readme_section=_SECTION,
        published={"images": 30000},
    ),
]
# every crop; 4,180,243 by LUPerson's paper, a count not verified against the released files:
# none is published here
SPLITS.append(dataclasses.replace(SPLITS[0], name="luperson_all", loader=load_luperson_all, split="all", published={}))
# LUPerson-NL (about 10.7M crops of 21K videos; LUP-NL/convert_lmdb.py writes the same LMDB +
# keys.pkl, a dict {"keys", "pids"} with noisy track ids): every crop, each its own
# pseudo-identity as for LUPerson. Its track ids are not used as labels (ours: the paper pre-trains
# on unlabeled LUPerson; reading them as labels, PNL-style, is not built).
SPLITS.append(dataclasses.replace(SPLITS[1], name="luperson_nl_all", subdir="luperson_nl", domain="luperson_nl"))
