"""
A trained :class:`~hpps_d2.modeling.meta_arch.classifier.ImageClassifier` as torchvision weights.

The classifier holds ``torchvision.models.<arch>(num_classes=K)`` as ``net``, so its training
checkpoint ``{"model": {"net.<torchvision key>": ...}}`` becomes a torchvision state dict by
dropping the prefix (and the ``pixel_mean`` / ``pixel_std`` buffers, which are not saved anyway):
``torchvision.models.<arch>(num_classes=K).load_state_dict(sd)`` loads it strictly, and
``tools/convert_weights.py --src torchvision`` turns it into person-search ``MODEL.WEIGHTS``
exactly as it does ImageNet weights (the classifier ``fc`` is dropped there). The network always
takes RGB images normalised the torchvision way (the model reverses a BGR input first), so no
channel permutation is ever needed here.
"""

import os
from typing import Mapping, Tuple

import torch
import torchvision

from .convert import (
    IncompatibleWeightsError,
    check_shapes,
    infer_torchvision_arch,
    load_checkpoint,
    unwrap_state_dict,
)

__all__ = ["CLASSIFIER_PREFIX", "classifier_to_torchvision", "export_classifier"]

#: Module name of the torchvision network inside ImageClassifier.
CLASSIFIER_PREFIX = "net."


def classifier_to_torchvision(checkpoint: Mapping) -> Tuple[str, dict]:
    """
    Args:
        checkpoint: an ImageClassifier training checkpoint ``{"model": ...}`` or its state dict.

    Returns:
        (arch, state dict): the torchvision architecture name (read from the weights) and its
        state dict with torchvision's key names, ``fc`` of K classes included.

    Raises:
        IncompatibleWeightsError: no ``net.`` keys (not a classifier checkpoint), or keys / shapes
            that differ from ``torchvision.models.<arch>(num_classes=K)``.
    """
    sd = unwrap_state_dict(checkpoint)
    out = {k[len(CLASSIFIER_PREFIX) :]: v for k, v in sd.items() if k.startswith(CLASSIFIER_PREFIX)}
    if not out:
        raise IncompatibleWeightsError(
            "not an ImageClassifier checkpoint: no 'net.' keys (first keys: "
            f"{sorted(sd)[:6]}); for a person-search checkpoint use tools/export_weights.py"
        )
    arch = infer_torchvision_arch(out)
    k = out["fc.weight"].shape[0] if "fc.weight" in out else 1000
    with torch.device("meta"):
        reference = torchvision.models.get_model(arch, weights=None, num_classes=k).state_dict()
    check_shapes(out, reference, ignore=())
    return arch, out


def export_classifier(checkpoint_path: str, out_path: str, allow_pickle: bool = False) -> str:
    """Write the torchvision state dict of the classifier checkpoint ``checkpoint_path`` (read
    without running code, :func:`~.convert.load_checkpoint`) to ``out_path``; returns the arch."""
    arch, sd = classifier_to_torchvision(load_checkpoint(checkpoint_path, allow_pickle))
    os.makedirs(os.path.dirname(os.path.abspath(out_path)), exist_ok=True)
    torch.save(sd, out_path)
    return arch
