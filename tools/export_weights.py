#!/usr/bin/env python
"""
Export the weights of a hybrid pre-training checkpoint for others.

    python tools/export_weights.py output/pretrain_r50/model_final.pth \\
        --whole weights/hpps-r50-whole.pth --backbone weights/hpps-r50-backbone-torchvision.pth

``--whole``: the whole person-search model for fine-tuning in this project (``MODEL.WEIGHTS``):
backbone, RPN and RoI head, without the pre-training-only modules (SimSiam predictor, IAMs) and the
OIM tables (their size is the pre-training identity count; fine-tuning counts its own).

``--backbone``: the backbone and its last stage (ResNet res5 / ShuffleNetV2 stage4 + conv5) with
torchvision key names, a plain state dict for torchvision-based codebases (SeqNet, NAE, COAT)::

    torchvision.models.resnet50().load_state_dict(torch.load(path), strict=False)  # only fc missing

The architecture is read from the checkpoint's keys and, with ``--config-file``, checked
against the config. Both outputs hold only tensors and plain types (``weights_only=True`` loads).
"""

import argparse
import os
import pickle
import sys

import torch

from hpps_d2.checkpoint import (
    IncompatibleWeightsError,
    d2_to_torchvision,
    load_checkpoint,
    torchvision_arch_of_config,
    unwrap_state_dict,
    whole_model_for_finetuning,
)


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument(
        "checkpoint", help="a pre-training checkpoint ({'model': ...}), e.g. model_final.pth"
    )
    p.add_argument("--whole", default=None, help="write the whole model for fine-tuning here")
    p.add_argument("--backbone", default=None, help="write the torchvision-named backbone here")
    p.add_argument("--config-file", default=None, help="the config that built the checkpoint")
    p.add_argument(
        "--allow-pickle",
        action="store_true",
        help="load the checkpoint with weights_only=False (only for files you trust)",
    )
    args = p.parse_args(argv)
    if not (args.whole or args.backbone):
        p.error("nothing to do: give --whole and/or --backbone")
    return args


def _arch_of_config(path: str) -> str:
    from detectron2.config import get_cfg

    from hpps_d2.config import add_hpps_config

    cfg = add_hpps_config(get_cfg())
    cfg.merge_from_file(path)
    return torchvision_arch_of_config(cfg)


def _save(obj, path: str) -> None:
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    torch.save(obj, path)


def main(argv=None) -> dict:
    """Export; returns {"whole": path, "backbone": path} of what was written."""
    args = parse_args(argv)
    sd = unwrap_state_dict(load_checkpoint(args.checkpoint, args.allow_pickle))
    written = {}
    if args.whole:
        whole = whole_model_for_finetuning(sd)
        _save({"model": whole, "__author__": "hpps_d2", "matching_heuristics": False}, args.whole)
        print(f"whole model: {len(whole)} of {len(sd)} tensors -> {args.whole}")
        written["whole"] = args.whole
    if args.backbone:
        arch, backbone = d2_to_torchvision(sd)
        if args.config_file:
            expected = _arch_of_config(args.config_file)
            if expected != arch:
                raise IncompatibleWeightsError(
                    f"{args.config_file} builds {expected}, but the checkpoint holds {arch}"
                )
        _save(backbone, args.backbone)
        print(f"backbone: torchvision {arch}, {len(backbone)} tensors -> {args.backbone}")
        print(
            f"  torchvision.models.{arch}().load_state_dict(torch.load(path), strict=False)"
            "  # only fc.* missing"
        )
        written["backbone"] = args.backbone
    return written


if __name__ == "__main__":
    try:
        main()
    except (IncompatibleWeightsError, pickle.UnpicklingError, ValueError) as e:
        sys.exit(f"error: {e}")
