"""
An RPN that respects ignore regions (crowds, reflections, far-away groups).

Detection datasets mark regions where persons are present but not boxed individually
(CrowdHuman ``mask`` boxes, ECP far-away groups). An anchor inside such a region is neither a person
nor background: if it is not matched to a person and at least ``ignore_ioa_thresh`` of its area lies
inside an ignore region, its label becomes -1 (not sampled). Ignore regions travel in the ground-truth
``Instances`` with ``gt_ignore = True`` (see :class:`~hpps_d2.modeling.meta_arch.PersonSearchRCNN`);
without that field this RPN behaves exactly as detectron2's.
"""
from typing import List, Tuple

import torch
from detectron2.config import configurable
from detectron2.modeling.proposal_generator import PROPOSAL_GENERATOR_REGISTRY, RPN
from detectron2.structures import Boxes, Instances, pairwise_ioa, pairwise_iou

__all__ = ["IgnoreAwareRPN", "split_ignore"]


def split_ignore(instances: Instances) -> Tuple[Instances, Boxes]:
    """Split ground truth into (persons, ignore-region boxes) by the optional ``gt_ignore`` field."""
    if not instances.has("gt_ignore"):
        return instances, Boxes(instances.gt_boxes.tensor[:0])
    ignore = instances.gt_ignore
    return instances[~ignore], instances.gt_boxes[ignore]


@PROPOSAL_GENERATOR_REGISTRY.register()
class IgnoreAwareRPN(RPN):
    """detectron2's RPN whose anchor labelling leaves anchors inside ignore regions out."""

    @configurable
    def __init__(self, *, ignore_ioa_thresh: float = 0.5, **kwargs):
        super().__init__(**kwargs)
        self.ignore_ioa_thresh = ignore_ioa_thresh

    @classmethod
    def from_config(cls, cfg, input_shape):
        ret = super().from_config(cfg, input_shape)
        ret["ignore_ioa_thresh"] = cfg.MODEL.IGNORE_IOA_THRESH
        return ret

    @torch.no_grad()
    def label_and_sample_anchors(
        self, anchors: List[Boxes], gt_instances: List[Instances]
    ) -> Tuple[List[torch.Tensor], List[torch.Tensor]]:
        """
        Returns:
            list[Tensor]: per image, (R,) labels in {-1, 0, 1} over all anchors.
            list[Tensor]: per image, (R, 4) matched person boxes (meaningful where label is 1).
        """
        anchors = Boxes.cat(anchors)
        gt_labels, matched_gt_boxes = [], []
        for inst in gt_instances:
            persons, ignore = split_ignore(inst)
            boxes = persons.gt_boxes
            matched_idxs, labels = self.anchor_matcher(pairwise_iou(boxes, anchors))
            labels = labels.to(device=boxes.device)
            if self.anchor_boundary_thresh >= 0:
                labels[~anchors.inside_box(inst.image_size, self.anchor_boundary_thresh)] = -1
            if len(ignore) > 0:
                ioa = pairwise_ioa(ignore, anchors).max(dim=0).values  # share of each anchor inside
                labels[(labels == 0) & (ioa >= self.ignore_ioa_thresh)] = -1
            labels = self._subsample_labels(labels)
            gt_labels.append(labels)
            if len(boxes) == 0:
                matched_gt_boxes.append(torch.zeros_like(anchors.tensor))
            else:
                matched_gt_boxes.append(boxes[matched_idxs].tensor)
        return gt_labels, matched_gt_boxes
