#!/usr/bin/env python
"""
Data throughput per worker: images/s of the hybrid mapper (two views; expand_resize for re-ID
crops) vs detectron2's DatasetMapper (one view) on the same scene images, measured in one run.

    python bench/bench_data.py [--dataset synth_crowdhuman_train] [--crops synth_msmt17_train] [--n 60]

Needs the synthetic world (python tools/make_synth_data.py --out datasets/synth). Uses the
synthetic pre-training config's input sizes.
"""
import argparse
import os
import time

import numpy as np
from tabulate import tabulate

import hpps_d2  # noqa: F401
from detectron2.config import get_cfg
from detectron2.data import DatasetCatalog, DatasetMapper, MetadataCatalog
from hpps_d2.config import add_hpps_config
from hpps_d2.data.hybrid_mapper import HybridDatasetMapper
from hpps_d2.data.unify import unify

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _rate(mapper, records, n):
    np.random.seed(0)
    for r in records[:3]:
        mapper(dict(r))  # warm-up (file cache, lazy imports)
    t = time.perf_counter()
    for i in range(n):
        mapper(dict(records[i % len(records)]))
    return n / (time.perf_counter() - t)


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    p.add_argument("--dataset", default="synth_crowdhuman_train")
    p.add_argument("--crops", default="synth_msmt17_train")
    p.add_argument("--n", type=int, default=60)
    args = p.parse_args()
    cfg = add_hpps_config(get_cfg())
    cfg.merge_from_file(os.path.join(REPO, "configs", "synth", "pretrain_shufflenet.yaml"))
    scenes = DatasetCatalog.get(args.dataset)
    meta = MetadataCatalog.get(args.dataset)
    unified_scenes = unify([(args.dataset, scenes, meta.task, meta.labeled)]).records
    crops_meta = MetadataCatalog.get(args.crops)
    unified_crops = unify([(args.crops, DatasetCatalog.get(args.crops), crops_meta.task, crops_meta.labeled)]).records
    d2 = DatasetMapper(cfg, is_train=True)
    hybrid = HybridDatasetMapper(cfg)
    r_d2 = _rate(d2, scenes, args.n)
    r_h = _rate(hybrid, unified_scenes, args.n)
    r_c = _rate(hybrid, unified_crops, args.n)
    rows = [
        ["detectron2 DatasetMapper (1 view)", args.dataset, f"{r_d2:.1f}", f"{r_d2:.1f}", "1.00"],
        ["HybridDatasetMapper (2 views)", args.dataset, f"{r_h:.1f}", f"{2 * r_h:.1f}", f"{r_d2 / r_h:.2f}"],
        ["HybridDatasetMapper (2 views, expand_resize)", args.crops, f"{r_c:.1f}", f"{2 * r_c:.1f}", f"{r_d2 / r_c:.2f}"],
    ]
    print(f"one worker, {args.n} records, input {cfg.INPUT.MIN_SIZE_TRAIN} / max {cfg.INPUT.MAX_SIZE_TRAIN}")
    print(tabulate(rows, headers=["mapper", "records", "images/s", "views/s", "time per image vs d2"], tablefmt="github"))


if __name__ == "__main__":
    main()
