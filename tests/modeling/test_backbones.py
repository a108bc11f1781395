import pytest
import torch

from hpps_d2.modeling.backbone.shufflenet import ShuffleNetV2Backbone, convert_norm


def test_shufflenet_backbone_shapes_and_norms():
    b = ShuffleNetV2Backbone(0.5, ("stage2", "stage3"), norm="GN")
    out = b(torch.zeros(2, 3, 64, 96))
    assert out["stage2"].shape == (2, 48, 8, 12) and out["stage3"].shape == (2, 96, 4, 6)
    assert b.output_shape()["stage3"].stride == 16
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in b.modules())
    gn = [m for m in b.modules() if isinstance(m, torch.nn.GroupNorm)]
    assert gn and all(m.num_channels % m.num_groups == 0 for m in gn)
    # GroupNorm makes a sample's features independent of the rest of its batch. CPU convolutions
    # may sum in another order per batch size (element-wise differences up to ~2e-5, relative L2
    # ~3e-6 over 20 seeds), while a batch-dependent norm changes them by O(1): compare in norm.
    b.train()
    x = torch.randn(3, 3, 64, 96, generator=torch.Generator().manual_seed(0))
    batched, alone = b(x)["stage3"][:1], b(x[:1])["stage3"]
    assert ((batched - alone).norm() / alone.norm()).item() < 1e-4


def test_frozen_bn_and_bad_values():
    from detectron2.layers import FrozenBatchNorm2d

    b = ShuffleNetV2Backbone(1.0, ("stage3",), norm="FrozenBN", freeze_at=1)
    assert any(isinstance(m, FrozenBatchNorm2d) for m in b.modules())
    assert all(not p.requires_grad for p in b.stem.parameters())
    with pytest.raises(ValueError, match="norm must be one of"):
        convert_norm(torch.nn.BatchNorm2d(4), "LN")
    with pytest.raises(ValueError, match="WIDTH must be one of"):
        ShuffleNetV2Backbone(0.75)
