"""
``ReIDEvaluator``: the crop re-ID protocol (docs/datasets.md section 10) on MSMT17 / CUHK03-NP
query and gallery splits, with the person-search model embedding each whole crop as one query box
(inputs of :func:`~.test_mapper.build_reid_test_loader`).
"""

import itertools
import logging
from collections import OrderedDict
from typing import Dict, Tuple

import numpy as np
from detectron2.data import DatasetCatalog
from detectron2.evaluation import DatasetEvaluator
from detectron2.utils import comm

from .reid_eval import evaluate_reid
from .test_mapper import REID_INDEX, REID_ROLE

__all__ = ["ReIDEvaluator"]

logger = logging.getLogger(__name__)

_RANKS = (1, 5, 10)


class ReIDEvaluator(DatasetEvaluator):
    """
    ``process`` keeps the embedding of every crop (``query_embeddings[0]``) by
    ``(reid_role, reid_index)``; ``evaluate`` gathers them on the main process and returns
    ``{"reid": {"mAP", "rank1", "rank5", "rank10"}}`` in percent. Same-pid same-camera gallery
    entries are removed per query; queries without a true match are skipped.
    """

    def __init__(self, query_dataset_name: str, gallery_dataset_name: str, distributed=True):
        self._names = {"query": query_dataset_name, "gallery": gallery_dataset_name}
        self._distributed = distributed
        self.reset()

    def reset(self):
        self._embeddings: Dict[Tuple[str, int], np.ndarray] = {}

    def process(self, inputs, outputs):
        for inp, out in zip(inputs, outputs):
            if REID_ROLE not in inp:
                raise KeyError(
                    f"{inp.get('image_id')}: input without '{REID_ROLE}'; "
                    "build the loader with build_reid_test_loader"
                )
            emb = out["query_embeddings"].detach().cpu().numpy()
            self._embeddings[(inp[REID_ROLE], int(inp[REID_INDEX]))] = emb[0]

    def _split(self, role, embeddings):
        records = DatasetCatalog.get(self._names[role])
        missing = [i for i in range(len(records)) if (role, i) not in embeddings]
        if missing:
            raise RuntimeError(
                f"{self._names[role]}: no embedding for {len(missing)} of {len(records)} crops, "
                f"e.g. {records[missing[0]].get('image_id')}"
            )
        feats = np.stack([embeddings[(role, i)] for i in range(len(records))]) if records else None
        pids = np.array([r["person_id"] for r in records], dtype=np.int64)
        cams = np.array([r["camera_id"] for r in records], dtype=np.int64)
        return feats, pids, cams

    def evaluate(self):
        embeddings = self._embeddings
        if self._distributed and comm.get_world_size() > 1:
            comm.synchronize()
            parts = comm.gather(self._embeddings, dst=0)
            if not comm.is_main_process():
                return {}
            embeddings = dict(itertools.chain.from_iterable(p.items() for p in parts))
        qf, qp, qc = self._split("query", embeddings)
        gf, gp, gc = self._split("gallery", embeddings)
        if qf is None or gf is None:
            raise RuntimeError(f"empty re-ID split: {self._names}")
        result = evaluate_reid(qf, gf, qp, gp, qc, gc)
        summary = result.summary(_RANKS)
        logger.info(
            "Re-ID on %s -> %s: %d of %d queries with a true match; %s",
            self._names["query"],
            self._names["gallery"],
            int(result.valid.sum()),
            len(qf),
            ", ".join(f"{k} {100 * v:.2f}" for k, v in summary.items()),
        )
        return OrderedDict([("reid", OrderedDict((k, 100.0 * v) for k, v in summary.items()))])
