#!/usr/bin/env python
"""
Convert external backbone weights into a detectron2 checkpoint for ``MODEL.WEIGHTS``.

    python tools/convert_weights.py --src torchvision --arch resnet50 \\
        resnet50.pth weights/R-50-torchvision.pth
    python tools/convert_weights.py --src psvis --arch resnet18 \\
        resnet18-ps15.pth weights/R-18-psvis.pth
    python tools/convert_weights.py --input-format BGR resnet50.pth weights/R-50-for-bgr.pth

IN is a torchvision state dict, or an MMDet/psvis checkpoint ``{"state_dict": ...}`` (a
``backbone.`` prefix is stripped). OUT is ``{"model": ..., "__author__": SRC, "matching_heuristics":
False, "input_format": FORMAT}`` and holds only tensors and plain types (it loads with
``torch.load(weights_only=True)``). IN is read without running code (hpps_d2/checkpoint/io.py:
``weights_only=True``, ``--allow-pickle`` for trusted files with other objects). The configs read
weights/R-50-torchvision.pth, weights/R-18-torchvision.pth and
weights/shufflenet_v2_x1_0-torchvision.pth. Without ``--arch`` the architecture is read from the
weights.
``--src seqnet``: a whole SeqNet / NAE-style person-search checkpoint in SeqNet's layout
(serend1p1ty/SeqNet ``{"model": ...}`` or a bare state dict) becomes a PersonSearchRCNN checkpoint
for this project's evaluator and fine-tuning (``MODEL.WEIGHTS``, ``HPPS.FINETUNE.INIT whole``;
hpps_d2/checkpoint/seqnet.py)::

    python tools/convert_weights.py --src seqnet seqnet_epoch19.pth weights/seqnet_whole.pth

SeqNet's ``reid_head.layer4`` (on which its embedding and box regressor were trained) becomes the
per-RoI trunk (``--seqnet-layer4 box_head`` for the first-stage one); ``faster_rcnn_predictor``,
the other layer4 and the OIM tables are reported as not imported. ``--config-file`` names the
config that will load OUT, for its anchors and box-delta weights (default: the shipped ones).

The config overrides that build a matching model are printed; ResNets need
``MODEL.RESNETS.STRIDE_IN_1X1 False`` (torchvision puts the stride in the 3x3 conv). The psvis
ShuffleNetV1 cannot be converted: this project builds ShuffleNetV2.

Channel order: the weights were trained on RGB images (``--weights-format``; BGR only for MMDet
caffe-style ResNets). ``--input-format`` is the ``INPUT.FORMAT`` of the config that will load OUT:
RGB, like every shipped config, copies the weights unchanged; BGR reverses conv1's input channels so
that the model computes on BGR images what the source computes on RGB ones. OUT records the format,
and loading it into a model of the other ``INPUT.FORMAT`` is refused (hpps_d2/checkpoint/init.py).
"""

import argparse
import os
import shlex
import sys

import torch
import torchvision

from hpps_d2.checkpoint import (
    INPUT_FORMATS,
    RESNET_ARCHS,
    SHUFFLENET_ARCHS,
    IncompatibleWeightsError,
    WeightsFileError,
    check_shapes,
    config_overrides,
    external_backbone,
    infer_torchvision_arch,
    load_checkpoint,
    torchvision_resnet_to_d2,
    torchvision_shufflenet_to_d2,
)
from hpps_d2.checkpoint.seqnet import (
    SEQNET_ANCHORS,
    TORCHVISION_ROI_REG_WEIGHTS,
    TORCHVISION_RPN_REG_WEIGHTS,
    seqnet_to_d2,
)

ARCHS = sorted(RESNET_ARCHS) + sorted(SHUFFLENET_ARCHS)


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument(
        "--src", choices=("torchvision", "mmdet", "psvis", "seqnet"), default="torchvision"
    )
    p.add_argument(
        "--arch",
        choices=ARCHS + ["shufflenet_v1"],
        default=None,
        help="torchvision architecture name (default: read from the weights)",
    )
    p.add_argument(
        "--input-format",
        choices=INPUT_FORMATS,
        default="RGB",
        help="INPUT.FORMAT of the config that will load OUT (default RGB, the shipped configs)",
    )
    p.add_argument(
        "--weights-format",
        choices=INPUT_FORMATS,
        default="RGB",
        help="channel order IN was trained on (default RGB: torchvision, MMDet pytorch-style, "
        "psvis; BGR: MMDet caffe-style)",
    )
    p.add_argument(
        "--seqnet-layer4",
        choices=("reid_head", "box_head"),
        default=None,
        help="--src seqnet: the layer4 that becomes the trunk (default reid_head when present)",
    )
    p.add_argument(
        "--config-file",
        default=None,
        help="--src seqnet: the config that will load OUT (anchors, box-delta weights)",
    )
    p.add_argument("input", metavar="IN", help="the external weights (.pth)")
    p.add_argument("output", metavar="OUT", nargs="?", help="the detectron2 checkpoint to write")
    p.add_argument("--out", dest="out", default=None, help="same as OUT")
    p.add_argument(
        "--allow-pickle",
        action="store_true",
        help="load IN with weights_only=False (only for files you trust)",
    )
    args = p.parse_args(argv)
    if (args.output is None) == (args.out is None):
        p.error("give the output path once, as OUT or --out")
    args.output = args.output or args.out
    return args


def main(argv=None) -> str:
    """Convert, save, print a summary; returns the output path."""
    args = parse_args(argv)
    if args.arch == "shufflenet_v1":
        raise IncompatibleWeightsError(
            "ShuffleNetV1 (psvis shufflenetv1-ps19) is not convertible: this project builds "
            "torchvision's ShuffleNetV2 (hpps_d2/modeling/backbone/shufflenet.py)"
        )
    if args.src == "seqnet":
        return _convert_seqnet(args)
    sd = external_backbone(load_checkpoint(args.input, args.allow_pickle))
    arch = args.arch or infer_torchvision_arch(sd)
    try:
        check_shapes(sd, torchvision.models.get_model(arch, weights=None).state_dict())
    except IncompatibleWeightsError as e:
        try:
            guess = f" (they look like {infer_torchvision_arch(sd)})"
        except IncompatibleWeightsError:
            guess = ""
        raise IncompatibleWeightsError(
            f"{args.input} does not hold {arch} weights{guess}: {str(e).splitlines()[0]}",
            e.missing,
            e.unexpected,
        ) from None
    fmt = args.input_format
    if arch in RESNET_ARCHS:
        model = torchvision_resnet_to_d2(sd, RESNET_ARCHS[arch][0], fmt, args.weights_format)
    else:
        model = torchvision_shufflenet_to_d2(sd, fmt, args.weights_format)
    os.makedirs(os.path.dirname(os.path.abspath(args.output)), exist_ok=True)
    checkpoint = {
        "model": model,
        "__author__": args.src,
        "matching_heuristics": False,
        "input_format": fmt,
    }
    torch.save(checkpoint, args.output)
    permuted = " (conv1 input channels reversed)" if fmt != args.weights_format else ""
    print(f"{arch} ({args.src}, {args.weights_format}): {len(model)} tensors -> {args.output}")
    print(f"for INPUT.FORMAT {fmt}{permuted}. Build the model with these overrides (and WEIGHTS):")
    print("  " + shlex.join(config_overrides(arch, fmt)))
    if args.src == "mmdet" and arch in RESNET_ARCHS:
        print(
            "MMDet caffe-style ResNets (style='caffe') put the stride in the 1x1 conv and take BGR "
            "0-255 input: for those use --weights-format BGR, MODEL.RESNETS.STRIDE_IN_1X1 True and "
            "MODEL.PIXEL_STD [1, 1, 1]."
        )
    return args.output


def _convert_seqnet(args) -> str:
    """--src seqnet: the whole model (hpps_d2/checkpoint/seqnet.py)."""
    anchors = SEQNET_ANCHORS
    roi_w, rpn_w = TORCHVISION_ROI_REG_WEIGHTS, TORCHVISION_RPN_REG_WEIGHTS
    if args.config_file:
        from detectron2.config import get_cfg

        from hpps_d2.config import add_hpps_config

        cfg = add_hpps_config(get_cfg())
        cfg.merge_from_file(args.config_file)
        g = cfg.MODEL.ANCHOR_GENERATOR
        anchors = (tuple(g.SIZES[0]), tuple(g.ASPECT_RATIOS[0]))
        roi_w = tuple(cfg.MODEL.ROI_BOX_HEAD.BBOX_REG_WEIGHTS)
        rpn_w = tuple(cfg.MODEL.RPN.BBOX_REG_WEIGHTS)
        if cfg.INPUT.FORMAT != args.input_format:
            raise IncompatibleWeightsError(
                f"{args.config_file} reads {cfg.INPUT.FORMAT}, but --input-format is "
                f"{args.input_format}"
            )
    checkpoint = load_checkpoint(args.input, args.allow_pickle)
    model, report = seqnet_to_d2(
        checkpoint, args.input_format, anchors, roi_w, rpn_w, args.seqnet_layer4, args.input
    )
    os.makedirs(os.path.dirname(os.path.abspath(args.output)), exist_ok=True)
    out = {"model": model, "__author__": "seqnet", "matching_heuristics": False,
           "input_format": args.input_format}
    torch.save(out, args.output)
    arch = report["arch"]
    print(f"seqnet {arch}: {len(model)} tensors -> {args.output} (trunk from "
          f"roi_heads.{report['layer4_from']}.layer4; RPN anchors reordered to detectron2's)")
    dropped = sorted({".".join(k.split(".")[:3]) for k in report["not_imported"]})
    print(f"not imported ({len(report['not_imported'])} tensors): {', '.join(dropped) or 'none'}")
    print("Build the model with these overrides (and MODEL.WEIGHTS, HPPS.FINETUNE.INIT whole):")
    print("  " + shlex.join(config_overrides(arch, args.input_format)))
    return args.output


if __name__ == "__main__":
    try:
        main()
    except (IncompatibleWeightsError, WeightsFileError, FileNotFoundError) as e:
        sys.exit(f"error: {e}")
