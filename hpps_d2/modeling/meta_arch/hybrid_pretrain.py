"""
HybridPretrainRCNN: the whole person-search model trained by hybrid pre-training (paper, Fig. 3).

Inputs are :class:`~hpps_d2.data.hybrid_mapper.HybridDatasetMapper` outputs: per image, its views,
task, domain and the loss terms it feeds. Every view of every image passes through the whole
person-search model (:class:`PersonSearchRCNN`); the loss is Eq. 1::

    L = L_ps + eta * L_con + lambda * L_adv
    L_ps  = det_rpn_cls + det_rpn_loc + det_cls + det_box_reg + reid_oim        (Eq. 2-4)
    L_con = ssl_con                                                             (Eq. 5-6)
    L_adv = adv_det_{img,ins,cst} + adv_reid_{img,ins,cst} [+ adv_inter_*]     (Eq. 7)

* ``ssl_con``: persons of images that feed "ssl" (detection and unlabeled re-ID images) are matched
  across the two views by identity; ``h`` is the mean re-ID feature of the person's foreground RoIs
  in a view, ``z`` the prediction MLP's output (:mod:`hpps_d2.modeling.simsiam`). The matched
  persons of all ranks form one batch (gathered with gradient), as SimSiam's SyncBN does.
* detection IAM: backbone maps (image level, padding masked) and box-trunk features of the sampled
  RoIs (instance level) of detection-task views, labelled by detection domain.
* re-ID IAM: RoI-aligned maps (image level) and re-ID features (instance level: the L2-normalised NAE
  embedding, never its norm, which is the detection score) of foreground RoIs of re-ID-task views,
  labelled by re-ID domain.
* inter-task module (paper Tab. 5, off by default): backbone maps and box-trunk features of every
  view, labelled by task.

Each term is weighted in the model, so the returned dict sums to Eq. 1 and every key is logged.
"""
import logging
from typing import Dict, List, Optional, Tuple

import torch
import torch.nn.functional as F
from detectron2.config import configurable
from detectron2.data import MetadataCatalog
from detectron2.modeling import META_ARCH_REGISTRY
from detectron2.utils.events import get_event_storage

from ..gather import all_gather_rows
from ..iam import AlignmentModule
from ..simsiam import PredictionMLP, match_by_identity, symmetric_consistency_loss
from .person_search import PersonSearchRCNN

__all__ = ["HybridPretrainRCNN", "count_domains"]

logger = logging.getLogger(__name__)

_TASK_ID = {"detection": 0, "reid": 1}


def count_domains(dataset_names, task: str) -> int:
    """Number of training datasets of ``task`` (their metadata ``task``), i.e. that task's domains."""
    return sum(1 for n in dataset_names if MetadataCatalog.get(n).task == task)


@META_ARCH_REGISTRY.register()
class HybridPretrainRCNN(PersonSearchRCNN):
    """See the module docstring."""

    @configurable
    def __init__(
        self,
        *,
        ssl_predictor: Optional[PredictionMLP] = None,
        ssl_weight: float = 1.0,
        iam_det: Optional[AlignmentModule] = None,
        iam_reid: Optional[AlignmentModule] = None,
        iam_inter: Optional[AlignmentModule] = None,
        adv_weight: float = 1.0,
        adv_term_weights: Optional[Dict[str, float]] = None,
        **kwargs,
    ):
        """
        Args:
            ssl_predictor: the prediction MLP; None switches L_con off.
            ssl_weight: eta of Eq. 1.
            iam_det, iam_reid, iam_inter: alignment modules; None switches each off.
            adv_weight: lambda of Eq. 1.
            adv_term_weights: weights of the "img", "ins" and "cst" terms inside each module.
            kwargs: arguments of :class:`PersonSearchRCNN`.
        """
        super().__init__(**kwargs)
        self.ssl_predictor = ssl_predictor
        self.ssl_weight = ssl_weight
        self.iam_det = iam_det
        self.iam_reid = iam_reid
        self.iam_inter = iam_inter
        self.adv_weight = adv_weight
        self.adv_term_weights = adv_term_weights or {"img": 1.0, "ins": 1.0, "cst": 0.1}

    @classmethod
    def from_config(cls, cfg):
        ret = super().from_config(cfg)
        h = cfg.HPPS
        in_feature = cfg.MODEL.ROI_HEADS.IN_FEATURES[0]
        c4 = ret["backbone"].output_shape()[in_feature].channels
        c5 = ret["roi_heads"].trunk.out_channels
        dim = cfg.MODEL.NAE.EMBEDDING_DIM
        if h.SSL.ENABLED:
            ret["ssl_predictor"] = PredictionMLP(dim, h.SSL.PRED_HIDDEN_DIM, h.SSL.PRED_NORM)
        ret["ssl_weight"] = h.LOSS.ETA
        ret["adv_weight"] = h.LOSS.LAMBDA
        ret["adv_term_weights"] = {"img": h.IAM.IMG_WEIGHT, "ins": h.IAM.INS_WEIGHT, "cst": h.IAM.CST_WEIGHT}

        def iam(img_channels, ins_dim, num_domains):
            return AlignmentModule(
                img_channels, ins_dim, num_domains, h.IAM.GRL_WEIGHT, h.IAM.CONV_DIMS, h.IAM.FC_DIMS, h.IAM.DROPOUT
            )

        names = cfg.DATASETS.TRAIN
        n_det, n_reid = count_domains(names, "detection"), count_domains(names, "reid")
        for key, enabled, n, ins_dim, task in (
            ("DET", h.IAM.DET_ENABLED, n_det, c5, "detection"),
            ("REID", h.IAM.REID_ENABLED, n_reid, dim, "re-ID"),
        ):
            if enabled and n >= 2:
                ret[f"iam_{key.lower()}"] = iam(c4, ins_dim, n)
            elif enabled:
                logger.warning(f"HPPS.IAM.{key}_ENABLED is set but DATASETS.TRAIN has {n} {task} domain(s): nothing to align, no {task} IAM built")
        if h.IAM.INTER_ENABLED and n_det >= 1 and n_reid >= 1:
            ret["iam_inter"] = iam(c4, c5, 2)
        return ret

    # ------------------------------------------------------------------------------------------ #
    def forward(self, batched_inputs: List[Dict]):
        """
        Args:
            batched_inputs: HybridDatasetMapper outputs (each with ``views``); in eval mode, plain
                detectron2 inputs (this model then behaves as :class:`PersonSearchRCNN`).

        Returns:
            dict of weighted losses (training) or inference results.
        """
        if not self.training:
            return self.inference(batched_inputs)
        views, image_of_view, view_of_image = [], [], []
        for b, rec in enumerate(batched_inputs):
            view_of_image.append([])
            for v in rec["views"]:
                view_of_image[-1].append(len(views))
                views.append(v)
                image_of_view.append(b)
        images, targets, features, proposals, losses = self.detect_stage(views)
        _, roi_losses, extras = self.roi_heads(images, features, proposals, targets, return_features=True)
        losses.update(roi_losses)
        dev = self.device
        task = torch.tensor([_TASK_ID[batched_inputs[b]["task"]] for b in image_of_view], device=dev)
        domain = torch.tensor([batched_inputs[b]["domain"] for b in image_of_view], device=dev)
        if self.ssl_predictor is not None:
            ssl_images = [b for b, rec in enumerate(batched_inputs) if "ssl" in rec["losses"]]
            con, stats = self._consistency(extras, view_of_image, ssl_images)
            losses["ssl_con"] = self.ssl_weight * con
            storage = get_event_storage()
            storage.put_scalar("ssl/matched_persons", stats["pairs"])
            storage.put_scalar("ssl/images_contributing", stats["contributing"] / max(1, stats["images"]))
        feat_map = features[self.roi_heads.in_feature]
        mask = self._valid_mask(images, feat_map)
        if self.iam_det is not None:
            self._add_adv(losses, "det", self._image_level_alignment(self.iam_det, feat_map, mask, extras, task == 0, domain))
        if self.iam_reid is not None:
            losses.update(self._reid_alignment(extras, task, domain))
        if self.iam_inter is not None:
            all_views = torch.ones_like(task, dtype=torch.bool)
            self._add_adv(losses, "inter", self._image_level_alignment(self.iam_inter, feat_map, mask, extras, all_views, task))
        return losses

    # ------------------------------------------------------------------------------------------ #
    def _add_adv(self, losses: Dict, name: str, terms: Dict[str, torch.Tensor]) -> None:
        for k, v in terms.items():
            losses[f"adv_{name}_{k}"] = self.adv_weight * self.adv_term_weights[k] * v

    @staticmethod
    def _valid_mask(images, feat_map: torch.Tensor) -> torch.Tensor:
        """(V, H, W) bool: feature-map locations inside each view's image (padding excluded)."""
        v, _, h, w = feat_map.shape
        stride_y = images.tensor.shape[-2] / h
        stride_x = images.tensor.shape[-1] / w
        mask = torch.zeros((v, h, w), dtype=torch.bool, device=feat_map.device)
        for i, (ih, iw) in enumerate(images.image_sizes):
            mask[i, : max(1, int(round(ih / stride_y))), : max(1, int(round(iw / stride_x)))] = True
        return mask

    def _image_level_alignment(self, module, feat_map, mask, extras, views_sel, labels):
        """Alignment on (backbone maps, box-trunk RoI features) of the selected views."""
        idx = views_sel.nonzero(as_tuple=True)[0]
        position = torch.full_like(views_sel, -1, dtype=torch.int64)
        position[idx] = torch.arange(len(idx), device=idx.device)
        rois = views_sel[extras["image_index"]]
        roi_view = extras["image_index"][rois]
        return module(
            feat_map[idx],
            labels[idx],
            extras["det_features"][rois],
            labels[roi_view],
            position[roi_view],
            mask[idx],
        )

    def _reid_alignment(self, extras, task, domain) -> Dict[str, torch.Tensor]:
        """
        Re-ID IAM on the foreground RoIs of re-ID views: RoI-aligned maps (image level) and the
        *direction* of the NAE embedding (instance level), the re-ID feature OIM and the search
        match on. Its norm is the detection confidence (NAE), so feeding the raw embedding would let
        the adversarial gradient push detection scores; through the normalisation the gradient has
        no radial component.
        """
        sel = extras["is_fg"] & (task[extras["image_index"]] == 1)
        n = int(sel.sum())
        dom = domain[extras["image_index"][sel]]
        terms = self.iam_reid(
            extras["roi_maps"][sel],
            dom,
            F.normalize(extras["reid_features"][sel], dim=1),
            dom,
            torch.arange(n, device=dom.device),
        )
        out = {}
        self._add_adv(out, "reid", terms)
        return out

    @staticmethod
    def _matched_persons(extras, view_of_image, ssl_images):
        """
        The persons of the ssl images seen in both views 0 and 1, on this rank.

        ``h`` of a person in a view is the mean re-ID feature of its foreground RoIs there. Persons
        are keyed by (image, identity); RoIs without an identity (pid < 0) never form a person.

        Returns:
            h1, h2: (K, D) features of the K matched persons in views 0 and 1.
            image: (K,) int64 index into ``ssl_images`` of each person's image.
        """
        feats, pids, view_index = extras["reid_features"], extras["pids"], extras["image_index"]
        num_views = int(view_index.max()) + 1 if len(view_index) else 0
        side = torch.full((num_views,), -1, dtype=torch.int64, device=feats.device)
        image = torch.full_like(side, -1)
        for i, b in enumerate(ssl_images):
            if len(view_of_image[b]) >= 2:
                v0, v1 = view_of_image[b][:2]
                side[v0], side[v1] = 0, 1
                image[v0], image[v1] = i, i
        rows = extras["is_fg"] & (pids >= 0) & (side[view_index] >= 0)
        empty = feats.new_zeros((0, feats.shape[1]))
        if not rows.any():
            return empty, empty, torch.zeros(0, dtype=torch.int64, device=feats.device)
        keys = torch.stack([side[view_index[rows]], image[view_index[rows]], pids[rows]])  # 3, R
        groups, inv = torch.unique(keys, dim=1, return_inverse=True)
        sums = feats.new_zeros((groups.shape[1], feats.shape[1])).index_add_(0, inv, feats[rows])
        means = sums / torch.bincount(inv, minlength=groups.shape[1]).clamp_min(1)[:, None].to(feats.dtype)
        g0 = (groups[0] == 0).nonzero(as_tuple=True)[0]
        g1 = (groups[0] == 1).nonzero(as_tuple=True)[0]
        # (image, pid) -> one id per person; match_by_identity pairs equal ids across the views.
        person = torch.unique(groups[1:], dim=1, return_inverse=True)[1]
        i0, i1 = match_by_identity(person[g0], person[g1])
        return means[g0[i0]], means[g1[i1]], groups[1][g0[i0]]

    def _consistency(self, extras, view_of_image, ssl_images) -> Tuple[torch.Tensor, Dict[str, int]]:
        """
        L_con (Eq. 5-6) over the persons matched between views 0 and 1 of the ssl images of the
        whole global batch: the matched features of every rank are gathered (differentiably), so
        the predictor's BatchNorm sees all of them and a rank with a single matched person still
        contributes. Every rank computes the same loss; see :func:`all_gather_rows` for why DDP's
        mean of the gradients is then the gradient of this one loss.

        Returns:
            the loss, and counts of this rank: ``images`` (ssl images), ``contributing`` (those
            with a person in the loss) and ``pairs`` (matched persons of the global batch).
        """
        zero = sum(p.sum() for p in self.ssl_predictor.parameters()) * 0.0 + extras["reid_features"].sum() * 0.0
        h1, h2, image = self._matched_persons(extras, view_of_image, ssl_images)
        pairs = all_gather_rows(torch.stack([h1, h2], dim=1))  # (K_global, 2, D); every rank calls it
        stats = {"images": len(ssl_images), "contributing": int(torch.unique(image).numel()), "pairs": len(pairs)}
        if len(pairs) < self._min_pairs:  # BatchNorm needs two rows; the global count is the same on every rank
            return zero, dict(stats, contributing=0)
        h1, h2 = pairs[:, 0], pairs[:, 1]
        return symmetric_consistency_loss(h1, self.ssl_predictor(h1), h2, self.ssl_predictor(h2)) + zero, stats

    @property
    def _min_pairs(self) -> int:
        has_bn = any(isinstance(m, torch.nn.modules.batchnorm._BatchNorm) for m in self.ssl_predictor.modules())
        return 2 if has_bn else 1
