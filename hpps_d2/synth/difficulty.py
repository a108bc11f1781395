"""
How hard a search split is for a hand-made re-ID feature: colour histograms of the ground-truth
boxes, ranked by the split's own protocol. A calibration instrument for the synthetic world
(docs/synthetic_world.md, "Calibration"): no training, seconds per split, so world knobs can be
compared before any model is fine-tuned on them.

The feature (ours, in the spirit of the hand-crafted colour baselines of early re-ID): HSV
histograms (8 hue x 4 saturation x 4 value bins) of the upper and the lower half of each box,
each normalised to sum 1, concatenated and L2-normalised. Every labeled and unlabeled gallery box
is a "detection" with score 1, so only re-ID is measured (detection is perfect); queries use their
query box. Ranking and metrics are :func:`hpps_d2.evaluation.search_galleries.search_prw`.
"""
from typing import Dict, Sequence

import cv2
import numpy as np

from ..data.image_io import read_image
from ..evaluation.search_galleries import search_prw
from ..evaluation.search_protocol import GalleryDetections

__all__ = ["colour_histogram", "histogram_search"]

#: (hue, saturation, value) bins per half box.
BINS = (8, 4, 4)


def colour_histogram(image: np.ndarray, box: Sequence[float]) -> np.ndarray:
    """
    Args:
        image: (H, W, 3) uint8 RGB.
        box: XYXY in image pixels; clipped to the image.

    Returns:
        (2 * prod(BINS),) float64, L2 norm 1 (zeros for an empty box).
    """
    h, w = image.shape[:2]
    x0, y0, x1, y1 = (int(round(float(v))) for v in box)
    x0, y0, x1, y1 = max(0, x0), max(0, y0), min(w, x1), min(h, y1)
    size = 2 * int(np.prod(BINS))
    if x1 <= x0 or y1 - y0 < 2:
        return np.zeros(size)
    crop = np.ascontiguousarray(image[y0:y1, x0:x1])
    half = crop.shape[0] // 2
    parts = []
    for part in (crop[:half], crop[half:]):
        hsv = cv2.cvtColor(np.ascontiguousarray(part), cv2.COLOR_RGB2HSV)
        hist = cv2.calcHist([hsv], [0, 1, 2], None, list(BINS), [0, 180, 0, 256, 0, 256]).ravel()
        parts.append(hist / max(float(hist.sum()), 1e-12))
    f = np.concatenate(parts).astype(np.float64)
    return f / max(float(np.linalg.norm(f)), 1e-12)


def histogram_search(query_records: Sequence[dict], gallery_records: Sequence[dict]) -> Dict[str, Dict[str, float]]:
    """
    PRW-protocol search with :func:`colour_histogram` features on ground-truth boxes.

    Args:
        query_records, gallery_records: a PRW-style query / gallery split (``load_prw``,
            ``prw_val_*``).

    Returns:
        ``{"all": {"mAP", "top1", ...}, "cross_cam": {...}}`` in percent.
    """
    boxes, scores, feats = [], [], []
    for r in gallery_records:
        image = read_image(r, "RGB")
        b = np.array([a["bbox"] for a in r["annotations"]], dtype=np.float64).reshape(-1, 4)
        boxes.append(b)
        scores.append(np.ones(len(b)))
        feats.append(np.stack([colour_histogram(image, x) for x in b]) if len(b) else np.zeros((0, 2 * int(np.prod(BINS)))))
    queries = np.stack([colour_histogram(read_image(r, "RGB"), r["query"]["bbox"]) for r in query_records])
    results = search_prw(query_records, gallery_records, queries, GalleryDetections.from_outputs(boxes, scores, feats))
    return {mode: {k: 100.0 * v for k, v in res.summary().items()} for mode, res in results.items()}
