#!/usr/bin/env python
"""
Export the weights of a hybrid pre-training checkpoint for others.

    python tools/export_weights.py output/pretrain_r50/model_final.pth \\
        --whole weights/hpps_r50_whole.pth --backbone weights/hpps_r50_backbone_torchvision.pth

``--whole``: the whole person-search model for fine-tuning in this project (``MODEL.WEIGHTS``;
configs/finetune/nae_<dataset>_<arch>.yaml read weights/hpps_{r50,r18,shufflenet}_whole.pth):
backbone, RPN and RoI head, without the pre-training-only modules (SimSiam predictor, IAMs) and the
OIM tables (their size is the pre-training identity count; fine-tuning counts its own).

``--backbone``: the backbone and its last stage (ResNet res5 / ShuffleNetV2 stage4 + conv5) with
torchvision key names, a plain state dict for torchvision-based codebases (SeqNet, NAE, COAT)::

    torchvision.models.resnet50().load_state_dict(torch.load(path, weights_only=True), strict=False)  # only fc missing

``--seqnet``: the whole model in SeqNet's key layout (serend1p1ty/SeqNet and codebases derived from
its model code, e.g. COAT and PoseTrack21's SeqNet baseline) for ResNets (hpps_d2/checkpoint/seqnet.py): trunk, RPN head
(anchor channels reordered to torchvision's), layer4 as ``box_head`` and ``reid_head``, NAE
embedding and box regressor; SeqNet's ``faster_rcnn_predictor`` initialised as SeqNet's code does
(torchvision ``FastRCNNPredictor`` default init, seeded); no OIM tables::

    # only roi_heads.reid_loss.{lut,cq} (the OIM tables) stay missing
    model.load_state_dict(torch.load(path, weights_only=True), strict=False)

With ``--config-file`` the anchors and box-delta weights are read from the config (deltas are
rescaled to torchvision's (10, 10, 5, 5) / (1, 1, 1, 1) when they differ); without it the shipped
ones (configs/Base-PersonSearch-C4.yaml, SeqNet's own) are assumed.

The architecture is read from the checkpoint's keys and, with ``--config-file``, checked
against the config. Both outputs hold only tensors and plain types (``weights_only=True`` loads).
The input is read without running code (hpps_d2/checkpoint/io.py): torch files with
``weights_only=True`` (``--allow-pickle`` for trusted files with other objects), ``.pkl`` restricted
to numpy arrays and plain types.

Channel order: the ``--backbone`` file always takes RGB images normalised the torchvision way,
whatever the model read. The model's ``INPUT.FORMAT`` comes from the checkpoint's
``"input_format"`` record when it has one, else from ``--config-file``, else from
``--input-format``, else it is taken to be RGB (every shipped config); sources that disagree are an
error. A BGR model gets conv1's input channels reversed back. ``--whole`` keeps the weights as they
are and records the format when it is known.
"""

import argparse
import os
import sys

import torch

from hpps_d2.checkpoint import (
    INPUT_FORMATS,
    IncompatibleWeightsError,
    d2_to_torchvision,
    load_checkpoint,
    torchvision_arch_of_config,
    unwrap_state_dict,
    whole_model_for_finetuning,
)
from hpps_d2.checkpoint.seqnet import (
    SEQNET_ANCHORS,
    TORCHVISION_ROI_REG_WEIGHTS,
    TORCHVISION_RPN_REG_WEIGHTS,
    d2_to_seqnet,
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
    p.add_argument("--seqnet", default=None, help="write the whole model in SeqNet's layout here")
    p.add_argument("--config-file", default=None, help="the config that built the checkpoint")
    p.add_argument(
        "--input-format",
        choices=INPUT_FORMATS,
        default=None,
        help="INPUT.FORMAT the checkpoint was trained with (default: from the checkpoint or "
        "--config-file, else RGB)",
    )
    p.add_argument(
        "--allow-pickle",
        action="store_true",
        help="load the checkpoint with weights_only=False (only for files you trust)",
    )
    args = p.parse_args(argv)
    if not (args.whole or args.backbone or args.seqnet):
        p.error("nothing to do: give --whole, --backbone and/or --seqnet")
    return args


def _load_config(path: str):
    from detectron2.config import get_cfg

    from hpps_d2.config import add_hpps_config
    from hpps_d2.data.image_io import check_pixel_statistics

    cfg = add_hpps_config(get_cfg())
    cfg.merge_from_file(path)
    check_pixel_statistics(cfg.INPUT.FORMAT, cfg.MODEL.PIXEL_MEAN, cfg.MODEL.PIXEL_STD, path)
    return cfg


def _input_format(checkpoint: dict, cfg, args) -> tuple:
    """(the model's INPUT.FORMAT, whether a source named it) from the checkpoint's record,
    ``--config-file`` and ``--input-format``; disagreeing sources raise ValueError."""
    sources = {
        f"{args.checkpoint} (its 'input_format')": checkpoint.get("input_format"),
        f"{args.config_file} (INPUT.FORMAT)": cfg.INPUT.FORMAT if cfg is not None else None,
        "--input-format": args.input_format,
    }
    given = {k: v for k, v in sources.items() if v is not None}
    if len(set(given.values())) > 1:
        raise ValueError(
            "the checkpoint's input format is ambiguous: "
            + ", ".join(f"{k} says {v}" for k, v in given.items())
        )
    return (next(iter(given.values())), True) if given else ("RGB", False)


def _save(obj, path: str) -> None:
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    torch.save(obj, path)


def main(argv=None) -> dict:
    """Export; returns {"whole": path, "backbone": path, "seqnet": path} of what was written."""
    args = parse_args(argv)
    checkpoint = load_checkpoint(args.checkpoint, args.allow_pickle)
    sd = unwrap_state_dict(checkpoint)
    cfg = _load_config(args.config_file) if args.config_file else None
    fmt, known = _input_format(checkpoint, cfg, args)
    written = {}
    if args.whole:
        whole = whole_model_for_finetuning(sd)
        out = {"model": whole, "__author__": "hpps_d2", "matching_heuristics": False}
        if known:
            out["input_format"] = fmt
        _save(out, args.whole)
        print(f"whole model: {len(whole)} of {len(sd)} tensors -> {args.whole}")
        written["whole"] = args.whole
    if args.backbone:
        arch, backbone = d2_to_torchvision(sd, fmt)
        how = "" if known else " (assumed: no record, --config-file or --input-format)"
        print(f"model input format {fmt}{how}; the backbone file takes RGB")
        if cfg is not None:
            expected = torchvision_arch_of_config(cfg)
            if expected != arch:
                raise IncompatibleWeightsError(
                    f"{args.config_file} builds {expected}, but the checkpoint holds {arch}"
                )
        _save(backbone, args.backbone)
        print(f"backbone: torchvision {arch}, {len(backbone)} tensors -> {args.backbone}")
        print(
            f"  torchvision.models.{arch}().load_state_dict(torch.load(path, weights_only=True), strict=False)"
            "  # only fc.* missing"
        )
        written["backbone"] = args.backbone
    if args.seqnet:
        _export_seqnet(sd, cfg, fmt, known, args)
        written["seqnet"] = args.seqnet
    return written


def _export_seqnet(sd: dict, cfg, fmt: str, known: bool, args) -> None:
    """Write and describe the SeqNet-layout file (hpps_d2/checkpoint/seqnet.py)."""
    if cfg is not None:
        g = cfg.MODEL.ANCHOR_GENERATOR
        if len(g.SIZES) != 1 or len(g.ASPECT_RATIOS) != 1:
            raise ValueError("SeqNet has one feature map: one list of anchor sizes and ratios")
        anchors = (tuple(g.SIZES[0]), tuple(g.ASPECT_RATIOS[0]))
        roi_w, rpn_w = cfg.MODEL.ROI_BOX_HEAD.BBOX_REG_WEIGHTS, cfg.MODEL.RPN.BBOX_REG_WEIGHTS
        if cfg.MODEL.NAE.POOL != "max":
            print(f"warning: MODEL.NAE.POOL {cfg.MODEL.NAE.POOL!r}; SeqNet max-pools RoI features")
        if cfg.MODEL.NAE.EMBEDDING_DIM != 256:
            print(f"warning: embedding dim {cfg.MODEL.NAE.EMBEDDING_DIM}; SeqNet builds 256")
    else:
        anchors = SEQNET_ANCHORS
        roi_w, rpn_w = TORCHVISION_ROI_REG_WEIGHTS, TORCHVISION_RPN_REG_WEIGHTS
        print("no --config-file: assuming the shipped anchors and box-delta weights (SeqNet's)")
    out, report = d2_to_seqnet(sd, fmt, anchors, tuple(roi_w), tuple(rpn_w))
    _save(out, args.seqnet)
    how = "" if known else " (assumed)"
    print(f"seqnet: {report['arch']}, model input {fmt}{how} -> the file takes RGB; "
          f"{len(out)} tensors -> {args.seqnet}")
    for prefix in ("backbone.", "rpn.head.", "roi_heads.box_head.", "roi_heads.reid_head.",
                   "roi_heads.embedding_head.", "roi_heads.box_predictor.",
                   "roi_heads.faster_rcnn_predictor."):
        print(f"  wrote {prefix}* ({sum(k.startswith(prefix) for k in out)} tensors)")
    print(f"  RPN channels reordered from detectron2's size-major to torchvision's ratio-major "
          f"anchor order ({len(anchors[0])} sizes x {len(anchors[1])} ratios)")
    if anchors != SEQNET_ANCHORS:
        print(f"  warning: anchors {anchors} differ from SeqNet's {SEQNET_ANCHORS}: set them in "
              "SeqNet's AnchorGenerator")
    for part, (src, dst) in (("RoI", (roi_w, TORCHVISION_ROI_REG_WEIGHTS)),
                             ("RPN", (rpn_w, TORCHVISION_RPN_REG_WEIGHTS))):
        if report["rescaled"][part.lower()]:
            print(f"  {part} deltas rescaled from weights {tuple(src)} to torchvision's {dst}")
    for key, how in report["initialised"].items():
        print(f"  initialised {key}: {how}")
    dropped = sorted({".".join(k.split(".")[:3]) for k in report["not_exported"]})
    print(f"  not exported ({len(report['not_exported'])} tensors): {', '.join(dropped) or 'none'}")
    if report["arch"] not in ("resnet50",):
        print(f"  {report['arch']}: in SeqNet call build_resnet(name={report['arch']!r}) and set "
              "Backbone.out_channels, FastRCNNPredictor, BBoxRegressor and NormAwareEmbedding "
              "in_channels to this model's widths (they are 1024 / 2048 for resnet50)")
    missing = ", ".join(report["missing_in_seqnet"])
    print("  load in SeqNet: model.load_state_dict(torch.load(path, weights_only=True), "
          f"strict=False)  # missing: {missing} (OIM tables, rebuilt by fine-tuning)")


if __name__ == "__main__":
    try:
        main()
    except (FileNotFoundError, ValueError) as e:  # WeightsFileError, IncompatibleWeightsError
        sys.exit(f"error: {e}")
