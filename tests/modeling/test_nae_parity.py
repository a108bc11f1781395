"""
Parity of the shipped NAE configs and RoI head with NAE4PS (dichen-cd/NAE4PS) and SeqNet.

Every expectation here is computed independently of our code: hand-computed IoUs and box deltas,
the smooth-L1 formula, torchvision's ``Matcher`` (the matcher NAE4PS's RoI head uses) and the
values typed from NAE4PS's ``configs/res50_faster_rcnn.py`` / README command.
"""
import math
import os

import pytest
import torch
from detectron2.config import get_cfg
from detectron2.layers import ShapeSpec
from detectron2.modeling.roi_heads import build_roi_heads
from detectron2.structures import Boxes, Instances
from detectron2.utils.events import EventStorage
from torch import nn
from torchvision.models.detection._utils import Matcher as TorchvisionMatcher

from hpps_d2.config import add_hpps_config
from hpps_d2.modeling.roi_heads.norm_aware_embedding import NormAwareEmbedding
from tests.modeling.conftest import REPO, tiny_cfg

NAE_CONFIGS = ["Base-NAE-CUHK-SYSU.yaml", "Base-NAE-PRW.yaml", "Base-NAE-PoseTrack21.yaml"]


def _nae_cfg(name="Base-NAE-PRW.yaml"):
    cfg = add_hpps_config(get_cfg())
    cfg.merge_from_file(os.path.join(REPO, "configs", "finetune", name))
    cfg.MODEL.DEVICE = "cpu"
    return cfg


def _heads(cfg):
    """The shipped RoI head (R50 res5 trunk on the stride-16 res4 map), no OIM table."""
    torch.manual_seed(0)
    return build_roi_heads(cfg, {"res4": ShapeSpec(channels=1024, stride=16)})


def _gt(boxes, size):
    inst = Instances(size)
    inst.gt_boxes = Boxes(torch.tensor(boxes, dtype=torch.float32).reshape(-1, 4))
    inst.gt_classes = torch.zeros(len(boxes), dtype=torch.int64)
    inst.gt_pids = torch.arange(len(boxes), dtype=torch.int64) + 3
    return inst


def _proposals(boxes, size):
    props = Instances(size)
    props.proposal_boxes = Boxes(torch.tensor(boxes, dtype=torch.float32))
    props.objectness_logits = torch.zeros(len(boxes))
    return props


# ---------------------------------------------------------------------------------------------- #
# (d) sampling, NMS and top-k values of the shipped NAE configs
# ---------------------------------------------------------------------------------------------- #
# NAE4PS configs/res50_faster_rcnn.py (argument defaults) and README.md L40 (train command).
NAE4PS = {
    "MODEL.ROI_HEADS.BATCH_SIZE_PER_IMAGE": 128,   # --rcnn_batch_size, L121-122
    "MODEL.ROI_HEADS.POSITIVE_FRACTION": 0.5,      # --fg_fraction, L125-126
    "MODEL.ROI_HEADS.IOU_THRESHOLDS": [0.1, 0.5],  # --bg_thresh_lo / --bg_thresh_hi, L131-135
    "MODEL.ROI_HEADS.IOU_LABELS": [0, -1, 1],      # torchvision Matcher: between = ignored
    "MODEL.ROI_HEADS.NMS_THRESH_TEST": 0.4,        # --nms_test, L203-204
    "TEST.DETECTIONS_PER_IMAGE": 300,              # = --rpn_post_nms_top_n_test (model L496)
    "MODEL.ROI_BOX_HEAD.BBOX_REG_WEIGHTS": (10.0, 10.0, 5.0, 5.0),  # L137-138
    "MODEL.ROI_BOX_HEAD.BBOX_REG_LOSS_WEIGHT": 10.0,  # README: --w_RCNN_loss_bbox 10.0
    "MODEL.ROI_BOX_HEAD.SMOOTH_L1_BETA": 1.0,      # F.smooth_l1_loss default (model L455-459)
    "MODEL.RPN.BATCH_SIZE_PER_IMAGE": 256,         # --rpn_batch_size, L156-157
    "MODEL.RPN.POSITIVE_FRACTION": 0.5,            # --rpn_fg_fraction, L153-154
    "MODEL.RPN.IOU_THRESHOLDS": [0.3, 0.7],        # --rpn_negative/positive_overlap, L147-151
    "MODEL.RPN.IOU_LABELS": [0, -1, 1],
    "MODEL.RPN.NMS_THRESH": 0.7,                   # --rpn_nms_thresh(_test), L159, L206
    "MODEL.RPN.PRE_NMS_TOPK_TRAIN": 12000,         # L162-163
    "MODEL.RPN.POST_NMS_TOPK_TRAIN": 2000,         # L165-166
    "MODEL.RPN.PRE_NMS_TOPK_TEST": 6000,           # L209-210
    "MODEL.RPN.POST_NMS_TOPK_TEST": 300,           # L212-213
}


@pytest.mark.parametrize("name", NAE_CONFIGS)
def test_shipped_nae_configs_carry_nae4ps_values(name):
    cfg = _nae_cfg(name)
    for key, expected in NAE4PS.items():
        node = cfg
        for part in key.split("."):
            node = node[part]
        if isinstance(expected, (list, tuple)):
            node = type(expected)(node)
        got = node
        assert got == expected, f"{name}: {key} = {got!r}, NAE4PS ships {expected!r}"


# ---------------------------------------------------------------------------------------------- #
# (a) the RoI background band
# ---------------------------------------------------------------------------------------------- #
SIZE = (256, 256)
GT = [0.0, 0.0, 100.0, 100.0]
# IoU with GT, by hand: 7000/10000, 3000/10000, 500/10000, 0
BAND = {
    0.7: [0.0, 0, 100, 70],
    0.3: [0.0, 0, 100, 30],
    0.05: [0.0, 0, 100, 5],
    0.0: [150.0, 150, 250, 250],
}


def _sampled_classes(heads):
    props = _proposals(list(BAND.values()), SIZE)
    with EventStorage():
        (out,) = heads.label_and_sample_proposals([props], [_gt([GT], SIZE)])
    return _classes(out)


def _classes(out):
    """{proposal box: sampled class (0 person, 1 background)} of one image's sampled RoIs."""
    boxes, classes = out.proposal_boxes.tensor.tolist(), out.gt_classes.tolist()
    return {tuple(b): c for b, c in zip(boxes, classes)}


def test_roi_background_band_is_nae4ps():
    """IoU >= 0.5 person, IoU < 0.1 background, [0.1, 0.5) never sampled (NAE4PS + torchvision)."""
    heads = _heads(_nae_cfg())
    assert heads.batch_size_per_image >= len(BAND) + 1  # everything eligible is sampled
    classes = _sampled_classes(heads)
    # torchvision's Matcher(fg 0.5, bg 0.1), as NAE4PS's RoIHeads builds it, on the same IoUs
    ious = torch.tensor([[0.7, 0.3, 0.05, 0.0]])
    tv = TorchvisionMatcher(0.5, 0.1, allow_low_quality_matches=False)(ious)
    expected = {}
    for (iou, box), m in zip(BAND.items(), tv.tolist()):
        # matched (>= 0) = person (ours: class 0); BELOW_LOW (-1) = background (ours: class 1);
        # BETWEEN (-2) = label -1, left out by the sampler
        expected[tuple(box)] = {-1: 1, -2: None}.get(m, 0)
    assert expected[tuple(BAND[0.3])] is None
    for box, cls in expected.items():
        got = classes.get(box)
        assert got == cls, f"proposal {box}: sampled as {got}, NAE4PS: {cls}"
    assert classes[tuple(GT)] == 0  # the appended ground truth


def test_seqnet_band_is_a_documented_override():
    """SeqNet (defaults.py L100-102, NEG_THRESH_TRAIN 0.5): everything below 0.5 is background."""
    cfg = _nae_cfg()
    cfg.MODEL.ROI_HEADS.IOU_THRESHOLDS = [0.5]
    cfg.MODEL.ROI_HEADS.IOU_LABELS = [0, 1]
    classes = _sampled_classes(_heads(cfg))
    assert classes[tuple(BAND[0.7])] == 0
    assert classes[tuple(BAND[0.3])] == 1 and classes[tuple(BAND[0.05])] == 1


def test_ignore_regions_with_the_nae_band():
    """The ignore band and ignore regions combine: band RoIs and background inside regions drop."""
    heads = _heads(_nae_cfg())
    gt = _gt([GT], SIZE)
    ign = Instances(SIZE)
    ign.gt_boxes = Boxes(torch.tensor([[140.0, 140, 256, 256]]))
    ign.gt_classes = torch.zeros(1, dtype=torch.int64)
    ign.gt_pids = torch.full((1,), -1, dtype=torch.int64)
    gt.gt_ignore = torch.zeros(1, dtype=torch.bool)
    ign.gt_ignore = torch.ones(1, dtype=torch.bool)
    target = Instances.cat([gt, ign])
    extra = [0.0, 200, 60, 250]  # IoU 0 with the person, outside the ignore region: background
    props = _proposals(list(BAND.values()) + [extra], SIZE)
    with EventStorage():
        (out,) = heads.label_and_sample_proposals([props], [target])
    classes = _classes(out)
    assert classes == {tuple(GT): 0, tuple(BAND[0.7]): 0, tuple(BAND[0.05]): 1, tuple(extra): 1}


# ---------------------------------------------------------------------------------------------- #
# (b) box regression loss
# ---------------------------------------------------------------------------------------------- #
class _Zero(nn.Module):
    """A box predictor that predicts zero deltas, so the loss is a function of the targets only."""

    def forward(self, x):
        return x.new_zeros((x.shape[0], 4)) + 0.0 * x[:, :1]


def _smooth_l1(x, beta=1.0):
    x = abs(x)
    return 0.5 * x * x / beta if x < beta else x - 0.5 * beta


def test_box_regression_loss_is_nae4ps_smooth_l1():
    """
    NAE4PS norm_aware_rcnn_loss (lib/model/faster_rcnn_norm_aware.py L455-460): smooth L1 with
    PyTorch's default beta 1, summed over the foreground RoIs, divided by the number of sampled
    RoIs; weighted by --w_RCNN_loss_bbox 10 (README L40).
    """
    cfg = _nae_cfg()
    heads = _heads(cfg)
    heads.box_predictor = _Zero()
    heads.train()
    gt = [0.0, 0.0, 100.0, 200.0]  # centre (50, 100), 100 x 200
    props = [
        [5.0, 0, 105, 200],  # IoU 0.905; centre x 55: dx = 10 * (50 - 55) / 100 = -0.5
        [0.0, 0, 100, 160],  # IoU 0.8; centre y 80, h 160: dy = 10 * 20 / 160, dh = 5 log(200/160)
        [150.0, 0, 250, 40],  # IoU 0: background
    ]
    features = {"res4": torch.randn(1, 1024, 16, 16)}
    with EventStorage():
        _, losses = heads(None, features, [_proposals(props, SIZE)], [_gt([gt], SIZE)])
    # per person RoI (dx, dy, dw, dh) with weights (10, 10, 5, 5); last: the appended ground truth
    targets = [-0.5, 0, 0, 0] + [0, 10 * 20 / 160, 0, 5 * math.log(200 / 160)] + [0, 0, 0, 0]
    num_sampled = 4  # 3 persons (2 proposals + the appended ground truth) + 1 background
    expected = 10.0 * sum(_smooth_l1(t) for t in targets) / num_sampled
    got = losses["det_box_reg"].item()
    assert got == pytest.approx(expected, rel=1e-5), (
        f"det_box_reg {got:.5f}, NAE4PS smooth L1 (beta 1) gives {expected:.5f}"
    )


# ---------------------------------------------------------------------------------------------- #
# (c) initialisation of the BN layers after the projections and the box regressor
# ---------------------------------------------------------------------------------------------- #
def test_embedding_bn_init_is_nae4ps():
    """
    NAE4PS NormAwareEmbeddingProj (lib/model/faster_rcnn_norm_aware.py L333-339) / SeqNet
    NormAwareEmbedding (models/seqnet.py L415-421): Linear N(0, 0.01), BN gamma N(0, 0.01), beta 0.
    """
    torch.manual_seed(0)
    emb = NormAwareEmbedding((1024, 2048), 256)
    gammas = torch.cat([p[1].weight for p in emb.projectors]).detach()
    assert gammas.numel() == 256
    std = gammas.std().item()
    assert 0.008 < std < 0.012, f"projector BN gamma std {std:.4f}, NAE4PS: 0.01"
    assert abs(gammas.mean().item()) < 0.003
    for p in emb.projectors:
        assert torch.all(p[1].bias == 0) and torch.all(p[0].bias == 0)
        assert 0.009 < p[0].weight.std().item() < 0.011
    # the rescaler is left at PyTorch's default (gamma 1, beta 0; NAE4PS L339, PyTorch 1.2)
    assert emb.rescaler.weight.item() == 1.0 and emb.rescaler.bias.item() == 0.0


def test_box_regressor_bn_init_is_nae4ps():
    """
    NAE4PS CoordRegressor (lib/model/faster_rcnn_norm_aware.py L409-415) / SeqNet BBoxRegressor
    (models/seqnet.py L486-491): BN gamma N(0, 0.01), beta 0. In training mode BN whitens each delta
    channel, so a fresh regressor's deltas have variance gamma^2, about 1e-4, where gamma 1 gives 1.
    """
    cfg = tiny_cfg(meta="PersonSearchRCNN")  # ShuffleNet trunk: cheap to build 25 times
    gammas, variances = [], []
    for seed in range(25):
        torch.manual_seed(seed)
        reg = build_roi_heads(cfg, {"stage3": ShapeSpec(channels=96, stride=16)}).box_predictor
        bn = reg[1]
        assert isinstance(bn, nn.BatchNorm1d) and torch.all(bn.bias == 0)
        gammas.append(bn.weight.detach())
        reg.train()
        with torch.no_grad():
            variances.append(reg(torch.randn(256, reg[0].in_features)).var(dim=0))
    g = torch.cat(gammas)
    std = g.std().item()
    assert 0.008 < std < 0.012, f"box regressor BN gamma std {std:.4f}, NAE4PS: 0.01"
    var = torch.cat(variances).mean().item()
    assert 0.5e-4 < var < 2e-4, f"initial delta variance {var:.2e}, NAE4PS init gives ~1e-4"


# ---------------------------------------------------------------------------------------------- #
# RoI pooling: torchvision's MultiScaleRoIAlign on feat_res4, 14x14, sampling ratio 2, not aligned
# ---------------------------------------------------------------------------------------------- #
@pytest.mark.parametrize("name", NAE_CONFIGS)
def test_roi_pooling_is_torchvision_roi_align_of_nae4ps(name):
    """NAE4PS lib/model/faster_rcnn_norm_aware.py L93-97 and SeqNet models/seqnet.py L51-53 pool
    with torchvision's MultiScaleRoIAlign(output_size=14, sampling_ratio=2) on the stride-16 map,
    i.e. roi_align(aligned=False). The reference here is torchvision's own op on the same input."""
    from torchvision.ops import roi_align

    heads = _heads(_nae_cfg(name))
    g = torch.Generator().manual_seed(0)
    feat = torch.randn(1, 1024, 12, 16, generator=g)
    boxes = torch.tensor([[10.3, 20.7, 90.2, 170.9], [100.0, 4.0, 180.5, 60.25]])
    ours = heads.pooler([feat], [Boxes(boxes)])
    ref = roi_align(feat, [boxes], output_size=14, spatial_scale=1 / 16, sampling_ratio=2, aligned=False)
    err = ((ours - ref).norm() / ref.norm()).item()
    assert err < 1e-6, f"{name}: RoI pooling differs from NAE4PS's RoIAlign by {err:.3f} (relative L2)"
