#!/usr/bin/env python
"""
Export a trained ImageClassifier (configs/synth/generic_pretrain_*.yaml, the ImageNet stand-in)
as a torchvision state dict, the form in which ImageNet weights come:

    python tools/export_classifier.py output/synth/generic_pretrain_shufflenet/model_final.pth \\
        --out weights/synth_generic_shufflenet_v2_x0_5.pth
    python tools/convert_weights.py --src torchvision \\
        weights/synth_generic_shufflenet_v2_x0_5.pth weights/synth_generic_shufflenet-d2.pth

The second command is the one for real ImageNet weights; its output is MODEL.WEIGHTS of the
person-search configs. OUT loads with ``torch.load(weights_only=True)`` into
``torchvision.models.<arch>(num_classes=K)`` strictly. The checkpoint is read without running
code (``--allow-pickle`` for trusted files with other objects). Logic:
hpps_d2/checkpoint/classifier.py.
"""

import argparse
import sys

from hpps_d2.checkpoint.classifier import export_classifier


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("checkpoint", help="an ImageClassifier checkpoint, e.g. model_final.pth")
    p.add_argument("--out", required=True, help="the torchvision state dict to write (.pth)")
    p.add_argument(
        "--allow-pickle",
        action="store_true",
        help="load the checkpoint with weights_only=False (only for files you trust)",
    )
    return p.parse_args(argv)


def main(argv=None) -> str:
    """Export; returns the output path."""
    args = parse_args(argv)
    arch = export_classifier(args.checkpoint, args.out, args.allow_pickle)
    print(f"torchvision {arch} -> {args.out}")
    print(f"  next: python tools/convert_weights.py --src torchvision --arch {arch} {args.out} OUT")
    return args.out


if __name__ == "__main__":
    try:
        main()
    except (FileNotFoundError, ValueError) as e:  # WeightsFileError, IncompatibleWeightsError
        sys.exit(f"error: {e}")
