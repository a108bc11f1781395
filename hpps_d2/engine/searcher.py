"""
Person search on arbitrary images with a trained model: embed a query box, detect and embed
every person in gallery images, rank them. Used by ``tools/search_demo.py``; CPU-safe (weights are
loaded to the CPU first, as detectron2's checkpointer does).
"""
import dataclasses
import logging
import os
from typing import Iterable, List, Sequence, Tuple

import numpy as np
import torch
from detectron2.data import transforms as T
from detectron2.modeling import build_model

from ..checkpoint.checkpointer import SafeCheckpointer
from ..checkpoint.init import load_init_weights
from ..checkpoint.io import require_weights_file
from ..data.image_io import check_pixel_statistics

__all__ = ["Match", "PersonSearcher", "list_gallery_images"]

logger = logging.getLogger(__name__)

_IMAGE_EXTS = (".jpg", ".jpeg", ".png", ".bmp")


@dataclasses.dataclass
class Match:
    """The best match of the query in one gallery image."""

    name: str
    box: Tuple[float, float, float, float]  # XYXY in the gallery image
    similarity: float  # cosine similarity (times the detection score with CWS)
    score: float  # detection score


def list_gallery_images(folder: str) -> List[str]:
    """Image files directly inside ``folder``, sorted."""
    files = sorted(f for f in os.listdir(folder) if f.lower().endswith(_IMAGE_EXTS))
    if not files:
        raise FileNotFoundError(f"no images ({', '.join(_IMAGE_EXTS)}) in {folder}")
    return [os.path.join(folder, f) for f in files]


class PersonSearcher:
    """
    Args:
        cfg: a frozen config; ``MODEL.WEIGHTS`` is loaded (whole model, OIM tables left out).
            Images given to the methods are (H, W, 3) uint8 in ``cfg.INPUT.FORMAT`` (read them
            with :func:`hpps_d2.data.image_io.read_image` and that format).
    """

    def __init__(self, cfg):
        require_weights_file(cfg.MODEL.WEIGHTS)  # before the model is built
        check_pixel_statistics(cfg.INPUT.FORMAT, cfg.MODEL.PIXEL_MEAN, cfg.MODEL.PIXEL_STD)
        cfg = cfg.clone()
        cfg.defrost()
        cfg.MODEL.OIM.NUM_IDENTITIES = 0  # no lookup table at inference
        cfg.freeze()
        self.cfg = cfg
        self.model = build_model(cfg)
        self.model.eval()
        if cfg.MODEL.WEIGHTS:
            # read without running code; broken / wrong-architecture files are errors
            load_init_weights(SafeCheckpointer(self.model), cfg.MODEL.WEIGHTS, "whole")
        else:
            logger.warning("MODEL.WEIGHTS is empty: searching with a randomly initialised model")
        self.resize = T.ResizeShortestEdge(cfg.INPUT.MIN_SIZE_TEST, cfg.INPUT.MAX_SIZE_TEST)
        self.input_format = cfg.INPUT.FORMAT
        self.cws = cfg.MODEL.NAE.CWS

    def _input(self, image: np.ndarray, boxes=None) -> dict:
        """(H, W, 3) uint8 image in ``cfg.INPUT.FORMAT`` -> model input."""
        h, w = image.shape[:2]
        resized = self.resize.get_transform(image).apply_image(image)
        x = {"image": torch.as_tensor(np.ascontiguousarray(resized.transpose(2, 0, 1))), "height": h, "width": w}
        if boxes is not None:
            x["query_boxes"] = torch.as_tensor(np.asarray(boxes, dtype=np.float32).reshape(-1, 4))
        return x

    @torch.no_grad()
    def embed_query(self, image: np.ndarray, box: Sequence[float]) -> torch.Tensor:
        """(D,) L2-normalised embedding of ``box`` (XYXY) in ``image``."""
        return self.model([self._input(image, [box])])[0]["query_embeddings"][0]

    @torch.no_grad()
    def detect(self, image: np.ndarray):
        """Detections (Instances with pred_boxes, scores, pred_embeddings) in image coordinates."""
        return self.model([self._input(image)])[0]["instances"].to("cpu")

    def search(
        self,
        query: torch.Tensor,
        gallery: Iterable[Tuple[str, np.ndarray]],
        det_thresh: float = 0.5,
        topk: int = 5,
    ) -> List[Match]:
        """
        Rank gallery images by their best-matching detection.

        Args:
            query: (D,) query embedding.
            gallery: (name, image) pairs.
            det_thresh: detections scoring lower are not searched (the protocol's 0.5).

        Returns:
            the ``topk`` best matches, most similar first (at most one per gallery image).
        """
        matches = []
        for name, image in gallery:
            inst = self.detect(image)
            keep = inst.scores >= det_thresh
            if not keep.any():
                continue
            emb = inst.pred_embeddings[keep]
            scores = inst.scores[keep]
            sims = emb @ query.cpu()
            if self.cws:
                sims = sims * scores
            i = int(sims.argmax())
            box = tuple(float(v) for v in inst.pred_boxes.tensor[keep][i])
            matches.append(Match(name, box, float(sims[i]), float(scores[i])))
        matches.sort(key=lambda m: -m.similarity)
        return matches[:topk]
