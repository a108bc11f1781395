"""
Person-detection AP and recall on a person-search gallery (docs/datasets.md section 9,
"Detection metric"; SeqNet/COAT ``eval_detection``), vectorised over all images at once.

* Ground truth: every annotated gallery box (``iscrowd == 0``); with ``labeled_only`` only the
  boxes with a person id, and images without any labeled box are skipped altogether (their
  detections are not counted as false positives, as SeqNet's ``continue`` does).
* Detections with ``score >= det_thresh`` (SeqNet evaluates detection at 0.01).
* Matching, per image: the ``IoU >= 0.5`` matrix keeps, for each detection, only its largest-IoU
  ground truth and, for each ground truth, only its largest-IoU detection (first on ties, as
  ``np.argmax``); both are taken on the raw IoU. A detection is positive if it keeps a match.
* ``recall = #TP / #GT``; ``AP = average_precision(y_true, y_score) * recall`` (0 without TP).
* Ignore regions (PoseTrack21 ``eval_detection``): an unmatched detection whose IoU with an ignore
  polygon is ``> 0.1`` is dropped from the ranking (neither TP nor FP). The IoU is
  ``area(polygon & box) / area(polygon | box)``, polygon areas exact for simple polygons
  (:func:`~.geometry.polygon_box_iou`; PoseTrack21 repairs invalid polygons with shapely's
  ``buffer(0)`` instead). Records give polygons as ``"ignore_regions"``; ``iscrowd`` boxes count
  as rectangular ignore polygons too. Images without a detection add their ground truth only.
"""

from dataclasses import dataclass
from typing import List, Sequence

import numpy as np

from .geometry import aligned_iou, polygon_box_iou
from .ranking import average_precision, expand_ranges, segment_first_argmax

__all__ = ["DetectionResult", "evaluate_detection", "ignore_polygons"]


@dataclass
class DetectionResult:
    """
    Attributes:
        ap: average precision times recall, a fraction.
        recall: ``count_tp / count_gt``.
        count_gt, count_tp: ground truth and matched detections.
        num_ignored: unmatched detections dropped inside ignore regions.
    """

    ap: float
    recall: float
    count_gt: int
    count_tp: int
    num_ignored: int


def ignore_polygons(record: dict) -> List[np.ndarray]:
    """The ignore regions of a record: its polygons, then its ``iscrowd`` boxes, each (V, 2)."""
    regions = record.get("ignore_regions") or ()
    polygons = [np.asarray(p, dtype=np.float64).reshape(-1, 2) for p in regions]
    for a in record.get("annotations", ()):
        if a.get("iscrowd", 0):
            x1, y1, x2, y2 = (float(v) for v in a["bbox"])
            polygons.append(np.array([[x1, y1], [x2, y1], [x2, y2], [x1, y2]]))
    return [p for p in polygons if len(p) >= 3]


def _ground_truth(records, labeled_only):
    """(boxes (M, 4), image (M,), used (G,) images that take part)."""
    boxes, image, used = [], [], np.ones(len(records), dtype=bool)
    for i, r in enumerate(records):
        annos = [a for a in r.get("annotations", ()) if not a.get("iscrowd", 0)]
        if labeled_only:
            annos = [a for a in annos if a.get("person_id", -1) >= 0]
            used[i] = bool(annos)
        boxes.extend(a["bbox"] for a in annos)
        image.extend([i] * len(annos))
    return np.asarray(boxes, dtype=np.float64).reshape(-1, 4), np.asarray(image, np.int64), used


def evaluate_detection(
    gallery_records: Sequence[dict],
    boxes: Sequence[np.ndarray],
    scores: Sequence[np.ndarray],
    det_thresh: float = 0.01,
    iou_thresh: float = 0.5,
    labeled_only: bool = False,
    ignore_iou_thresh: float = 0.1,
) -> DetectionResult:
    """
    Args:
        gallery_records: scene records (``annotations``, optional ``ignore_regions``).
        boxes, scores: per record, (N_i, 4) XYXY detections and their (N_i,) scores.
        det_thresh: detections scoring below are dropped.
        iou_thresh: IoU of a match.
        labeled_only: ground truth = labeled boxes only (see the module docstring).
        ignore_iou_thresh: polygon IoU above which an unmatched detection is ignored.
    """
    if len(boxes) != len(gallery_records) or len(scores) != len(gallery_records):
        raise ValueError(f"got detections for {len(boxes)} images, {len(gallery_records)} records")
    gt_boxes, gt_image, used = _ground_truth(gallery_records, labeled_only)
    keep = [np.asarray(s).reshape(-1) >= det_thresh for s in scores]
    counts = np.array([int(k.sum()) if used[i] else 0 for i, k in enumerate(keep)], np.int64)
    det_boxes = [np.asarray(b, dtype=np.float64).reshape(-1, 4)[k] for b, k in zip(boxes, keep)]
    det_boxes = np.concatenate([b for b, u in zip(det_boxes, used) if u] or [np.zeros((0, 4))])
    det_scores = [np.asarray(s).reshape(-1)[k] for s, k, u in zip(scores, keep, used) if u]
    det_scores = np.concatenate(det_scores) if det_scores else np.zeros(0)
    offsets = np.r_[0, np.cumsum(counts)].astype(np.int64)

    # every (ground truth, detection) pair of one image, ground-truth major
    pair_gt, pair_det = expand_ranges(offsets[gt_image], counts[gt_image])
    iou = aligned_iou(gt_boxes[pair_gt], det_boxes[pair_det])
    best_of_gt = segment_first_argmax(iou, pair_gt, len(gt_boxes))
    by_det = np.argsort(pair_det, kind="stable")  # keeps the ground-truth order within a det
    best_of_det = segment_first_argmax(iou[by_det], pair_det[by_det], len(det_boxes))
    best_of_det = np.r_[by_det, -1][best_of_det]  # back to pair indices; -1 stays -1
    pairs = np.arange(len(iou))
    matched = (
        (iou >= iou_thresh) & (best_of_gt[pair_gt] == pairs) & (best_of_det[pair_det] == pairs)
    )
    positive = np.zeros(len(det_boxes), dtype=bool)
    positive[pair_det[matched]] = True
    count_tp = int(matched.sum())
    count_gt = len(gt_boxes)

    ignored = np.zeros(len(det_boxes), dtype=bool)
    for i in np.flatnonzero(counts):
        polygons = ignore_polygons(gallery_records[i])
        if not polygons:
            continue
        idx = np.arange(offsets[i], offsets[i + 1])
        idx = idx[~positive[idx]]
        for poly in polygons:
            lo, hi = poly.min(axis=0), poly.max(axis=0)
            b = det_boxes[idx]
            near = (b[:, 0] < hi[0]) & (b[:, 2] > lo[0]) & (b[:, 1] < hi[1]) & (b[:, 3] > lo[1])
            hit = idx[near][polygon_box_iou(poly, b[near]) > ignore_iou_thresh]
            ignored[hit] = True
    ranked = ~ignored
    recall = count_tp / count_gt if count_gt else 0.0
    ap = average_precision(positive[ranked], det_scores[ranked]) * recall if count_tp else 0.0
    return DetectionResult(float(ap), float(recall), count_gt, count_tp, int(ignored.sum()))
