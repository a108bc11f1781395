"""
Crop records of an LMDB held as arrays (issue 13, "data at full LUPerson scale").

A list of one dict per crop costs about 1 KiB per record in every process that builds it (and
again in the serialised copy the loader makes): 4 GiB per process for LUPerson's 4M crops, 10 GiB
for LUPerson-NL. :class:`CropRecords` keeps the keys of the crops in one fixed-width byte array
(LUPerson's 24-character keys: 24 bytes per crop) and the fields every crop of the source shares
once; record ``i`` is built when it is read. Its person ids are implicit: ``UNLABELED`` as
loaded, ``id_start + i`` once unification has numbered its pseudo-identities
(:func:`hpps_d2.data.unify.unify`).

The records it yields equal, field for field and in order, the dicts of the list form
(:func:`hpps_d2.data.datasets.luperson.load_luperson` ``compact=False``; tested). Each read builds
a new dict: a change made to it is not kept (no code of the project changes a loaded record;
unification and the loaders copy them).

:class:`ChainedRecords` is the concatenation of record sequences of several sources (lists and
:class:`CropRecords`), as unification returns them, without copying any of them.
"""
import bisect
import os
from collections.abc import Sequence
from typing import Iterator, List, Optional

import numpy as np

from .datasets.common import UNLABELED

__all__ = ["CropRecords", "ChainedRecords", "chain_records", "unusual_keys"]


def unusual_keys(keys: np.ndarray) -> np.ndarray:
    """
    Indices of the LMDB keys whose ``<lmdb>/<key>`` path must be checked on its own: with a
    ``/`` or a NUL, or equal to "", "." or "..". Every other key adds one plain component to the
    LMDB folder, so its path is inside a dataset folder exactly when the LMDB folder is
    (:func:`hpps_d2.data.datasets.common.path_inside`).
    """
    if not keys.size:
        return np.zeros(0, np.int64)
    odd = np.char.find(keys, b"/") >= 0
    odd |= np.isin(keys, np.array([b"", b".", b".."], dtype=keys.dtype))
    # a NUL inside a key (numpy drops trailing ones, and np.char.find cannot look for b"\0"):
    # a zero byte before the key's length, 1M keys at a time
    width = keys.dtype.itemsize
    for a in range(0, keys.size, 1 << 20):
        part = keys[a : a + (1 << 20)]
        raw = np.frombuffer(part.tobytes(), np.uint8).reshape(part.size, width)
        odd[a : a + part.size] |= ((raw == 0) & (np.arange(width) < np.char.str_len(part)[:, None])).any(axis=1)
    return np.flatnonzero(odd)


class CropRecords(Sequence):
    """
    Unlabeled crops of one LMDB environment, as a read-only sequence of crop records
    ``{"file_name", "image_id", "person_id", "camera_id", "image_source", **fields}``.

    Args:
        lmdb_dir: the LMDB environment folder.
        keys: (N,) byte-string array (numpy ``S`` dtype) of the crops' LMDB keys, UTF-8.
        id_start: None: every ``person_id`` is ``UNLABELED``; else crop ``i`` has ``id_start + i``.
        fields: further keys shared by every record (unification's source, task, domain, ...).
    """

    def __init__(self, lmdb_dir: str, keys: np.ndarray, id_start: Optional[int] = None, **fields):
        if keys.ndim != 1 or keys.dtype.kind != "S":
            raise TypeError(f"keys must be a 1-d numpy byte-string array, got {keys.dtype} of shape {keys.shape}")
        self.lmdb_dir, self.keys, self.id_start, self.fields = lmdb_dir, keys, id_start, fields

    def __len__(self) -> int:
        return int(self.keys.shape[0])

    def __getitem__(self, i):
        if isinstance(i, slice):
            return self.take(np.arange(len(self))[i])
        n = len(self)
        if not -n <= i < n:
            raise IndexError(f"crop record {i} of {n}")
        i = int(i) % n
        key = self.keys[i].decode("utf-8")
        record = {
            "file_name": os.path.join(self.lmdb_dir, key),
            "image_id": key,
            "person_id": UNLABELED if self.id_start is None else self.id_start + i,
            "camera_id": 0,
            "image_source": {"type": "lmdb", "path": self.lmdb_dir, "key": key},
        }
        record.update(self.fields)
        return record

    def __iter__(self) -> Iterator[dict]:
        for i in range(len(self)):
            yield self[i]

    def take(self, indices: np.ndarray) -> "CropRecords":
        """The records at ``indices``, in that order, as new crops (``id_start`` is kept only
        while no identity is assigned: a subset must be unified, not renumbered by position)."""
        if self.id_start is not None:
            raise ValueError("take() of unified crop records would renumber their identities; subset before unify()")
        return CropRecords(self.lmdb_dir, self.keys[np.asarray(indices, dtype=np.int64)], None, **self.fields)

    def unified(self, id_start: int, **fields) -> "CropRecords":
        """The same crops with identities ``id_start .. id_start + N - 1`` and ``fields`` added."""
        return CropRecords(self.lmdb_dir, self.keys, int(id_start), **{**self.fields, **fields})

    @property
    def num_identities(self) -> int:
        """Distinct labeled identities (:func:`~hpps_d2.data.datasets.common.count_identities`)."""
        return 0 if self.id_start is None else len(self)

    def path_check_indices(self) -> np.ndarray:
        """The records whose paths decide whether every path is inside a folder: the first one
        (its LMDB folder) and each :func:`unusual_keys` one
        (:func:`~hpps_d2.data.datasets.common.check_record_paths`)."""
        return np.union1d(np.zeros(min(1, len(self)), np.int64), unusual_keys(self.keys))

    @property
    def nbytes(self) -> int:
        return int(self.keys.nbytes)

    def __repr__(self):
        return f"CropRecords({len(self):,} crops of {self.lmdb_dir!r}, {self.nbytes / 2**20:.1f} MiB of keys, id_start={self.id_start})"


class ChainedRecords(Sequence):
    """The records of several sequences, one after another (read-only; nothing is copied)."""

    def __init__(self, parts: Sequence[Sequence[dict]]):
        self.parts = [p for p in parts if len(p)]
        self.offsets = [0]
        for p in self.parts:
            self.offsets.append(self.offsets[-1] + len(p))

    def __len__(self) -> int:
        return self.offsets[-1]

    def __getitem__(self, i):
        if isinstance(i, slice):
            return [self[j] for j in range(len(self))[i]]
        n = len(self)
        if not -n <= i < n:
            raise IndexError(f"record {i} of {n}")
        i = int(i) % n
        part = bisect.bisect_right(self.offsets, i) - 1
        return self.parts[part][i - self.offsets[part]]

    def __iter__(self) -> Iterator[dict]:
        for p in self.parts:
            yield from p


def chain_records(parts: List[Sequence[dict]]) -> Sequence[dict]:
    """One sequence of ``parts`` in order: a plain list when every part is a list (the form the
    rest of detectron2 expects), else a :class:`ChainedRecords`."""
    if all(isinstance(p, list) for p in parts):
        return [r for p in parts for r in p]
    return ChainedRecords(parts)
