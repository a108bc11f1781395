import warnings

import numpy as np
import pytest
from sklearn.metrics import average_precision_score

from hpps_d2.evaluation.geometry import (
    aligned_iou,
    pairwise_iou,
    polygon_area,
    polygon_box_intersection,
    search_iou_threshold,
)
from hpps_d2.evaluation.ranking import Csr, average_precision, count_below, segment_first_argmax
from tests.evaluation import oracle


@pytest.mark.parametrize("seed", range(30))
def test_average_precision_is_sklearn(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 60))
    y_true = rng.random(n) < rng.uniform(0.05, 0.9)
    if not y_true.any():
        y_true[int(rng.integers(n))] = True
    # half the seeds with heavy ties, half continuous
    y_score = rng.integers(0, 5, n) / 4.0 if seed % 2 else rng.random(n)
    assert average_precision(y_true, y_score) == average_precision_score(y_true, y_score)


def test_average_precision_edges():
    assert average_precision([1, 1], [0.2, 0.1]) == 1.0
    assert average_precision([0, 0], [0.2, 0.1]) == 0.0
    assert average_precision([], []) == 0.0
    # one tie group holding a positive and a negative: precision 1/2 at that threshold
    assert average_precision([1, 0], [0.5, 0.5]) == 0.5
    assert average_precision([0, 1], [0.9, 0.1]) == 0.5
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert average_precision_score([0, 0], [0.2, 0.1]) == 0.0


def test_count_below_matches_searchsorted():
    rng = np.random.default_rng(0)
    rows = np.sort(rng.integers(0, 10, (7, 25)).astype(float), axis=1)
    r = rng.integers(0, 7, 200)
    v = rng.integers(-1, 12, 200).astype(float)
    for strict, side in ((True, "left"), (False, "right")):
        expected = [np.searchsorted(rows[i], x, side=side) for i, x in zip(r, v)]
        assert count_below(rows, r, v, strict=strict).tolist() == expected
    assert count_below(np.zeros((2, 0)), [0, 1], [0.0, 1.0]).tolist() == [0, 0]


def test_segment_first_argmax():
    values = np.array([1, 3, 3, 2, 5, 0, 0])
    segments = np.array([0, 0, 0, 2, 2, 3, 3])
    assert segment_first_argmax(values, segments, 5).tolist() == [1, -1, 4, 5, -1]


def test_csr_from_pairs_and_take():
    csr = Csr.from_pairs([2, 0, 2, 0], [10, 11, 12, 13], 4)
    assert [csr.row(i).tolist() for i in range(4)] == [[11, 13], [], [10, 12], []]
    owner, values = csr.take(np.array([2, 0, 1]))
    assert owner.tolist() == [0, 0, 1, 1] and values.tolist() == [10, 12, 11, 13]


def test_iou_and_threshold():
    a = np.array([[0, 0, 10, 10]], float)
    b = np.array([[5, 0, 15, 10], [20, 20, 30, 30], [0, 0, 10, 10]], float)
    assert pairwise_iou(a, b).tolist() == [[50 / 150, 0.0, 1.0]]
    assert aligned_iou(np.zeros((1, 4)), np.zeros((1, 4))).tolist() == [0.0]  # empty union
    # a 40 x 100 box needs IoU 0.5; a 10 x 20 box only 200 / 600
    t = search_iou_threshold(np.array([[0, 0, 40, 100], [0, 0, 10, 20]], float))
    assert t.tolist() == [0.5, 200 / 600]


@pytest.mark.parametrize("seed", range(10))
def test_polygon_box_intersection_against_clipping(seed):
    rng = np.random.default_rng(seed)
    angles = np.sort(rng.uniform(0, 2 * np.pi, int(rng.integers(3, 10))))
    radii = rng.uniform(5, 40, len(angles))
    poly = np.c_[50 + radii * np.cos(angles), 50 + radii * np.sin(angles)]
    if seed % 2:
        poly = poly[::-1]  # the orientation must not matter
    xy = np.sort(rng.uniform(0, 100, (30, 2, 2)), axis=1)
    boxes = np.c_[xy[:, 0, 0], xy[:, 0, 1], xy[:, 1, 0], xy[:, 1, 1]]
    got = polygon_box_intersection(poly, boxes)
    expected = [oracle._shoelace(oracle._clip_polygon(poly, b)) for b in boxes]
    np.testing.assert_allclose(got, expected, rtol=1e-9, atol=1e-9)
    # a box covering the whole polygon gives its area
    assert polygon_box_intersection(poly, np.array([[-1e3, -1e3, 1e3, 1e3]]))[0] == pytest.approx(
        polygon_area(poly), rel=1e-12
    )


def test_polygon_concave():
    # an L shape: the unit squares (0..2 x 0..1) and (0..1 x 1..2)
    poly = np.array([[0, 0], [2, 0], [2, 1], [1, 1], [1, 2], [0, 2]], float)
    boxes = np.array([[0, 0, 2, 2], [1, 1, 2, 2], [0.5, 0.5, 1.5, 1.5], [3, 3, 4, 4]], float)
    assert polygon_box_intersection(poly, boxes).tolist() == [3.0, 0.0, 0.75, 0.0]
