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

ARCHS = sorted(RESNET_ARCHS) + sorted(SHUFFLENET_ARCHS)


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--src", choices=("torchvision", "mmdet", "psvis"), default="torchvision")
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


if __name__ == "__main__":
    try:
        main()
    except (IncompatibleWeightsError, WeightsFileError, FileNotFoundError) as e:
        sys.exit(f"error: {e}")
