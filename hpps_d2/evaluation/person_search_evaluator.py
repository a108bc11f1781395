"""
``PersonSearchEvaluator``: search mAP / top-k and detection AP / recall on CUHK-SYSU, PRW and
PoseTrack21, from the outputs of :class:`~hpps_d2.modeling.meta_arch.PersonSearchRCNN` over
the inputs of :func:`~.test_mapper.build_search_test_loader`.
"""

import itertools
import logging
from collections import OrderedDict
from typing import Dict, Optional, Sequence

import numpy as np
import torch
from detectron2.config import configurable
from detectron2.data import DatasetCatalog, MetadataCatalog
from detectron2.evaluation import DatasetEvaluator
from detectron2.utils import comm
from tabulate import tabulate

from .detection_eval import evaluate_detection
from .search_galleries import (
    FULL_SET,
    best_detection_query_features,
    gallery_image_index,
    search_cuhk_sysu,
    search_posetrack21,
    search_prw,
)
from .search_protocol import TOPK, GalleryDetections, SearchResult
from .test_mapper import GALLERY_INDEX, QUERY_INDICES

__all__ = ["SEARCH_DOMAINS", "PersonSearchEvaluator"]

logger = logging.getLogger(__name__)

#: Gallery ``domain`` metadata -> protocol.
SEARCH_DOMAINS = ("cuhk_sysu", "prw", "posetrack21")
_METRICS = ("mAP",) + tuple(f"top{k}" for k in TOPK)


class PersonSearchEvaluator(DatasetEvaluator):
    """
    Evaluate person search (docs/datasets.md section 9) and gallery detection.

    ``process`` keeps, per gallery input (tag ``gallery_index``, or no tag at all), its detections
    (boxes, scores) and the embeddings of those scoring ``>= det_thresh``, keyed by ``image_id``;
    per query (tag ``query_indices``), its embedding. ``evaluate`` gathers them on the main
    process and runs the protocol of the gallery's ``domain`` metadata:

    * ``cuhk_sysu``: every gallery size (``-1`` = full set); unsuffixed keys are
      ``default_gallery_size`` (100), the others ``mAP_g50``, ..., ``mAP_full``;
    * ``prw``: unsuffixed = all other frames (``ignore_cam_id=True``), ``*_cross_cam`` = other
      cameras only (``ignore_cam_id=False``);
    * ``posetrack21``: every other image; queries never seen in the gallery are skipped.

    Returns ``{"search": {...}, "detection": {"AP", "recall", "AP_labeled", "recall_labeled"}}``
    in percent. Under class-weighted similarity (``cws``) gallery embeddings are multiplied by
    their detection score; queries never are.
    """

    @configurable
    def __init__(
        self,
        query_dataset_name: str,
        gallery_dataset_name: str,
        *,
        det_thresh: float = 0.5,
        det_eval_thresh: float = 0.01,
        cws: bool = True,
        gallery_sizes: Optional[Sequence[int]] = None,
        default_gallery_size: int = 100,
        prw_cam_modes: Sequence[bool] = (True, False),
        query_feature: str = "box",
        distributed: bool = True,
    ):
        """
        Args:
            query_dataset_name, gallery_dataset_name: registered splits.
            det_thresh: gallery detections scoring below are not searched (psdb/SeqNet: 0.5).
            det_eval_thresh: detections scoring below are not in detection AP (SeqNet: 0.01).
            cws: class-weighted similarity (NAE).
            gallery_sizes: CUHK-SYSU sizes, ``-1`` = full set; None/empty = every size of the
                query records' lists, then the full set.
            default_gallery_size: the CUHK-SYSU size reported without suffix.
            prw_cam_modes: PRW ``ignore_cam_id`` values to evaluate.
            query_feature: ``"box"`` (the query box's embedding, SeqNet/NAE) or ``"best_det"``
                (psd2's PoseTrack21 variant: the query image's detection overlapping the query
                box most; PoseTrack21 only).
            distributed: gather across ranks in ``evaluate``.
        """
        if query_feature not in ("box", "best_det"):
            raise ValueError(f"query_feature must be 'box' or 'best_det', got {query_feature!r}")
        self._query_name = query_dataset_name
        self._gallery_name = gallery_dataset_name
        self._det_thresh = float(det_thresh)
        self._det_eval_thresh = float(det_eval_thresh)
        self._cws = bool(cws)
        self._sizes = list(gallery_sizes) if gallery_sizes else None
        self._default_size = int(default_gallery_size)
        self._cam_modes = tuple(bool(m) for m in prw_cam_modes)
        self._query_feature = query_feature
        self._distributed = distributed
        self.reset()

    @classmethod
    def from_config(cls, cfg, query_dataset_name: str, gallery_dataset_name: str):
        """Options from ``cfg.TEST.PERSON_SEARCH`` and ``cfg.MODEL.NAE.CWS`` (add_hpps_config)."""
        t = cfg.TEST.PERSON_SEARCH
        return {
            "query_dataset_name": query_dataset_name,
            "gallery_dataset_name": gallery_dataset_name,
            "det_thresh": t.DET_THRESH,
            "det_eval_thresh": t.DET_EVAL_THRESH,
            "cws": cfg.MODEL.NAE.CWS,
            "gallery_sizes": list(t.GALLERY_SIZES) or None,
            "default_gallery_size": t.DEFAULT_GALLERY_SIZE,
            "prw_cam_modes": tuple(t.PRW_IGNORE_CAM_ID),
            "query_feature": t.QUERY_FEATURE,
        }

    def reset(self):
        self._gallery: Dict[str, tuple] = {}  # image_id -> (boxes, scores, kept embeddings)
        self._queries: Dict[int, np.ndarray] = {}  # query index -> (D,)

    def process(self, inputs, outputs):
        for inp, out in zip(inputs, outputs):
            if GALLERY_INDEX in inp or QUERY_INDICES not in inp:
                inst = out["instances"].to("cpu")
                scores = inst.scores.detach().numpy().astype(np.float32)
                keep = scores >= self._det_thresh  # only these are searched: keep their embeddings
                emb = None
                if inst.has("pred_embeddings"):
                    emb = inst.pred_embeddings.detach()[torch.from_numpy(keep)].numpy()
                boxes = inst.pred_boxes.tensor.detach().numpy().astype(np.float32)
                self._gallery[inp["image_id"]] = (boxes, scores, emb)
            if QUERY_INDICES in inp:
                emb = out["query_embeddings"].detach().cpu().numpy()
                indices = list(inp[QUERY_INDICES])
                if len(emb) != len(indices):
                    raise ValueError(
                        f"{inp['image_id']}: {len(indices)} queries but {len(emb)} query embeddings"
                    )
                self._queries.update(zip(indices, emb))

    def _gather(self):
        if not self._distributed or comm.get_world_size() == 1:
            return self._gallery, self._queries
        comm.synchronize()
        galleries = comm.gather(self._gallery, dst=0)
        queries = comm.gather(self._queries, dst=0)
        if not comm.is_main_process():
            return None, None
        return (
            dict(itertools.chain.from_iterable(g.items() for g in galleries)),
            dict(itertools.chain.from_iterable(q.items() for q in queries)),
        )

    def evaluate(self):
        gallery_out, query_out = self._gather()
        if gallery_out is None:
            return {}
        domain = MetadataCatalog.get(self._gallery_name).get("domain", None)
        if domain not in SEARCH_DOMAINS:
            raise ValueError(
                f"{self._gallery_name}: metadata domain {domain!r} has no search protocol; "
                f"expected one of {SEARCH_DOMAINS}"
            )
        gallery = DatasetCatalog.get(self._gallery_name)
        queries = DatasetCatalog.get(self._query_name)
        boxes, scores, embeddings = self._gallery_arrays(gallery, gallery_out)
        query_feats = self._query_features(queries, query_out)
        kept = [s >= self._det_thresh for s in scores]
        dets = GalleryDetections.from_outputs(
            [b[k] for b, k in zip(boxes, kept)],
            [s[k] for s, k in zip(scores, kept)],
            embeddings,
            det_thresh=self._det_thresh,
            cws=self._cws,
        )
        if domain == "cuhk_sysu":
            results = search_cuhk_sysu(
                queries, gallery, query_feats, dets, self._sizes_for(queries)
            )
            default = f"g{self._default_size}" if self._default_size != FULL_SET else "full"
            default = default if default in results else next(iter(results))
        elif domain == "prw":
            results = search_prw(queries, gallery, query_feats, dets, self._cam_modes)
            default = next(iter(results))
        else:
            if self._query_feature == "best_det":
                query_feats = best_detection_query_features(
                    queries,
                    gallery_image_index(gallery),
                    [b[k] for b, k in zip(boxes, kept)],
                    embeddings,
                    query_feats,
                )
            results = search_posetrack21(queries, gallery, query_feats, dets)
            default = "all"
        search = self._format_search(results, default)
        detection = OrderedDict()
        for suffix, labeled_only in (("", False), ("_labeled", True)):
            r = evaluate_detection(
                gallery, boxes, scores, self._det_eval_thresh, labeled_only=labeled_only
            )
            detection["AP" + suffix] = 100.0 * r.ap
            detection["recall" + suffix] = 100.0 * r.recall
        self._log(domain, results, detection)
        return OrderedDict([("search", search), ("detection", detection)])

    def _gallery_arrays(self, gallery, outputs):
        missing = [r["image_id"] for r in gallery if r["image_id"] not in outputs]
        if missing:
            raise RuntimeError(
                f"{self._gallery_name}: no model output for {len(missing)} of {len(gallery)} "
                f"gallery images, e.g. {missing[:5]} (was the loader built from this split?)"
            )
        boxes, scores, embeddings = [], [], []
        for r in gallery:
            b, s, e = outputs[r["image_id"]]
            if e is None:
                raise RuntimeError(
                    f"the output for gallery image {r['image_id']} has no embeddings"
                )
            boxes.append(b)
            scores.append(s)
            embeddings.append(e)
        return boxes, scores, embeddings

    def _query_features(self, queries, outputs) -> np.ndarray:
        missing = [q for q in range(len(queries)) if q not in outputs]
        if missing:
            q = missing[0]
            raise RuntimeError(
                f"{self._query_name}: no query embedding for {len(missing)} of {len(queries)} "
                f"queries, e.g. query {q} of image {queries[q]['image_id']}"
            )
        if not queries:
            return np.zeros((0, 0), dtype=np.float32)
        return np.stack([outputs[q] for q in range(len(queries))])

    def _sizes_for(self, queries):
        if self._sizes is None:
            return None
        present = set(queries[0].get("gallery_lists") or {}) if queries else set()
        unknown = [k for k in self._sizes if k != FULL_SET and k not in present]
        if unknown:
            raise ValueError(
                f"gallery sizes {unknown} have no list in {self._query_name} "
                f"(sizes present: {sorted(present)}; -1 = full set)"
            )
        return self._sizes

    @staticmethod
    def _format_search(results: Dict[str, SearchResult], default: str) -> "OrderedDict":
        out = OrderedDict()
        summaries = {name: r.summary() for name, r in results.items()}
        for m in _METRICS:
            out[m] = 100.0 * summaries[default][m]
        for name, s in summaries.items():
            if name == default and name == "all":
                continue
            for m in _METRICS:
                out[f"{m}_{name}"] = 100.0 * s[m]
        return out

    def _log(self, domain, results: Dict[str, SearchResult], detection):
        rows = []
        for name, r in results.items():
            s = r.summary()
            skipped = int((~r.valid).sum())
            rows.append(
                [name] + [f"{100 * s[m]:.2f}" for m in _METRICS] + [int(r.valid.sum()), skipped]
            )
        headers = ["gallery"] + list(_METRICS) + ["queries", "skipped"]
        logger.info(
            "Person search on %s (%s), det_thresh %.2f, cws %s:\n%s",
            self._gallery_name,
            domain,
            self._det_thresh,
            self._cws,
            tabulate(rows, headers=headers, tablefmt="pipe"),
        )
        logger.info(
            "Detection on %s (score >= %.2f): %s",
            self._gallery_name,
            self._det_eval_thresh,
            ", ".join(f"{k} {v:.2f}" for k, v in detection.items()),
        )
