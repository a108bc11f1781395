"""
Class-agnostic box regression of the NAE RoI head: Linear + 1-d BatchNorm on the pooled trunk
feature f5, initialised as NAE4PS's ``CoordRegressor`` (lib/model/faster_rcnn_norm_aware.py
L406-415) and SeqNet's ``BBoxRegressor`` (models/seqnet.py L486-491): Linear weight N(0, 0.01) and
bias 0, BN weight (gamma) N(0, 0.01) and bias 0. In training mode the BN whitens every delta
channel, so a fresh regressor's deltas have variance gamma^2, about 1e-4, not 1: the first steps
barely move the proposals.

NAE4PS/SeqNet predict 2 x 4 deltas (background and person) and use only the person's; BN and the
loss act per channel, so the 4 person deltas here compute the same thing.
"""
from torch import nn

__all__ = ["BoxRegressor"]


class BoxRegressor(nn.Sequential):
    """
    Args:
        in_channels: C5, channels of the pooled trunk feature.

    ``forward``: (R, C5) -> (R, 4) deltas (dx, dy, dw, dh), encoded with
    ``MODEL.ROI_BOX_HEAD.BBOX_REG_WEIGHTS``. Children ``0`` (Linear) and ``1`` (BN), so checkpoints
    of the former ``nn.Sequential(Linear, BatchNorm1d)`` load unchanged.
    """

    def __init__(self, in_channels: int):
        super().__init__(nn.Linear(in_channels, 4), nn.BatchNorm1d(4))
        nn.init.normal_(self[0].weight, std=0.01)
        nn.init.zeros_(self[0].bias)
        nn.init.normal_(self[1].weight, std=0.01)
        nn.init.zeros_(self[1].bias)
