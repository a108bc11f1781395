#!/usr/bin/env python
"""
Cost of one hybrid pre-training iteration vs a plain detectron2 Faster R-CNN iteration with the
same backbone on the same two-view batch, measured in one run (forward + backward + optimizer).

    python bench/bench_step.py [--config configs/synth/pretrain_shufflenet.yaml] [--images 4] [--repeat 5]

Models, all on the same backbone and batch (every view of every image):
* plain detectron2 Faster R-CNN, C4 (the baseline): RPN + detectron2's Res5ROIHeads (pool, last
  backbone stage per RoI, mean-pool, FastRCNNOutputLayers) whose per-RoI stage is the same trunk as
  ours (cfg.MODEL.ROI_BOX_HEAD.TRUNK: res5 with bottleneck blocks for R50, exactly detectron2's own;
  basic blocks for R18, where detectron2 would build a bottleneck res5; ShuffleNetV2 stage4 + conv5);
* plain detectron2 Faster R-CNN, 2 FC (for reference): RPN + StandardROIHeads with a 2-FC box head,
  the usual FPN-style head, which drops the per-RoI stage;
* PersonSearchRCNN: the NAE person-search model alone (RPN + RoI trunk + norm-aware embedding + OIM);
* HybridPretrainRCNN: the whole Eq. 1 (adds the SimSiam predictor, the two IAMs, pseudo-id OIM).
Target: hybrid <= 1.25x plain C4. Besides seconds it counts the floating-point operations of one
forward + backward (torch.utils.flop_counter, matmuls and convolutions; independent of machine
noise), and splits the hybrid model's by module. Needs the synthetic world for real images and boxes.
"""
import argparse
import os
import time

import numpy as np
import torch
from tabulate import tabulate
from torch.utils.flop_counter import FlopCounterMode

import hpps_d2  # noqa: F401
from detectron2.config import get_cfg
from detectron2.layers import ShapeSpec
from detectron2.modeling import ROI_HEADS_REGISTRY, build_model
from detectron2.modeling.roi_heads import FastRCNNOutputLayers, Res5ROIHeads
from detectron2.utils.events import EventStorage
from hpps_d2.config import add_hpps_config
from hpps_d2.data.hybrid_mapper import HybridDatasetMapper
from hpps_d2.data.unify import load_unified
from hpps_d2.modeling.roi_heads.box_trunk import build_box_trunk

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@ROI_HEADS_REGISTRY.register()
class BenchC4TrunkROIHeads(Res5ROIHeads):
    """detectron2's C4 box head (Res5ROIHeads) with the per-RoI stage of MODEL.ROI_BOX_HEAD.TRUNK."""

    @classmethod
    def from_config(cls, cfg, input_shape):
        ret = super().from_config(cfg, input_shape)
        trunk = build_box_trunk(cfg, input_shape[cfg.MODEL.ROI_HEADS.IN_FEATURES[0]].channels)
        ret["res5"] = trunk
        ret["box_predictor"] = FastRCNNOutputLayers(cfg, ShapeSpec(channels=trunk.out_channels, height=1, width=1))
        return ret


def _flops(model, inputs):
    """
    GFLOP of one training step: (forward + backward total, {top-level module: forward only}); the
    backward pass runs outside the modules' scopes, so only the forward is split by module.
    """
    model.train()
    name = type(model).__name__
    with EventStorage():
        torch.manual_seed(0)
        forward = FlopCounterMode(display=False, depth=2)
        with forward:
            losses = model(inputs)
        backward = FlopCounterMode(display=False, depth=1)
        with backward:
            sum(losses.values()).backward()
    model.zero_grad(set_to_none=True)
    per_module = {}
    for key, counts in forward.get_flop_counts().items():
        parts = key.split(".")
        if len(parts) == 2 and parts[0] == name:
            per_module[parts[1]] = sum(counts.values()) / 1e9
    return (forward.get_total_flops() + backward.get_total_flops()) / 1e9, per_module


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
    plain_cfg.MODEL.ROI_HEADS.NAME = "BenchC4TrunkROIHeads"
    fc_cfg = plain_cfg.clone()
    fc_cfg.MODEL.ROI_HEADS.NAME = "StandardROIHeads"
    fc_cfg.MODEL.ROI_BOX_HEAD.NAME = "FastRCNNConvFCHead"
    fc_cfg.MODEL.ROI_BOX_HEAD.NUM_FC = 2
    fc_cfg.MODEL.ROI_BOX_HEAD.POOLER_RESOLUTION = 7
    ps_cfg = cfg.clone()
    ps_cfg.MODEL.META_ARCHITECTURE = "PersonSearchRCNN"

    rows, times, flops, split = [], {}, {}, {}
    for name, c, inputs in (
        ("plain detectron2 Faster R-CNN, C4 (same trunk)", plain_cfg, views),
        ("plain detectron2 Faster R-CNN, 2 FC head", fc_cfg, views),
        ("PersonSearchRCNN (NAE + OIM)", ps_cfg, views),
        ("HybridPretrainRCNN (Eq. 1)", cfg, batch),
    ):
        torch.manual_seed(0)
        model = build_model(c)
        flops[name], split[name] = _flops(model, inputs)
        times[name] = _time_steps(model, inputs, args.repeat)
    base = next(iter(times))
    for name, t in times.items():
        rows.append([name, f"{t:.3f}", f"{t / times[base]:.2f}", f"{flops[name]:.2f}", f"{flops[name] / flops[base]:.2f}"])
    print(f"{args.config}: {len(batch)} images = {len(views)} views, backbone {cfg.MODEL.BACKBONE.NAME}, "
          f"trunk {cfg.MODEL.ROI_BOX_HEAD.TRUNK}, {cfg.MODEL.OIM.NUM_IDENTITIES} OIM identities, {torch.get_num_threads()} threads")
    print(tabulate(rows, headers=["model", "s / iteration", "vs plain C4", "GFLOP fwd+bwd", "vs plain C4"], tablefmt="github"))
    hyb = split["HybridPretrainRCNN (Eq. 1)"]
    total = sum(hyb.values())
    print("\nHybridPretrainRCNN forward GFLOP by module:")
    print(tabulate([[k, f"{v:.2f}", f"{100 * v / total:.1f}%"] for k, v in sorted(hyb.items(), key=lambda kv: -kv[1])],
                   headers=["module", "GFLOP", "share"], tablefmt="github"))


if __name__ == "__main__":
    main()
