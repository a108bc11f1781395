import torch
from detectron2.modeling import build_model
from detectron2.structures import Boxes, Instances
from detectron2.utils.events import EventStorage

from tests.modeling.conftest import tiny_cfg


def _gt(persons, ignore, size=(200, 200)):
    inst = Instances(size)
    boxes = torch.tensor(persons + ignore, dtype=torch.float32).reshape(-1, 4)
    inst.gt_boxes = Boxes(boxes)
    inst.gt_classes = torch.zeros(len(boxes), dtype=torch.int64)
    inst.gt_pids = torch.tensor([7] * len(persons) + [-1] * len(ignore), dtype=torch.int64)
    inst.gt_ignore = torch.tensor([False] * len(persons) + [True] * len(ignore))
    return inst


def test_rpn_leaves_anchors_inside_ignore_regions_out():
    cfg = tiny_cfg(meta="PersonSearchRCNN")
    cfg.MODEL.RPN.BATCH_SIZE_PER_IMAGE = 10_000  # keep every label (no subsampling)
    rpn = build_model(cfg).proposal_generator
    anchors = Boxes(torch.tensor([
        [10.0, 10, 50, 90],     # = the person: positive
        [120, 120, 140, 160],   # inside the ignore region: ignored
        [100, 100, 200, 200],   # 25% inside: background
        [0, 150, 40, 190],      # elsewhere: background
    ]))
    labels, matched = rpn.label_and_sample_anchors([anchors], [_gt([[10, 10, 50, 90]], [[110, 110, 170, 170]])])
    assert labels[0].tolist() == [1, -1, 0, 0]
    torch.testing.assert_close(matched[0][0], torch.tensor([10.0, 10, 50, 90]))
    # without ignore regions the same anchor is background, as in detectron2's RPN
    labels, _ = rpn.label_and_sample_anchors([anchors], [_gt([[10, 10, 50, 90]], [])])
    assert labels[0].tolist() == [1, 0, 0, 0]


def test_roi_sampling_excludes_background_inside_ignore_regions():
    cfg = tiny_cfg(meta="PersonSearchRCNN")
    cfg.MODEL.ROI_HEADS.BATCH_SIZE_PER_IMAGE = 512
    cfg.MODEL.ROI_HEADS.POSITIVE_FRACTION = 1.0
    heads = build_model(cfg).roi_heads
    props = Instances((200, 200))
    props.proposal_boxes = Boxes(torch.tensor([[12.0, 12, 50, 88], [115, 115, 165, 165], [0, 150, 40, 190]]))
    props.objectness_logits = torch.zeros(3)
    with EventStorage():
        (out,) = heads.label_and_sample_proposals([props], [_gt([[10, 10, 50, 90]], [[110, 110, 170, 170]])])
    boxes = {tuple(b.tolist()): (c, p) for b, c, p in zip(out.proposal_boxes.tensor, out.gt_classes.tolist(), out.gt_pids.tolist())}
    # the appended ground truth and the overlapping proposal are persons with the identity
    assert boxes[(10.0, 10.0, 50.0, 90.0)] == (0, 7)
    assert boxes[(12.0, 12.0, 50.0, 88.0)] == (0, 7)
    assert boxes[(0.0, 150.0, 40.0, 190.0)] == (1, -2)  # background
    assert (115.0, 115.0, 165.0, 165.0) not in boxes  # inside the ignore region: not sampled
    assert (110.0, 110.0, 170.0, 170.0) not in boxes  # ignore regions are never proposals
