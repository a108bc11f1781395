"""
PersonSearchRCNN: a one-stage (NAE-style) person-search model, detection + re-ID in one network.

A detectron2 ``GeneralizedRCNN``: backbone (ResNet or ShuffleNet up to stride 16), an RPN that
respects ignore regions, and a re-ID RoI head (``NormAwareROIHeads``). Inputs are detectron2 dicts
whose ``instances`` carry ``gt_pids`` and whose optional ``ignore_boxes`` are ignore regions.
Losses are named by group: ``det_rpn_cls``, ``det_rpn_loc``, ``det_cls``, ``det_box_reg``,
``reid_oim``.

In eval, each input may carry ``query_boxes`` ((K, 4) XYXY in the ``height``/``width`` frame) next to
``image``; each output dict has ``instances`` (detections rescaled to ``height``/``width``, with
``pred_boxes``, ``scores`` and L2-normalised ``pred_embeddings`` (N, D)) and, for inputs with query
boxes, ``query_embeddings`` ((K, D), L2-normalised, the embedding of the given box: NAE's angle
without score). The backbone runs once for both.
"""
from typing import Dict, List, Optional, Sequence

import torch
from detectron2.modeling import META_ARCH_REGISTRY, GeneralizedRCNN
from detectron2.structures import Boxes, Instances

from ...data.image_io import check_pixel_statistics

__all__ = ["PersonSearchRCNN", "build_targets"]

#: detectron2's RPN loss names -> this project's
_RPN_LOSS_NAMES = {"loss_rpn_cls": "det_rpn_cls", "loss_rpn_loc": "det_rpn_loc"}


def build_targets(inputs: Sequence[dict], device) -> List[Instances]:
    """
    Ground truth per image: the persons of ``instances`` (``gt_ignore = False``) followed by the
    ``ignore_boxes`` (``gt_ignore = True``, ``gt_pids = -1``).
    """
    targets = []
    for x in inputs:
        persons = x["instances"].to(device)
        n = len(persons)
        persons.gt_ignore = torch.zeros(n, dtype=torch.bool, device=device)
        if not persons.has("gt_pids"):
            persons.gt_pids = torch.full((n,), -1, dtype=torch.int64, device=device)
        ignore = x.get("ignore_boxes")
        if ignore is not None and len(ignore) > 0:
            ign = Instances(persons.image_size)
            ign.gt_boxes = ignore.to(device)
            k = len(ignore)
            ign.gt_classes = torch.zeros(k, dtype=torch.int64, device=device)
            ign.gt_pids = torch.full((k,), -1, dtype=torch.int64, device=device)
            ign.gt_ignore = torch.ones(k, dtype=torch.bool, device=device)
            persons = Instances.cat([persons, ign])
        targets.append(persons)
    return targets


@META_ARCH_REGISTRY.register()
class PersonSearchRCNN(GeneralizedRCNN):
    """See the module docstring."""

    @classmethod
    def from_config(cls, cfg):
        # Every model of this project is built here (training from scratch and --eval-only too):
        # ImageNet statistics in the order opposite to INPUT.FORMAT are refused before any step.
        check_pixel_statistics(cfg.INPUT.FORMAT, cfg.MODEL.PIXEL_MEAN, cfg.MODEL.PIXEL_STD, "model config")
        return super().from_config(cfg)

    def detect_stage(self, inputs: Sequence[dict]):
        """
        Shared first half of training: returns ``(images, targets, features, proposals, losses)``
        with the RPN losses renamed.
        """
        images = self.preprocess_image(inputs)
        targets = build_targets(inputs, self.device)
        features = self.backbone(images.tensor)
        proposals, rpn_losses = self.proposal_generator(images, features, targets)
        losses = {_RPN_LOSS_NAMES.get(k, k): v for k, v in rpn_losses.items()}
        return images, targets, features, proposals, losses

    def forward(self, batched_inputs: List[Dict]):
        if not self.training:
            return self.inference(batched_inputs)
        images, targets, features, proposals, losses = self.detect_stage(batched_inputs)
        _, roi_losses = self.roi_heads(images, features, proposals, targets)
        losses.update(roi_losses)
        return losses

    def inference(self, batched_inputs: List[Dict], detected_instances=None, do_postprocess: bool = True):
        """detectron2's inference, plus ``query_embeddings`` for inputs with ``query_boxes``."""
        if detected_instances is not None or not any("query_boxes" in x for x in batched_inputs):
            return super().inference(batched_inputs, detected_instances, do_postprocess)
        assert not self.training
        images = self.preprocess_image(batched_inputs)
        features = self.backbone(images.tensor)
        proposals, _ = self.proposal_generator(images, features, None)
        results, _ = self.roi_heads(images, features, proposals, None)
        queries = [self._given_boxes(x) for x in batched_inputs]
        embedded = self.roi_heads.forward_with_given_boxes(features, queries)
        outputs = GeneralizedRCNN._postprocess(results, batched_inputs, images.image_sizes) if do_postprocess else [{"instances": r} for r in results]
        for out, x, q in zip(outputs, batched_inputs, embedded):
            if "query_boxes" in x:
                out["query_embeddings"] = q.pred_embeddings
        return outputs

    def _given_boxes(self, x: Dict, boxes=None) -> Instances:
        """Boxes in the ``height``/``width`` frame of ``x`` as Instances in its input-image frame."""
        h, w = x["image"].shape[-2:]
        sy, sx = h / x.get("height", h), w / x.get("width", w)
        b = x.get("query_boxes") if boxes is None else boxes
        b = torch.as_tensor(b if b is not None else [], dtype=torch.float32, device=self.device).reshape(-1, 4)
        inst = Instances((h, w))
        inst.pred_boxes = Boxes(b * b.new_tensor([sx, sy, sx, sy]))
        return inst

    @torch.no_grad()
    def embed_boxes(self, batched_inputs: List[Dict], boxes: List[torch.Tensor]) -> List[torch.Tensor]:
        """
        Embed given boxes, e.g. person-search queries.

        Args:
            batched_inputs: as for inference (``image``, optional ``height``/``width``: the size the
                boxes are expressed in, default the input image size).
            boxes: per image, (K, 4) XYXY boxes in that output size.

        Returns:
            per image, (K, D) L2-normalised embeddings (the angle of NAE, without the score factor).
        """
        instances = [self._given_boxes(x, b) for x, b in zip(batched_inputs, boxes)]
        out = self.inference(batched_inputs, detected_instances=instances, do_postprocess=False)
        return [i.pred_embeddings for i in out]

    def apply_pending_updates(self) -> int:
        """
        Apply the OIM table updates recorded by the training forwards since the last apply or
        discard (call after the optimizer step, on every rank: it all-gathers under DDP).

        Returns:
            the number of feature rows left out because they were not finite.
        """
        oim: Optional[torch.nn.Module] = getattr(self.roi_heads, "oim", None)
        return oim.apply_pending_updates() if oim is not None else 0

    def discard_pending_updates(self) -> int:
        """Drop the recorded OIM updates (a skipped step); returns how many rows were dropped."""
        oim: Optional[torch.nn.Module] = getattr(self.roi_heads, "oim", None)
        return oim.discard_pending_updates() if oim is not None else 0
