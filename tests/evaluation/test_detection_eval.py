import numpy as np
import pytest

from hpps_d2.evaluation.detection_eval import evaluate_detection, ignore_polygons
from tests.evaluation import oracle
from tests.evaluation.synthetic import make_world


@pytest.mark.parametrize("seed", range(8))
def test_random_worlds_match_oracle(seed):
    w = make_world(seed, false_positives=6.0)
    for labeled_only in (False, True):
        for det_thresh in (0.01, 0.5):
            got = evaluate_detection(
                w.gallery, w.boxes, w.scores, det_thresh, labeled_only=labeled_only
            )
            ap, recall, count_gt, count_tp = oracle.detection(
                w.gallery, w.boxes, w.scores, det_thresh, labeled_only=labeled_only
            )
            assert (got.count_gt, got.count_tp) == (count_gt, count_tp)
            assert got.recall == pytest.approx(recall, abs=1e-12)
            assert got.ap == pytest.approx(ap, abs=1e-9)


def record(annos, regions=()):
    return {
        "image_id": "x",
        "annotations": [
            {"bbox": b, "bbox_mode": 0, "category_id": 0, "person_id": p, "iscrowd": c}
            for b, p, c in annos
        ],
        "ignore_regions": [list(map(list, r)) for r in regions],
    }


G1, G2 = [0.0, 0.0, 10.0, 10.0], [5.0, 0.0, 15.0, 10.0]


def hand_case(regions=()):
    """
    Image 0: G1 (labeled) and G2 (unlabeled), detections
      FP  [50, 50, 60, 60]  0.95   far from both
      dA  = G1              0.90   IoU 1 with G1, 1/3 with G2
      dB  [4, 0, 14, 10]    0.80   IoU 0.43 with G1, 0.82 with G2
      dC  = G1              0.70   IoU 1 with G1, but G1 keeps dA (first maximum)
    Image 1: one unlabeled person, one detection on it (0.6).
    """
    records = [record([(G1, 3, 0), (G2, -1, 0)], regions), record([([0, 0, 9, 9], -1, 0)])]
    boxes = [
        np.array([[50, 50, 60, 60], G1, [4, 0, 14, 10], G1], float),
        np.array([[0, 0, 9, 9]], float),
    ]
    scores = [np.array([0.95, 0.9, 0.8, 0.7]), np.array([0.6])]
    return records, boxes, scores


def test_hand_case():
    records, boxes, scores = hand_case()
    r = evaluate_detection(records, boxes, scores)
    # ranking: 0.95 F, 0.9 T, 0.8 T, 0.7 F, 0.6 T; 3 GT, 3 TP
    assert (r.count_gt, r.count_tp, r.recall) == (3, 3, 1.0)
    assert r.ap == pytest.approx((1 / 2 + 2 / 3 + 3 / 5) / 3)
    # labeled only: GT = G1; image 1 has no labeled box and is skipped altogether
    r = evaluate_detection(records, boxes, scores, labeled_only=True)
    assert (r.count_gt, r.count_tp) == (1, 1)
    assert r.ap == pytest.approx(1 / 2)  # 0.95 F, 0.9 T, 0.8 F, 0.7 F
    # score threshold
    r = evaluate_detection(records, boxes, scores, det_thresh=0.85)
    assert (r.count_gt, r.count_tp) == (3, 1) and r.ap == pytest.approx(1 / 2 * 1 / 3)


def test_ignore_regions_drop_unmatched_detections_only():
    square = [[45, 45], [65, 45], [65, 65], [45, 65]]  # holds the FP: IoU 100/400 > 0.1
    records, boxes, scores = hand_case([square, [[0, 0], [20, 0], [20, 20]]])
    r = evaluate_detection(records, boxes, scores)
    # the FP is dropped; dA, dB (matched) stay although the triangle covers them; dC (unmatched,
    # IoU with the triangle 50 / 200 > 0.1) is dropped too
    assert r.num_ignored == 2
    assert r.ap == pytest.approx(1.0)  # 0.9 T, 0.8 T, 0.6 T
    # a crowd box acts as a rectangular ignore region and is not ground truth
    records, boxes, scores = hand_case()
    records[0]["annotations"].append(
        {"bbox": [45, 45, 65, 65], "bbox_mode": 0, "category_id": 0, "person_id": -1, "iscrowd": 1}
    )
    assert len(ignore_polygons(records[0])) == 1
    r = evaluate_detection(records, boxes, scores)
    assert (r.count_gt, r.num_ignored) == (3, 1)
    assert r.ap == pytest.approx((1 + 1 + 3 / 4) / 3)  # 0.9 T, 0.8 T, 0.7 F, 0.6 T


def test_no_detection_and_no_ground_truth():
    records, boxes, scores = hand_case()
    r = evaluate_detection(records, [np.zeros((0, 4))] * 2, [np.zeros(0)] * 2)
    assert (r.ap, r.recall, r.count_gt, r.count_tp) == (0.0, 0.0, 3, 0)
    r = evaluate_detection([record([])], [np.array([[0, 0, 5, 5]], float)], [np.array([0.9])])
    assert (r.ap, r.recall, r.count_gt) == (0.0, 0.0, 0)
    with pytest.raises(ValueError, match="2 images, 1 records"):
        evaluate_detection([record([])], boxes, scores)
