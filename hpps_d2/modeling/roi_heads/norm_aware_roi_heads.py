"""
The re-ID RoI head of NAE-style person search (C4 layout), with ignore regions.

Per RoI: ROIAlign on the stride-16 map (``roi_maps``, (R, C4, P, P)), the box trunk (res5 /
ShuffleNet stage4, (R, C5, P/2, P/2)), pooling (max, as NAE/SeqNet, or average) of both to ``f4``
(R, C4) and ``f5`` (R, C5). ``f5`` feeds class-agnostic box regression (:class:`BoxRegressor`,
Linear + BN as NAE4PS/SeqNet); ``(f4, f5)`` feed the norm-aware embedding, whose rescaled norm is
the person logit (binary cross-entropy) and whose direction is the re-ID feature (OIM). Losses are
named ``det_cls``, ``det_box_reg`` and ``reid_oim``.

Training targets follow NAE4PS (torchvision's RoIHeads with its fg/bg IoU thresholds): with
``MODEL.ROI_HEADS.IOU_THRESHOLDS [0.1, 0.5]`` and ``IOU_LABELS [0, -1, 1]`` a proposal is a person
at IoU >= 0.5, background below 0.1 and never sampled in between. The box loss is NAE4PS's
``norm_aware_rcnn_loss`` (lib/model/faster_rcnn_norm_aware.py L455-460): smooth L1 (beta
``MODEL.ROI_BOX_HEAD.SMOOTH_L1_BETA``, 1.0 there) summed over the person RoIs and divided by the
number of sampled RoIs, times ``BBOX_REG_LOSS_WEIGHT``.
"""
from typing import Dict, List, Optional

import torch
import torch.nn.functional as F
from detectron2.config import configurable
from detectron2.layers import ShapeSpec, batched_nms, cat
from detectron2.modeling.box_regression import Box2BoxTransform
from detectron2.modeling.poolers import ROIPooler
from detectron2.modeling.proposal_generator.proposal_utils import add_ground_truth_to_proposals
from detectron2.modeling.roi_heads import ROI_HEADS_REGISTRY, ROIHeads
from detectron2.modeling.sampling import subsample_labels
from detectron2.structures import Boxes, Instances, pairwise_ioa, pairwise_iou
from detectron2.utils.events import get_event_storage
from fvcore.nn import smooth_l1_loss
from torch import nn

from ..oim import OIMLoss
from ..oim_sharded import TABLE_DTYPES, ShardedOIMLoss
from ..proposal_generator.ignore_rpn import split_ignore
from .box_regressor import BoxRegressor
from .box_trunk import build_box_trunk
from .norm_aware_embedding import NormAwareEmbedding

__all__ = ["NormAwareROIHeads"]

#: person id given to background RoIs
BACKGROUND_PID = -2
#: pooling of the RoI maps into vectors (cfg.MODEL.NAE.POOL)
_POOLS = {"max": F.adaptive_max_pool2d, "avg": F.adaptive_avg_pool2d}


def build_oim(cfg, num_ids: int) -> OIMLoss:
    """The OIM loss of ``cfg.MODEL.OIM``: replicated, or sharded across processes (``SHARDED``)."""
    o = cfg.MODEL.OIM
    kw = dict(queue_size=o.QUEUE_SIZE, momentum=o.MOMENTUM, scale=o.SCALE)
    if not o.SHARDED:
        return OIMLoss(cfg.MODEL.NAE.EMBEDDING_DIM, num_ids, **kw)
    return ShardedOIMLoss(
        cfg.MODEL.NAE.EMBEDDING_DIM, num_ids, chunk_rows=o.CHUNK_ROWS, table_dtype=TABLE_DTYPES[o.TABLE_DTYPE],
        sample_rate=o.SAMPLE_RATE, seed=max(0, cfg.SEED), **kw
    )


@ROI_HEADS_REGISTRY.register()
class NormAwareROIHeads(ROIHeads):
    """
    NAE RoI head. Ground truth ``Instances`` carry ``gt_boxes``, ``gt_classes`` (0), ``gt_pids``
    (identity or -1 unlabeled) and optionally ``gt_ignore`` (True for ignore regions).

    In eval it returns ``Instances`` with ``pred_boxes``, ``scores``, ``pred_classes`` and
    ``pred_embeddings`` ((N, D), L2-normalised). NAE's embedding is computed on the proposal
    (before regression), as in NAE and SeqNet's first stage.
    """

    @configurable
    def __init__(
        self,
        *,
        in_feature: str,
        pooler: ROIPooler,
        trunk: nn.Module,
        embedding: NormAwareEmbedding,
        box_predictor: nn.Module,
        box2box_transform: Box2BoxTransform,
        oim: Optional[OIMLoss],
        smooth_l1_beta: float = 1.0,
        box_reg_weight: float = 1.0,
        cls_weight: float = 1.0,
        oim_weight: float = 1.0,
        ignore_ioa_thresh: float = 0.5,
        test_score_thresh: float = 0.05,
        test_nms_thresh: float = 0.4,
        test_topk: int = 300,
        pool: str = "max",
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.in_feature = in_feature
        self.pooler = pooler
        self.trunk = trunk
        self.embedding = embedding
        self.box_predictor = box_predictor
        self.box2box_transform = box2box_transform
        self.oim = oim
        self.smooth_l1_beta = smooth_l1_beta
        self.box_reg_weight = box_reg_weight
        self.cls_weight = cls_weight
        self.oim_weight = oim_weight
        self.ignore_ioa_thresh = ignore_ioa_thresh
        self.test_score_thresh = test_score_thresh
        self.test_nms_thresh = test_nms_thresh
        self.test_topk = test_topk
        if pool not in _POOLS:
            raise ValueError(f"MODEL.NAE.POOL must be one of {sorted(_POOLS)}, got {pool!r}")
        self.pool = _POOLS[pool]

    @classmethod
    def from_config(cls, cfg, input_shape: Dict[str, ShapeSpec]):
        ret = super().from_config(cfg)
        (in_feature,) = cfg.MODEL.ROI_HEADS.IN_FEATURES
        c4, stride = input_shape[in_feature].channels, input_shape[in_feature].stride
        bh = cfg.MODEL.ROI_BOX_HEAD
        trunk = build_box_trunk(cfg, c4)
        num_ids = cfg.MODEL.OIM.NUM_IDENTITIES
        ret.update(
            in_feature=in_feature,
            pooler=ROIPooler(
                output_size=bh.POOLER_RESOLUTION,
                scales=(1.0 / stride,),
                sampling_ratio=bh.POOLER_SAMPLING_RATIO,
                pooler_type=bh.POOLER_TYPE,
            ),
            trunk=trunk,
            embedding=NormAwareEmbedding((c4, trunk.out_channels), cfg.MODEL.NAE.EMBEDDING_DIM),
            box_predictor=BoxRegressor(trunk.out_channels),
            box2box_transform=Box2BoxTransform(weights=bh.BBOX_REG_WEIGHTS),
            # Without a counted identity number (inference, export) there is no lookup table.
            oim=build_oim(cfg, num_ids) if num_ids > 0 else None,
            smooth_l1_beta=bh.SMOOTH_L1_BETA,
            box_reg_weight=bh.BBOX_REG_LOSS_WEIGHT,
            cls_weight=cfg.MODEL.NAE.CLS_LOSS_WEIGHT,
            oim_weight=cfg.MODEL.OIM.LOSS_WEIGHT,
            ignore_ioa_thresh=cfg.MODEL.IGNORE_IOA_THRESH,
            test_score_thresh=cfg.MODEL.ROI_HEADS.SCORE_THRESH_TEST,
            test_nms_thresh=cfg.MODEL.ROI_HEADS.NMS_THRESH_TEST,
            test_topk=cfg.TEST.DETECTIONS_PER_IMAGE,
            pool=cfg.MODEL.NAE.POOL,
        )
        return ret

    # ------------------------------------------------------------------------------------------ #
    # training targets
    # ------------------------------------------------------------------------------------------ #
    @torch.no_grad()
    def label_and_sample_proposals(
        self, proposals: List[Instances], targets: List[Instances]
    ) -> List[Instances]:
        """
        Match proposals to persons (ignore regions excluded), leave out background proposals
        inside ignore regions, and sample ``batch_size_per_image`` per image.

        Returns:
            per image, Instances with ``proposal_boxes``, ``gt_classes`` (0 person, 1 background),
            ``gt_boxes`` and ``gt_pids`` (``BACKGROUND_PID`` for background).
        """
        persons, ignores = zip(*(split_ignore(t) for t in targets))
        if self.proposal_append_gt:
            proposals = add_ground_truth_to_proposals(list(persons), proposals)
        out, num_fg, num_bg = [], [], []
        for props, gt, ign in zip(proposals, persons, ignores):
            boxes = props.proposal_boxes
            matched_idxs, matched_labels = self.proposal_matcher(pairwise_iou(gt.gt_boxes, boxes))
            labels = torch.where(matched_labels == 1, 0, self.num_classes)  # 0 person, 1 background
            labels[matched_labels == -1] = -1
            if len(ign) > 0:
                inside = pairwise_ioa(ign, boxes).max(dim=0).values >= self.ignore_ioa_thresh
                labels[(labels == self.num_classes) & inside] = -1
            fg, bg = subsample_labels(labels, self.batch_size_per_image, self.positive_fraction, self.num_classes)
            idx = torch.cat([fg, bg])
            sampled = props[idx]
            sampled.gt_classes = labels[idx]
            if len(gt) > 0:
                sampled.gt_boxes = gt.gt_boxes[matched_idxs[idx]]
                pids = gt.gt_pids[matched_idxs[idx]].clone()
            else:
                sampled.gt_boxes = Boxes(boxes.tensor.new_zeros((len(idx), 4)))
                pids = torch.full((len(idx),), BACKGROUND_PID, dtype=torch.int64, device=boxes.device)
            pids[sampled.gt_classes != 0] = BACKGROUND_PID
            sampled.gt_pids = pids
            out.append(sampled)
            num_fg.append(len(fg))
            num_bg.append(len(bg))
        storage = get_event_storage()
        storage.put_scalar("roi_head/num_fg_samples", sum(num_fg) / max(1, len(num_fg)))
        storage.put_scalar("roi_head/num_bg_samples", sum(num_bg) / max(1, len(num_bg)))
        return out

    # ------------------------------------------------------------------------------------------ #
    # features
    # ------------------------------------------------------------------------------------------ #
    def roi_features(self, features: Dict[str, torch.Tensor], boxes: List[Boxes]) -> Dict[str, torch.Tensor]:
        """
        Args:
            features: backbone outputs; ``features[in_feature]`` is (B, C4, H, W).
            boxes: per image, the RoIs in input-image coordinates.

        Returns:
            dict with ``roi_maps`` (R, C4, P, P), ``det_features`` = f5 (R, C5),
            ``reid_features`` (R, D) unnormalised embeddings, ``logits`` (R,) person logits,
            ``deltas`` (R, 4) box regression.
        """
        roi_maps = self.pooler([features[self.in_feature]], boxes)
        trunk_out = self.trunk(roi_maps)
        f4 = self.pool(roi_maps, 1).flatten(1)
        f5 = self.pool(trunk_out, 1).flatten(1)
        emb, logits = self.embedding([f4, f5])
        return {
            "roi_maps": roi_maps,
            "det_features": f5,
            "reid_features": emb,
            "logits": logits,
            "deltas": self.box_predictor(f5),
        }

    # ------------------------------------------------------------------------------------------ #
    # forward
    # ------------------------------------------------------------------------------------------ #
    def forward(
        self,
        images,
        features: Dict[str, torch.Tensor],
        proposals: List[Instances],
        targets: Optional[List[Instances]] = None,
        return_features: bool = False,
    ):
        """
        Training: returns ``(proposals, losses)``, or ``(proposals, losses, extras)`` with
        ``return_features``, where extras hold the per-RoI tensors of :meth:`roi_features` plus
        ``image_index`` (R,), ``is_fg`` (R,) bool and ``pids`` (R,) of the sampled RoIs.
        Inference: returns ``(instances, {})``.
        """
        del images
        if not self.training:
            return self.inference(features, proposals), {}
        proposals = self.label_and_sample_proposals(proposals, targets)
        out = self.roi_features(features, [p.proposal_boxes for p in proposals])
        classes = cat([p.gt_classes for p in proposals])
        is_fg = classes == 0
        pids = cat([p.gt_pids for p in proposals])
        losses = {"det_cls": self.cls_weight * F.binary_cross_entropy_with_logits(out["logits"], is_fg.float())}
        boxes = cat([p.proposal_boxes.tensor for p in proposals])
        gt_boxes = cat([p.gt_boxes.tensor for p in proposals])
        if is_fg.any():
            target = self.box2box_transform.get_deltas(boxes[is_fg], gt_boxes[is_fg])
            reg = smooth_l1_loss(out["deltas"][is_fg], target, self.smooth_l1_beta, reduction="sum")
            losses["det_box_reg"] = self.box_reg_weight * reg / max(1, classes.numel())
        else:
            losses["det_box_reg"] = out["deltas"].sum() * 0.0
        if self.oim is not None:
            fg_feats = F.normalize(out["reid_features"][is_fg], dim=1)
            losses["reid_oim"] = self.oim_weight * self.oim(fg_feats, pids[is_fg])
        if not return_features:
            return proposals, losses
        out["image_index"] = cat(
            [torch.full((len(p),), i, dtype=torch.int64, device=classes.device) for i, p in enumerate(proposals)]
        )
        out["is_fg"] = is_fg
        out["pids"] = pids
        return proposals, losses, out

    @torch.no_grad()
    def inference(self, features: Dict[str, torch.Tensor], proposals: List[Instances]) -> List[Instances]:
        boxes = [p.proposal_boxes for p in proposals]
        out = self.roi_features(features, boxes)
        scores_all = out["logits"].sigmoid()
        emb_all = F.normalize(out["reid_features"], dim=1)
        results, start = [], 0
        for p in proposals:
            n = len(p)
            sl = slice(start, start + n)
            start += n
            pred = self.box2box_transform.apply_deltas(out["deltas"][sl], p.proposal_boxes.tensor)
            pred = Boxes(pred)
            pred.clip(p.image_size)
            scores, emb = scores_all[sl], emb_all[sl]
            keep = (scores >= self.test_score_thresh) & pred.nonempty()
            pred, scores, emb = pred[keep], scores[keep], emb[keep]
            keep = batched_nms(pred.tensor, scores, torch.zeros_like(scores, dtype=torch.int64), self.test_nms_thresh)
            keep = keep[: self.test_topk]
            inst = Instances(p.image_size)
            inst.pred_boxes = pred[keep]
            inst.scores = scores[keep]
            inst.pred_classes = torch.zeros_like(keep)
            inst.pred_embeddings = emb[keep]
            results.append(inst)
        return results

    @torch.no_grad()
    def forward_with_given_boxes(self, features: Dict[str, torch.Tensor], instances: List[Instances]) -> List[Instances]:
        """
        Embed given boxes (e.g. query boxes): adds ``pred_embeddings`` ((N, D), L2-normalised, no
        regression) and ``scores`` to each ``Instances`` (which must have ``pred_boxes``).
        """
        out = self.roi_features(features, [i.pred_boxes for i in instances])
        emb = F.normalize(out["reid_features"], dim=1)
        scores = out["logits"].sigmoid()
        start = 0
        for inst in instances:
            n = len(inst)
            inst.pred_embeddings = emb[start : start + n]
            inst.scores = scores[start : start + n]
            if not inst.has("pred_classes"):
                inst.pred_classes = torch.zeros(n, dtype=torch.int64, device=emb.device)
            start += n
        return instances
