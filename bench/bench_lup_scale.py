#!/usr/bin/env python
"""
LUPerson at full scale (issue 13, section 2): what building the pre-training records of an
N-entry LUPerson LMDB costs per process and per data-loader worker, and the loader's images/s.

    python bench/bench_lup_scale.py [--entries 1000000] [--root /tmp/hpps_lup_bench] [--workers 2]
                                    [--samples 400] [--path compact|list]

The LMDB (LUPerson's layout: ``lmdb/`` of JPEG crops + ``keys.pkl``, keys
``{country:02d}_{city:02d}_{video:04d}_{image:08d}``) is written once under ``--root`` and reused;
its values cycle through 256 distinct 128 x 64 JPEG crops. Each measurement runs in a fresh
process: the time and memory of each step, for
LUPerson's crop records built the way training builds them (:func:`load_luperson` ``split="all"``,
unification, the loader's dataset: the anonymous memory it holds, RssAnon, which leaves out the
LMDB's file pages), then ``--workers`` data-loader workers map ``--samples`` crops with the
pre-training mapper (two views on a canvas) and report their private dirty memory (what each
worker wrote: its own allocations and the pages of the parent it copied). ``--path compact`` is the
``luperson_all`` split (:class:`hpps_d2.data.crop_records.CropRecords`); ``--path list`` the
list of dicts (``load_luperson(..., compact=False)``, the ``luperson_30k`` form) for comparison.
"""
import argparse
import json
import os
import pickle
import subprocess
import sys
import time

import numpy as np

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _status_mb(field: str) -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024.0
    raise RuntimeError(field)


def _private_dirty_mb() -> float:
    """Memory this process wrote and shares with no other (smaps_rollup Private_Dirty), MiB: a
    data-loader worker's own allocations plus the pages of its parent it copied on write. Unlike
    the resident set it leaves out the LMDB's file pages, which every process maps and the page
    cache holds once."""
    with open("/proc/self/smaps_rollup") as f:
        for line in f:
            if line.startswith("Private_Dirty:"):
                return int(line.split()[1]) / 1024.0
    raise RuntimeError("Private_Dirty")


def write_lmdb(root: str, entries: int) -> str:
    """The benchmark's LUPerson folder under ``root`` (written unless it exists with ``entries``)."""
    import cv2
    import lmdb

    out = os.path.join(root, f"luperson_{entries}")
    done = os.path.join(out, "done.json")
    if os.path.exists(done):
        return out
    os.makedirs(os.path.join(out, "lmdb"), exist_ok=True)
    rng = np.random.default_rng(0)
    crops = []
    for _ in range(256):
        img = np.full((128, 64, 3), rng.integers(0, 256, 3), np.uint8)
        img[rng.integers(0, 64) :, :, :] = rng.integers(0, 256, 3)  # two "clothes" colours
        img = np.clip(img + rng.normal(0, 12, img.shape), 0, 255).astype(np.uint8)
        crops.append(cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, 85])[1].tobytes())
    keys = [f"{(i // 100000) % 100:02d}_{(i // 10000) % 10:02d}_{(i // 100) % 10000:04d}_{i:08d}" for i in range(entries)]
    keys.sort()
    size = sum(len(crops[i % 256]) for i in range(entries))
    env = lmdb.open(os.path.join(out, "lmdb"), map_size=int(size * 1.6) + (1 << 28), lock=False, subdir=True)
    t = time.perf_counter()
    for a in range(0, entries, 100000):
        with env.begin(write=True) as txn:
            for i in range(a, min(entries, a + 100000)):
                txn.put(keys[i].encode("ascii"), crops[i % 256])
    env.close()
    with open(os.path.join(out, "keys.pkl"), "wb") as f:
        pickle.dump(keys, f, protocol=4)  # a plain list of str, as LUPerson's convert_lmdb.py writes
    with open(done, "w") as f:
        json.dump({"entries": entries, "bytes": size, "write_s": time.perf_counter() - t}, f)
    return out


class _Probe:
    """Map-style wrapper: maps sample k with the loader's dataset and reports the worker's USS."""

    def __init__(self, dataset, n):
        self.dataset, self.n = dataset, n

    def __len__(self):
        return self.n

    def __getitem__(self, k):
        out = self.dataset[(k, (k * 7919) % len(self.dataset))]  # spread over the whole list
        return os.getpid(), _private_dirty_mb(), len(out)


def measure(folder: str, args) -> dict:
    """Runs in a fresh process: each step's time and memory."""
    import torch
    from detectron2.config import get_cfg

    from hpps_d2.config import add_hpps_config
    from hpps_d2.data.build import SeededMapDataset
    from hpps_d2.data.datasets.luperson import load_luperson
    from hpps_d2.data.hybrid_mapper import HybridDatasetMapper
    from hpps_d2.data.unify import unify

    torch.set_num_threads(1)
    cfg = add_hpps_config(get_cfg())
    cfg.merge_from_file(os.path.join(REPO, "configs", "synth", "pretrain_shufflenet.yaml"))
    steps = {}
    # anonymous memory only (RssAnon): the LMDB's pages, which the key check reads, are file
    # pages that every process shares through the page cache
    base = _status_mb("RssAnon")

    def step(name, fn):
        t = time.perf_counter()
        out = fn()
        steps[name] = {"s": time.perf_counter() - t, "anon_mb": _status_mb("RssAnon") - base}
        return out

    recs = step("load_luperson(all)", lambda: load_luperson(folder, split="all", compact=args.path == "compact"))
    unified = step("unify", lambda: unify([("luperson_all", recs, "reid", False)]))
    del recs
    dataset = step("loader dataset", lambda: SeededMapDataset(unified.records, HybridDatasetMapper(cfg), seed=0))
    parent_private = _private_dirty_mb()
    loader = torch.utils.data.DataLoader(_Probe(dataset, args.samples), batch_size=None, num_workers=args.workers, prefetch_factor=4)
    t, workers = None, {}
    for i, (pid, private, _) in enumerate(loader):
        if i == args.workers * 4:  # after the first batches: worker start-up is not throughput
            t, first = time.perf_counter(), i
        workers[pid] = private
    rate = (args.samples - first) / (time.perf_counter() - t)
    return {"entries": len(unified.records), "identities": unified.num_identities, "steps": steps,
            "parent_private_mb": parent_private, "worker_private_mb": sorted(workers.values()), "images_per_s": rate}


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--entries", type=int, default=1000000)
    p.add_argument("--root", default="/tmp/hpps_lup_bench")
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--samples", type=int, default=400)
    p.add_argument("--path", choices=("compact", "list"), default="compact")
    p.add_argument("--child", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        print(json.dumps(measure(args.child, args)))
        return
    t = time.perf_counter()
    folder = write_lmdb(args.root, args.entries)
    print(f"LMDB: {folder} ({args.entries:,} entries; ready in {time.perf_counter() - t:.0f} s)", flush=True)
    cmd = [sys.executable, __file__, "--child", folder] + [f"--{k}={getattr(args, k)}" for k in ("workers", "samples", "path")]
    res = json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout.strip().splitlines()[-1])
    print(f"\npath: {args.path}; {res['entries']:,} crop records, {res['identities']:,} OIM identities")
    print("| step | s | anonymous memory held after it, MiB |\n|---|---|---|")
    for name, s in res["steps"].items():
        print(f"| {name} | {s['s']:.1f} | {s['anon_mb']:.0f} |")
    print(f"\nmain process private memory {res['parent_private_mb']:.0f} MiB; each worker's private memory after "
          f"{args.samples} samples: " + ", ".join(f"{u:.0f}" for u in res["worker_private_mb"]) + " MiB")
    print(f"loader: {res['images_per_s']:.1f} crops/s ({args.workers} workers, pre-training mapper, 2 views)")


if __name__ == "__main__":
    main()
