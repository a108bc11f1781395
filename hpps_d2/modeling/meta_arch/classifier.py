"""
``ImageClassifier``: a torchvision classification network as a detectron2 meta-architecture, for
the generic (ImageNet-style) pre-training of a backbone.

The network is ``torchvision.models.get_model(MODEL.CLASSIFIER.ARCH, num_classes=K)`` itself,
held as ``self.net``, so its state dict without the ``net.`` prefix is a torchvision state dict
(:func:`hpps_d2.checkpoint.classifier.classifier_to_torchvision`) that
``tools/convert_weights.py --src torchvision`` converts like torchvision's ImageNet weights.

Input normalisation is the person-search models' (``MODEL.PIXEL_MEAN`` / ``PIXEL_STD`` on 0-255
images in ``INPUT.FORMAT`` order, checked by :func:`~hpps_d2.data.image_io.check_pixel_statistics`);
a BGR model reverses the normalised channels, so the network always sees RGB images normalised
the torchvision way (presets.py L11-12) and its weights are torchvision-convention for either
format.
"""

from typing import Dict, List, Sequence

import torch
import torch.nn.functional as F
import torchvision
from detectron2.modeling import META_ARCH_REGISTRY
from torch import nn

from ...data.image_io import check_pixel_statistics

__all__ = ["ImageClassifier", "CLASSIFIER_ARCHS"]

#: Architectures the exporter and tools/convert_weights.py can carry to person search.
CLASSIFIER_ARCHS = ("resnet18", "resnet34", "resnet50", "shufflenet_v2_x0_5", "shufflenet_v2_x1_0")


@META_ARCH_REGISTRY.register()
class ImageClassifier(nn.Module):
    """
    Inputs (``batched_inputs``): a list of dicts with ``"image"`` (3, S, S) 0-255 tensors in
    ``INPUT.FORMAT`` order, all of one size, and in training ``"class_id"`` (int).

    Returns:
        training: ``{"loss_cls": cross-entropy}``; inference: one ``{"logits": (K,) tensor}`` per
        input.
    """

    def __init__(self, cfg):
        super().__init__()
        arch, k = cfg.MODEL.CLASSIFIER.ARCH, int(cfg.MODEL.CLASSIFIER.NUM_CLASSES)
        if arch not in CLASSIFIER_ARCHS:
            raise ValueError(
                f"MODEL.CLASSIFIER.ARCH must be one of {CLASSIFIER_ARCHS}, got {arch!r}"
            )
        if k < 2:
            raise ValueError(
                f"MODEL.CLASSIFIER.NUM_CLASSES must be >= 2 when the model is built, got {k} "
                "(0 is replaced by the count of the training data in the trainer)"
            )
        check_pixel_statistics(
            cfg.INPUT.FORMAT, cfg.MODEL.PIXEL_MEAN, cfg.MODEL.PIXEL_STD, "model config"
        )
        self.arch, self.num_classes = arch, k
        self.net = torchvision.models.get_model(arch, weights=None, num_classes=k)
        self.bgr = cfg.INPUT.FORMAT == "BGR"
        self.register_buffer("pixel_mean", torch.tensor(cfg.MODEL.PIXEL_MEAN).view(-1, 1, 1), False)
        self.register_buffer("pixel_std", torch.tensor(cfg.MODEL.PIXEL_STD).view(-1, 1, 1), False)
        self.to(torch.device(cfg.MODEL.DEVICE))

    @property
    def device(self) -> torch.device:
        return self.pixel_mean.device

    def preprocess(self, batched_inputs: Sequence[dict]) -> torch.Tensor:
        """(N, 3, S, S) normalised RGB batch."""
        x = torch.stack([b["image"].to(self.device, torch.float32) for b in batched_inputs])
        x = (x - self.pixel_mean) / self.pixel_std
        return x.flip(1) if self.bgr else x

    def forward(self, batched_inputs: List[dict]):
        logits = self.net(self.preprocess(batched_inputs))
        if self.training:
            target = torch.tensor([int(b["class_id"]) for b in batched_inputs], device=self.device)
            return {"loss_cls": F.cross_entropy(logits, target)}
        return [{"logits": z} for z in logits]

    # The project's deterministic step (hpps_d2.engine.trainer.DeterministicStepTrainer) applies
    # the OIM table updates of a step; a classifier has none.
    def apply_pending_updates(self) -> int:
        return 0

    def discard_pending_updates(self) -> int:
        return 0

    def extra_repr(self) -> str:
        return f"arch={self.arch}, num_classes={self.num_classes}, bgr={self.bgr}"


def torchvision_state_dict(model: ImageClassifier) -> Dict[str, torch.Tensor]:
    """The torchvision state dict of ``model.net`` (its own key names)."""
    return model.net.state_dict()
