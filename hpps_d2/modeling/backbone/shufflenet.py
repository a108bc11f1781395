"""
ShuffleNetV2 (Ma et al., ECCV 2018; torchvision's implementation) as a detectron2 ``Backbone``.

The paper pre-trains three backbones: ResNet-50, ResNet-18 and a ShuffleNet. torchvision ships
ShuffleNet V2, not V1 (the psvis release used V1, docs/anchors.md); we use V2. In the C4 layout of
NAE the backbone runs up to ``stage3`` (stride 16) and ``stage4 + conv5`` become the RoI box trunk
(:class:`~hpps_d2.modeling.roi_heads.box_trunk.ShuffleNetV2Trunk`), like res5 for ResNets.

Input: (B, 3, H, W) images in ``INPUT.FORMAT``, already normalised by the meta architecture with
``MODEL.PIXEL_MEAN/STD``. torchvision's ImageNet weights expect RGB (the shipped configs' format);
for BGR configs ``tools/convert_weights.py --input-format BGR`` reverses ``conv1``'s input channels
(:mod:`hpps_d2.checkpoint.convert`).
"""
from typing import Dict

import torch
import torchvision
from detectron2.layers import FrozenBatchNorm2d, ShapeSpec
from detectron2.modeling import BACKBONE_REGISTRY, Backbone
from torch import nn

__all__ = ["ShuffleNetV2Backbone", "build_shufflenet_v2_backbone", "shufflenet_v2_model", "convert_norm"]

#: torchvision constructor per width multiplier (cfg.MODEL.SHUFFLENET.WIDTH).
_MODELS = {
    0.5: torchvision.models.shufflenet_v2_x0_5,
    1.0: torchvision.models.shufflenet_v2_x1_0,
    1.5: torchvision.models.shufflenet_v2_x1_5,
    2.0: torchvision.models.shufflenet_v2_x2_0,
}
_STRIDES = {"stem": 4, "stage2": 8, "stage3": 16, "stage4": 32}


def shufflenet_v2_model(width: float) -> nn.Module:
    """A randomly initialised torchvision ShuffleNetV2 of the given width (0.5, 1.0, 1.5, 2.0)."""
    width = float(width)
    if width not in _MODELS:
        raise ValueError(f"MODEL.SHUFFLENET.WIDTH must be one of {sorted(_MODELS)}, got {width!r}")
    return _MODELS[width](weights=None)


def _group_norm(bn: nn.BatchNorm2d) -> nn.GroupNorm:
    c = bn.num_features
    groups = next(g for g in (32, 16, 8, 4, 2, 1) if c % g == 0)
    return nn.GroupNorm(groups, c)


def _to_group_norm(module: nn.Module) -> nn.Module:
    if isinstance(module, nn.BatchNorm2d):
        return _group_norm(module)
    for name, child in module.named_children():
        setattr(module, name, _to_group_norm(child))
    return module


#: BatchNorm2d -> the normalisation named in MODEL.SHUFFLENET.NORM
_NORMS = {
    "BN": lambda m: m,
    "FrozenBN": FrozenBatchNorm2d.convert_frozen_batchnorm,
    "SyncBN": nn.SyncBatchNorm.convert_sync_batchnorm,
    "GN": _to_group_norm,
}


def convert_norm(module: nn.Module, norm: str) -> nn.Module:
    """
    Convert the BatchNorm2d layers of ``module`` to ``norm``: "BN" (unchanged), "FrozenBN",
    "SyncBN" or "GN" (GroupNorm with the largest of 32, 16, ..., 1 groups that divides the
    channels; batch-independent, for training from scratch with few images per batch).
    """
    if norm not in _NORMS:
        raise ValueError(f"norm must be one of {sorted(_NORMS)}, got {norm!r}")
    return _NORMS[norm](module)


class ShuffleNetV2Backbone(Backbone):
    """
    Args:
        width: width multiplier, a key of ``_MODELS``.
        out_features: among "stem", "stage2", "stage3", "stage4"; the last one decides how deep the
            backbone runs.
        norm: "BN", "FrozenBN" or "SyncBN".
        freeze_at: freeze the stem (1) and stages up to stage``freeze_at`` (2, 3) as detectron2's
            ResNet does; 0 trains everything.
    """

    def __init__(self, width: float = 1.0, out_features=("stage3",), norm: str = "BN", freeze_at: int = 0):
        super().__init__()
        net = shufflenet_v2_model(width)
        names = ["stem", "stage2", "stage3", "stage4"]
        for f in out_features:
            if f not in names:
                raise ValueError(f"ShuffleNetV2 out_features must be among {names}, got {f!r}")
        last = max(names.index(f) for f in out_features)
        self.stage_names = names[: last + 1]
        self.stem = nn.Sequential(net.conv1, net.maxpool)
        channels = {"stem": net.conv1[0].out_channels}
        for name in self.stage_names[1:]:
            stage = getattr(net, name)
            self.add_module(name, stage)
            channels[name] = stage[-1].branch2[-3].out_channels * 2  # concat of both branches
        for i, name in enumerate(self.stage_names):
            if i < freeze_at:
                mod = getattr(self, name)
                for p in mod.parameters():
                    p.requires_grad = False
                convert_norm(mod, "FrozenBN")
        for name in self.stage_names:
            setattr(self, name, convert_norm(getattr(self, name), norm))
        self._out_features = list(out_features)
        self._out_feature_channels = {k: channels[k] for k in self.stage_names}
        self._out_feature_strides = {k: _STRIDES[k] for k in self.stage_names}

    def forward(self, x: torch.Tensor) -> Dict[str, torch.Tensor]:
        """(B, 3, H, W) -> {name: (B, C_name, H / stride, W / stride)} for the out features."""
        out = {}
        for name in self.stage_names:
            x = getattr(self, name)(x)
            if name in self._out_features:
                out[name] = x
        return out

    def output_shape(self) -> Dict[str, ShapeSpec]:
        return {
            k: ShapeSpec(channels=self._out_feature_channels[k], stride=self._out_feature_strides[k])
            for k in self._out_features
        }


@BACKBONE_REGISTRY.register()
def build_shufflenet_v2_backbone(cfg, input_shape: ShapeSpec) -> ShuffleNetV2Backbone:
    """detectron2 backbone factory; reads ``cfg.MODEL.SHUFFLENET`` and ``BACKBONE.FREEZE_AT``."""
    if input_shape.channels != 3:
        raise ValueError(f"ShuffleNetV2 takes 3-channel images, got {input_shape.channels}")
    s = cfg.MODEL.SHUFFLENET
    return ShuffleNetV2Backbone(s.WIDTH, tuple(s.OUT_FEATURES), s.NORM, cfg.MODEL.BACKBONE.FREEZE_AT)
