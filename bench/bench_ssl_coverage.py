#!/usr/bin/env python
"""
Which ssl images (detection and unlabeled re-ID images) contribute to L_con when each process holds
2 images (configs/pretrain.yaml: 16 images on 8 GPUs), on real synthetic-world batches.

    HPPS_DATASETS=datasets python bench/bench_ssl_coverage.py [--procs 2] [--images-per-proc 2] [--iters 40]

N CPU processes (gloo) draw their batches from the trainer's own deterministic data stream and run
the hybrid model's forward. Per rank and step it records the ssl images, those with at least one
person matched across the two views, and the number of matched persons. Two rules are applied to
the same batches:
* per rank (the rule before issue E): a rank's L_con was 0 unless that rank alone had >= 2 matched
  persons (the predictor's BatchNorm needs two rows), so its images did not contribute;
* global batch (now): the matched persons of every rank form one batch; an image contributes when
  it has a matched person and the global batch has >= 2.
Needs the synthetic world (tools/make_synth_data.py --out datasets/synth).
"""
import argparse
import os

import torch
import torch.multiprocessing as mp

import hpps_d2  # noqa: F401
from detectron2.config import get_cfg
from detectron2.modeling import build_model
from detectron2.utils import comm
from detectron2.utils.events import EventStorage
from hpps_d2.config import add_hpps_config
from hpps_d2.data.build import DeterministicTrainLoader
from hpps_d2.data.hybrid_mapper import HybridDatasetMapper
from hpps_d2.data.unify import load_unified
from hpps_d2.engine.launch import launch
from hpps_d2.modeling.meta_arch.hybrid_pretrain import HybridPretrainRCNN

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _measure(args, out_file):
    cfg = add_hpps_config(get_cfg())
    cfg.merge_from_file(args.config)
    cfg.SOLVER.IMS_PER_BATCH = args.images_per_proc * comm.get_world_size()
    unified = load_unified(cfg.DATASETS.TRAIN)
    cfg.MODEL.OIM.NUM_IDENTITIES = unified.num_identities
    records, sizes = [], []
    for s in unified.sources:
        recs = [r for r in unified.records if r["source"] == s.name]
        records.extend(recs)
        sizes.append(len(recs))
    loader = DeterministicTrainLoader(records, sizes, HybridDatasetMapper(cfg), cfg.SOLVER.IMS_PER_BATCH, 0, None, 0)
    torch.manual_seed(0)
    model = build_model(cfg)
    model.train()
    seen = []
    matched = HybridPretrainRCNN._matched_persons

    def record(extras, view_of_image, ssl_images):
        h1, h2, image = matched(extras, view_of_image, ssl_images)
        seen.append((len(ssl_images), torch.unique(image).numel(), len(h1)))
        return h1, h2, image

    model._matched_persons = record
    it = iter(loader)
    rows = []
    with EventStorage(), torch.no_grad():
        for _ in range(args.iters):
            model(next(it))
            n_ssl, n_img, k_local = seen[-1]
            k_global = sum(r[2] for r in comm.all_gather(seen[-1]))
            rows.append((n_ssl, n_img if k_local >= 2 else 0, n_img if k_global >= 2 else 0))
    every = comm.all_gather(rows)
    if comm.is_main_process():
        total = [sum(r[i] for rank in every for r in rank) for i in range(3)]
        with open(out_file, "w") as f:
            f.write(f"{total[0]} {total[1]} {total[2]}\n")


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    p.add_argument("--config", default=os.path.join(REPO, "configs", "synth", "pretrain_shufflenet.yaml"))
    p.add_argument("--procs", type=int, default=2)
    p.add_argument("--images-per-proc", type=int, default=2)
    p.add_argument("--iters", type=int, default=40)
    p.add_argument("--out", default="/tmp/bench_ssl_coverage.txt")
    args = p.parse_args()
    mp.set_start_method("spawn", force=True)
    launch(_measure, args.procs, dist_url="auto", args=(args, args.out))
    n_ssl, before, after = (int(v) for v in open(args.out).read().split())
    print(f"{args.procs} processes x {args.images_per_proc} images, {args.iters} steps: {n_ssl} ssl images")
    print(f"contributing to L_con, per-rank rule (before): {before} ({before / max(1, n_ssl):.1%})")
    print(f"contributing to L_con, global batch (now):     {after} ({after / max(1, n_ssl):.1%})")


if __name__ == "__main__":
    main()
