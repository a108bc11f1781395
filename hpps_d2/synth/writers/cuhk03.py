"""
CUHK03-like re-ID crops in both of its forms:

* ``cuhk03/cuhk03_release/cuhk-03.mat``: MATLAB v7.3 (HDF5). ``labeled`` and ``detected`` are
  (1, 5) references, one per camera pair; each dereferences (transposed) to (N_pair, 10)
  references, one row per person, slots 0-4 view 1 and 5-9 view 2; an image dereferences
  (transposed) to (H, W, 3) uint8 RGB, an empty slot to a (2,) uint64 zero array. ``testsets``
  is (1, 20) references to small (T, 2) ``[pair, person]`` 1-based tables.
* ``cuhk03_new_protocol_config_{labeled,detected}.mat`` (MATLAB v5): ``filelist`` (N, 1) cell of
  ``{pair}_{person:03d}_{view}_{slot:02d}.png``, ``labels`` (N, 1) uint16 1-based identity,
  ``camId`` (N, 1) uint8 view, ``train_idx/query_idx/gallery_idx`` (K, 1) uint16 1-based; each test
  identity has exactly one query per view, the rest is gallery.
* ``images_labeled/<name>.png``: the labeled crops, extracted.

"Detected" crops are the labeled shots cut by a jittered box; a few slots exist in only one of
the two versions, as in the real release (14,096 labeled vs 14,097 detected images).
"""

import os
from typing import Dict, List

import h5py
import numpy as np

from ..crops import cut, render_context
from ..styles import STYLES, camera_looks
from .common import cell_column, savemat, split_counts, write_image

__all__ = ["write"]

SUBDIR = "cuhk03"
PAIR_SHARES = (843, 440, 77, 58, 49)
VERSIONS = ("labeled", "detected")
_H5_HEADER = (
    b"MATLAB 7.3 MAT-file, Platform: GLNXA64, Created on: Mon Jan  1 00:00:00 2018 HDF5 schema 1.00"
)


def _pair_sizes(n: int) -> List[int]:
    sizes = [max(2, int(round(n * s / sum(PAIR_SHARES)))) for s in PAIR_SHARES]
    sizes[0] += n - sum(sizes)
    return sizes


def _slots(rng) -> Dict[str, List[int]]:
    """Filled slot indices (0-9) per version."""
    base = []
    for first in (0, 5):
        k = 5 if rng.random() < 0.6 else int(rng.integers(2, 5))
        base += list(range(first, first + k))
    det = list(base)
    if rng.random() < 0.05:
        view = [s for s in det if s < 5] if rng.random() < 0.5 else [s for s in det if s >= 5]
        if len(view) < 5:
            det.append(view[-1] + 1)
        elif len(view) > 2:
            det.remove(view[-1])
    return {"labeled": base, "detected": sorted(det)}


def _write_h5(path: str, images: Dict[str, List[List]], testsets: List[np.ndarray]) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with h5py.File(path, "w", userblock_size=512) as f:
        refs = f.create_group("#refs#")
        counter = [0]

        def store(data, cls, empty=False):
            counter[0] += 1
            d = refs.create_dataset(f"r{counter[0]:06d}", data=data, track_times=False)
            d.attrs["MATLAB_class"] = np.bytes_(cls)
            if empty:
                d.attrs["MATLAB_empty"] = np.uint8(1)
            return d.ref

        empty_ref = store(np.zeros(2, np.uint64), "double", empty=True)
        for version in VERSIONS:
            pair_refs = []
            for rows in images[version]:
                table = np.empty((10, len(rows)), dtype=h5py.ref_dtype)
                for p, slots in enumerate(rows):
                    for s in range(10):
                        img = slots.get(s)
                        table[s, p] = (
                            empty_ref
                            if img is None
                            else store(
                                np.ascontiguousarray(img[:, :, ::-1].transpose(2, 1, 0)), "uint8"
                            )
                        )
                pair_refs.append(store(table, "cell"))
            top = f.create_dataset(
                version, data=np.array([pair_refs], dtype=h5py.ref_dtype), track_times=False
            )
            top.attrs["MATLAB_class"] = np.bytes_("cell")
        ts = [store(t.T.astype(np.float64), "double") for t in testsets]
        top = f.create_dataset(
            "testsets", data=np.array([ts], dtype=h5py.ref_dtype), track_times=False
        )
        top.attrs["MATLAB_class"] = np.bytes_("cell")
    with open(path, "r+b") as fh:
        fh.write(_H5_HEADER.ljust(116, b" ") + b"\x00" * 8 + b"\x00\x02IM")


def write(root: str, cfg, bank) -> dict:
    """Write ``<root>/cuhk03``; returns the manifest entries of both versions."""
    out = os.path.join(root, SUBDIR)
    style = STYLES["cuhk03"]
    knobs = cfg.knobs
    sizes = _pair_sizes(cfg.size("cuhk03", "ids"))
    looks = camera_looks(style, 10, cfg.rng("cuhk03", 99), knobs.camera_shift)
    n_ids = sum(sizes)
    neighbours = bank.take("cuhk03", n_ids, 30)
    images = {v: [[{} for _ in range(n)] for n in sizes] for v in VERSIONS}
    label = 0
    entries = {v: [] for v in VERSIONS}  # (name, label, view)
    for pair, n in enumerate(sizes):
        for person in range(n):
            label += 1
            rng = cfg.rng("cuhk03", pair, person)
            identity = bank.get("cuhk03", label - 1)
            slots = _slots(rng)
            for s in sorted(set(slots["labeled"]) | set(slots["detected"])):
                view = 1 if s < 5 else 2
                shot = render_context(
                    rng,
                    identity,
                    style,
                    looks[2 * pair + view - 1],
                    float(rng.uniform(72, 100)),
                    knobs,
                    neighbours,
                )
                crops = {
                    "labeled": cut(shot, rng, margin=(0.02, 0.06)),
                    "detected": cut(shot, rng, margin=(0.04, 0.14), jitter=0.06),
                }
                name = f"{pair + 1}_{person + 1:03d}_{view}_{s + 1:02d}.png"
                for v in VERSIONS:
                    if s in slots[v]:
                        images[v][pair][person][s] = crops[v]
                        entries[v].append((name, label, view))
                if s in slots["labeled"]:
                    write_image(os.path.join(out, "images_labeled", name), crops["labeled"], style)
    rng = cfg.rng("cuhk03", 98)
    test_ids = set(int(i) + 1 for i in rng.choice(n_ids, n_ids * 700 // 1467, replace=False))
    splits = {}
    for v in VERSIONS:
        rows = entries[v]
        train, query, gallery = [], [], []
        by_id_view = {}
        for k, (_, lab, view) in enumerate(rows):
            by_id_view.setdefault((lab, view), []).append(k)
        queries = {
            ks[int(rng.integers(len(ks)))]
            for (lab, _), ks in sorted(by_id_view.items())
            if lab in test_ids
        }
        for k, (_, lab, _) in enumerate(rows):
            (train if lab not in test_ids else query if k in queries else gallery).append(k + 1)
        savemat(
            os.path.join(out, f"cuhk03_new_protocol_config_{v}.mat"),
            {
                "filelist": cell_column([r[0] for r in rows]),
                "labels": np.array([[r[1]] for r in rows], np.uint16),
                "camId": np.array([[r[2]] for r in rows], np.uint8),
                "train_idx": np.array(train, np.uint16).reshape(-1, 1),
                "query_idx": np.array(query, np.uint16).reshape(-1, 1),
                "gallery_idx": np.array(gallery, np.uint16).reshape(-1, 1),
            },
        )
        n_test = len({rows[k - 1][1] for k in query})
        splits[f"cuhk03_{v}_train"] = split_counts(
            len(train), None, len({rows[k - 1][1] for k in train})
        )
        splits[f"cuhk03_{v}_query"] = split_counts(len(query), None, n_test)
        splits[f"cuhk03_{v}_gallery"] = split_counts(
            len(gallery), None, len({rows[k - 1][1] for k in gallery})
        )
    persons = [(p + 1, q + 1) for p, n in enumerate(sizes) for q in range(n)]
    testsets = []
    for _ in range(20):
        pick = rng.choice(len(persons), min(len(persons), max(2, n_ids // 10)), replace=False)
        testsets.append(np.array(sorted(persons[int(i)] for i in pick), np.float64))
    _write_h5(os.path.join(out, "cuhk03_release", "cuhk-03.mat"), images, testsets)
    return {
        "splits": splits,
        "detail": {"pairs": sizes, "test_ids": len(test_ids)},
        "identities": {"all": [bank.get("cuhk03", i).combo for i in range(n_ids)]},
    }
