#!/usr/bin/env python
"""
PRW split loading at real size: seconds to load ``prw_query`` and ``prw_gallery``.

    python bench/bench_prw_query_loading.py [--repeats 3] [--keep DIR]

Writes a PRW-format folder into a temporary directory (or ``--keep DIR``): 6,112 test frames with
small ``annotations/<frame>.jpg.mat`` files (4-5 boxes each, 25,062 boxes in all, ``box_new``),
5,704 train frame names in ``frame_train.mat`` (listed only: the query loader reads the list),
2,057 CRLF lines in ``query_info.txt`` and tiny 16x16 JPEG frames (the loaders read only image
headers). Every query's person id also appears in another test frame, as in PRW. Then loads both
splits the way the catalog does (:func:`~hpps_d2.data.datasets.catalog.load_split`, paths
confined) and prints the best of ``--repeats`` runs and the query / gallery ratio. The query
loader reads every test annotation to find gallery matches, so the ratio shows what that costs.
"""
import argparse
import io
import os
import shutil
import sys
import tempfile
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# isort: off
import hpps_d2  # noqa: F401  (first: applies the compat patches before detectron2.data)
from PIL import Image
from scipy.io import savemat

from hpps_d2.data.datasets.catalog import load_split
from hpps_d2.data.datasets.prw import SPLITS

N_TEST, N_TRAIN, N_BOXES, N_QUERIES = 6112, 5704, 25062, 2057


def _names(n: int, seq: int):
    """PRW frame names ``c<cam>s<seq>_<frame6>``, cameras 1-6 in turn."""
    return [f"c{i % 6 + 1}s{seq}_{i:06d}" for i in range(n)]


def _cell(names):
    c = np.empty((len(names), 1), dtype=object)
    for i, n in enumerate(names):
        c[i, 0] = np.array([n])
    return c


def write_prw(root: str, seed: int = 0) -> None:
    """Write the real-size PRW-format fixture described in the module docstring under ``root``."""
    rng = np.random.default_rng(seed)
    os.makedirs(os.path.join(root, "frames"))
    os.makedirs(os.path.join(root, "annotations"))
    buf = io.BytesIO()
    Image.new("RGB", (16, 16), (90, 120, 30)).save(buf, format="JPEG")
    jpeg = buf.getvalue()
    test = _names(N_TEST, 2)
    per_frame = np.full(N_TEST, N_BOXES // N_TEST)
    per_frame[: N_BOXES - per_frame.sum()] += 1  # 25,062 boxes over 6,112 frames
    shows = {}  # pid -> frames showing it
    for frame, n in zip(test, per_frame):
        with open(os.path.join(root, "frames", frame + ".jpg"), "wb") as f:
            f.write(jpeg)
        pids = (rng.choice(544, size=n, replace=False) + 1).astype(np.float64)  # distinct
        pids[rng.random(n) < 0.3] = -2  # unlabeled people
        xy = rng.uniform(0, 8, size=(n, 2))
        wh = rng.uniform(2, 8, size=(n, 2))
        rows = np.concatenate([pids[:, None], xy, wh], axis=1)
        savemat(os.path.join(root, "annotations", frame + ".jpg.mat"), {"box_new": rows})
        for pid in pids[pids > 0]:
            shows.setdefault(int(pid), []).append(frame)
    savemat(os.path.join(root, "frame_test.mat"), {"img_index_test": _cell(test)})
    savemat(os.path.join(root, "frame_train.mat"), {"img_index_train": _cell(_names(N_TRAIN, 1))})
    matched = sorted(pid for pid, frames in shows.items() if len(frames) > 1)
    lines = []
    for q in range(N_QUERIES):
        pid = matched[q % len(matched)]
        frame = shows[pid][q % len(shows[pid])]
        lines.append(f"{pid} 1.5 2.5 6.25 7 {frame}\r\n")
    with open(os.path.join(root, "query_info.txt"), "w", newline="") as f:
        f.write("".join(lines))


def _seconds(spec, root: str, repeats: int) -> tuple:
    best, n = float("inf"), 0
    for _ in range(repeats):
        t = time.perf_counter()
        n = len(load_split(spec, root))
        best = min(best, time.perf_counter() - t)
    return best, n


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--keep", help="write the fixture here and keep it (default: a temp folder)")
    args = p.parse_args()
    parent = args.keep or tempfile.mkdtemp(prefix="bench_prw_")
    root = os.path.join(parent, "PRW")
    try:
        if not os.path.isdir(root):
            t = time.perf_counter()
            write_prw(root)
            print(f"wrote {root} in {time.perf_counter() - t:.1f} s")
        specs = {s.role: s for s in SPLITS}
        gallery, n_gallery = _seconds(specs["gallery"], root, args.repeats)
        query, n_query = _seconds(specs["query"], root, args.repeats)
        print(f"prw_gallery: {n_gallery} frames  {gallery:.2f} s (best of {args.repeats})")
        print(f"prw_query:   {n_query} queries {query:.2f} s (best of {args.repeats})")
        print(f"query / gallery: {query / gallery:.2f}")
    finally:
        if not args.keep:
            shutil.rmtree(parent, ignore_errors=True)


if __name__ == "__main__":
    main()
