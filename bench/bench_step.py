#!/usr/bin/env python
"""
Cost of one hybrid pre-training iteration vs a plain detectron2 Faster R-CNN iteration with the
same backbone on the same two-view batch, measured in one run (forward + backward + optimizer).

    python bench/bench_step.py [--config configs/synth/pretrain_shufflenet.yaml] [--images 4] [--repeat 5]

Models, all on the same backbone and batch (every view of every image):
* plain detectron2 Faster R-CNN: RPN + detectron2's C4 head (Res5ROIHeads: res5 per RoI, the same
  trunk as ours) for ResNets; RPN + StandardROIHeads (2 FC box head) for ShuffleNet, for which
  detectron2 has no C4 head;
* PersonSearchRCNN: the NAE person-search model alone (RPN + RoI trunk + norm-aware embedding + OIM);
* HybridPretrainRCNN: the whole Eq. 1 (adds the SimSiam predictor, the two IAMs, pseudo-id OIM).
Target: hybrid <= 1.25x plain. Needs the synthetic world for real images and boxes.
"""
import argparse
import os
import time

import numpy as np
import torch
from tabulate import tabulate

import hpps_d2  # noqa: F401
from detectron2.config import get_cfg
from detectron2.modeling import build_model
from detectron2.utils.events import EventStorage
from hpps_d2.config import add_hpps_config
from hpps_d2.data.hybrid_mapper import HybridDatasetMapper
from hpps_d2.data.unify import load_unified

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _time_steps(model, inputs, repeat):
    opt = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=1e-4, momentum=0.9)
    model.train()
    ts = []
    with EventStorage():
        for i in range(repeat + 1):
            torch.manual_seed(i)
            t = time.perf_counter()
            losses = model(inputs)
            loss = sum(losses.values())
            opt.zero_grad()
            loss.backward()
            if hasattr(model, "apply_pending_updates"):
                model.apply_pending_updates()
            opt.step()
            if i:
                ts.append(time.perf_counter() - t)
    return sorted(ts)[len(ts) // 2]


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    p.add_argument("--config", default=os.path.join(REPO, "configs", "synth", "pretrain_shufflenet.yaml"))
    p.add_argument("--images", type=int, default=4)
    p.add_argument("--repeat", type=int, default=5)
    p.add_argument("opts", nargs="*", default=[])
    args = p.parse_args()
    cfg = add_hpps_config(get_cfg())
    cfg.merge_from_file(args.config)
    cfg.merge_from_list(args.opts)
    unified = load_unified(cfg.DATASETS.TRAIN)
    cfg.MODEL.OIM.NUM_IDENTITIES = unified.num_identities
    # one image of every source, then more from the mix, mapped once: the same batch for all models
    rng = np.random.default_rng(0)
    by_source = {}
    for r in unified.records:
        by_source.setdefault(r["source"], []).append(r)
    picks = [v[0] for v in by_source.values()]
    picks += [unified.records[i] for i in rng.choice(len(unified.records), max(0, args.images - len(picks)), replace=False)]
    picks = picks[: args.images]
    np.random.seed(0)
    batch = [HybridDatasetMapper(cfg)(r) for r in picks]
    views = [v for b in batch for v in b["views"]]

    plain_cfg = cfg.clone()
    plain_cfg.MODEL.META_ARCHITECTURE = "GeneralizedRCNN"
    plain_cfg.MODEL.PROPOSAL_GENERATOR.NAME = "RPN"
    if cfg.MODEL.BACKBONE.NAME == "build_resnet_backbone":
        plain_cfg.MODEL.ROI_HEADS.NAME = "Res5ROIHeads"
    else:
        plain_cfg.MODEL.ROI_HEADS.NAME = "StandardROIHeads"
        plain_cfg.MODEL.ROI_BOX_HEAD.NAME = "FastRCNNConvFCHead"
        plain_cfg.MODEL.ROI_BOX_HEAD.NUM_FC = 2
        plain_cfg.MODEL.ROI_BOX_HEAD.POOLER_RESOLUTION = 7
    ps_cfg = cfg.clone()
    ps_cfg.MODEL.META_ARCHITECTURE = "PersonSearchRCNN"

    torch.manual_seed(0)
    t_plain = _time_steps(build_model(plain_cfg), views, args.repeat)
    t_ps = _time_steps(build_model(ps_cfg), views, args.repeat)
    t_hyb = _time_steps(build_model(cfg), batch, args.repeat)
    rows = [
        ["plain detectron2 Faster R-CNN", f"{t_plain:.3f}", "1.00"],
        ["PersonSearchRCNN (NAE + OIM)", f"{t_ps:.3f}", f"{t_ps / t_plain:.2f}"],
        ["HybridPretrainRCNN (Eq. 1)", f"{t_hyb:.3f}", f"{t_hyb / t_plain:.2f}"],
    ]
    print(f"{args.config}: {len(batch)} images = {len(views)} views, backbone {cfg.MODEL.BACKBONE.NAME}, "
          f"plain head {plain_cfg.MODEL.ROI_HEADS.NAME}, "
          f"{cfg.MODEL.OIM.NUM_IDENTITIES} OIM identities, {torch.get_num_threads()} threads")
    print(tabulate(rows, headers=["model", "s / iteration", "vs plain"], tablefmt="github"))


if __name__ == "__main__":
    main()
