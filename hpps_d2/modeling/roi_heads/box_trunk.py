"""
The RoI box trunk of C4 person-search models: the backbone's last stage applied per RoI.

NAE (like OIM and SeqNet) runs the backbone up to stride 16, pools each RoI from that map, and runs
the last stage (ResNet res5; ShuffleNetV2 stage4 + conv5) on the pooled RoI. Which trunk is built is
named in ``cfg.MODEL.ROI_BOX_HEAD.TRUNK``; each entry is called with ``(cfg, in_channels)`` and returns
a module with an ``out_channels`` attribute mapping (R, C_in, P, P) to (R, C_out, P/2, P/2).
"""
import torch
from detectron2.modeling.backbone.resnet import BasicBlock, BottleneckBlock, ResNet
from detectron2.utils.registry import Registry
from torch import nn

from ..backbone.shufflenet import convert_norm, shufflenet_v2_model

__all__ = ["ROI_BOX_TRUNK_REGISTRY", "build_box_trunk", "Res5Trunk", "ShuffleNetV2Trunk"]

ROI_BOX_TRUNK_REGISTRY = Registry("ROI_BOX_TRUNK")
ROI_BOX_TRUNK_REGISTRY.__doc__ = __doc__


@ROI_BOX_TRUNK_REGISTRY.register()
class Res5Trunk(nn.Sequential):
    """
    ResNet res5 (3 bottleneck blocks for depth >= 50, 2 basic blocks for 18/34), first stride 2,
    built from ``cfg.MODEL.RESNETS`` exactly as detectron2 builds res5 for the backbone, so that
    torchvision's ``layer4`` weights map onto it.
    """

    def __init__(self, cfg, in_channels: int):
        r = cfg.MODEL.RESNETS
        out_channels = r.RES2_OUT_CHANNELS * 8
        if r.DEPTH in (18, 34):
            blocks = ResNet.make_stage(
                BasicBlock, 2, stride_per_block=[2, 1], in_channels=in_channels,
                out_channels=out_channels, norm=r.NORM,
            )
        else:
            num_blocks = {50: 3, 101: 3, 152: 3}[r.DEPTH]
            blocks = ResNet.make_stage(
                BottleneckBlock, num_blocks, stride_per_block=[2] + [1] * (num_blocks - 1),
                in_channels=in_channels, bottleneck_channels=r.NUM_GROUPS * r.WIDTH_PER_GROUP * 8,
                out_channels=out_channels, num_groups=r.NUM_GROUPS, norm=r.NORM,
                stride_in_1x1=r.STRIDE_IN_1X1,
            )
        super().__init__(*blocks)
        self.out_channels = out_channels


@ROI_BOX_TRUNK_REGISTRY.register()
class ShuffleNetV2Trunk(nn.Module):
    """ShuffleNetV2 ``stage4`` + ``conv5`` (1x1 conv to 1024 channels) of ``cfg.MODEL.SHUFFLENET.WIDTH``."""

    def __init__(self, cfg, in_channels: int):
        super().__init__()
        net = shufflenet_v2_model(cfg.MODEL.SHUFFLENET.WIDTH)
        expected = net.stage4[0].branch1[0].in_channels
        if in_channels != expected:
            raise ValueError(f"ShuffleNetV2Trunk expects {expected} input channels, got {in_channels}")
        norm = cfg.MODEL.SHUFFLENET.NORM
        self.stage4 = convert_norm(net.stage4, norm)
        self.conv5 = convert_norm(net.conv5, norm)
        self.out_channels = net.conv5[0].out_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv5(self.stage4(x))


def build_box_trunk(cfg, in_channels: int) -> nn.Module:
    return ROI_BOX_TRUNK_REGISTRY.get(cfg.MODEL.ROI_BOX_HEAD.TRUNK)(cfg, in_channels)
