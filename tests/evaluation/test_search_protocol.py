"""The vectorised search protocol against the plain oracle, and hand-computed cases."""

import numpy as np
import pytest

from hpps_d2.evaluation.search_galleries import (
    cuhk_sysu_plans,
    gallery_image_index,
    search_cuhk_sysu,
    search_posetrack21,
    search_prw,
)
from hpps_d2.evaluation.search_protocol import GalleryDetections, run_search
from tests.evaluation import oracle
from tests.evaluation.synthetic import make_world


def assert_same(result, reference, where=""):
    """Per-query agreement of a SearchResult with the oracle's per-query dicts."""
    assert len(reference) == len(result.ap)
    for q, ref in enumerate(reference):
        if ref is None:
            assert not result.valid[q], f"{where} query {q}: the oracle skipped it"
            continue
        assert result.valid[q], f"{where} query {q}"
        assert result.count_gt[q] == ref["count_gt"], f"{where} query {q} count_gt"
        assert result.count_tp[q] == ref["count_tp"], f"{where} query {q} count_tp"
        assert abs(result.ap[q] - ref["ap"]) < 1e-9, f"{where} query {q} AP"
        assert result.hits[q].tolist() == ref["hits"], f"{where} query {q} top-k"
    summary = result.summary()
    for key, value in oracle.summarize(reference).items():
        assert abs(summary[key] - value) < 1e-9, f"{where} {key}"


@pytest.mark.parametrize("seed", range(12))
def test_random_worlds_match_oracle(seed):
    noise = [0.2, 0.5, 0.9][seed % 3]
    dtype = np.float32 if seed % 4 == 3 else np.float64
    w = make_world(seed, noise=noise, dtype=dtype)
    det_thresh = [0.0, 0.3, 0.5][seed % 3]
    for cws in (False, True):
        dets = oracle.kept_detections(w.boxes, w.scores, w.features, det_thresh, cws)
        gallery = GalleryDetections.from_outputs(w.boxes, w.scores, w.features, det_thresh, cws)
        cuhk = search_cuhk_sysu(w.queries, w.gallery, w.query_features, gallery)
        assert list(cuhk) == ["g10", "g50", "full"]
        for size, name in ((10, "g10"), (50, "g50"), (-1, "full")):
            ref = oracle.cuhk_sysu(w.queries, w.gallery, w.query_features, dets, size)
            assert_same(cuhk[name], ref, f"seed {seed} cws {cws} {name}")
        prw = search_prw(w.queries, w.gallery, w.query_features, gallery)
        for ignore_cam_id, name in ((True, "all"), (False, "cross_cam")):
            ref = oracle.pid_search(w.queries, w.gallery, w.query_features, dets, ignore_cam_id)
            assert_same(prw[name], ref, f"seed {seed} cws {cws} {name}")
        pt21 = search_posetrack21(w.queries, w.gallery, w.query_features, gallery)
        ref = oracle.pid_search(w.queries, w.gallery, w.query_features, dets, True)
        assert_same(pt21["all"], ref, f"seed {seed} pt21")


def test_random_world_is_not_trivial():
    """The random worlds exercise partial recall, misses, skips and a spread of AP values."""
    w = make_world(1, noise=0.5)
    gallery = GalleryDetections.from_outputs(w.boxes, w.scores, w.features, 0.3, True)
    prw = search_prw(w.queries, w.gallery, w.query_features, gallery)
    cuhk = search_cuhk_sysu(w.queries, w.gallery, w.query_features, gallery)["g10"]
    assert (cuhk.count_tp < cuhk.count_gt).any() and (cuhk.count_tp > 0).any()
    assert len(np.unique(np.round(cuhk.ap, 6))) > 5
    assert 0 < cuhk.hits[:, 0].mean() < 1
    assert (prw["cross_cam"].count_gt < prw["all"].count_gt).any()


def test_chunking_and_ties():
    """Quantised embeddings give exact dot products with many ties; chunks do not matter."""
    w = make_world(5, noise=0.5, dim=4)
    feats = [np.round(f * 2) / 2 for f in w.features]  # multiples of 1/2: sums are exact
    qf = np.round(w.query_features * 2) / 2
    scores = [np.round(s * 4) / 4 for s in w.scores]
    dets = oracle.kept_detections(w.boxes, scores, feats, 0.25, False)
    gallery = GalleryDetections.from_outputs(w.boxes, scores, feats, 0.25, False)
    targets, plans = cuhk_sysu_plans(w.queries, gallery_image_index(w.gallery), [10, 50, -1])
    full = run_search(qf, gallery, targets, plans)
    tiny = run_search(qf, gallery, targets, plans, max_elements=1)
    for name, size in (("g10", 10), ("g50", 50), ("full", -1)):
        ref = oracle.cuhk_sysu(w.queries, w.gallery, qf, dets, size)
        assert_same(full[name], ref, name)
        assert np.array_equal(full[name].ap, tiny[name].ap)
        assert np.array_equal(full[name].hits, tiny[name].hits)


# ------------------------------------------------------------------------------------------- #
# Hand-built cases with known numbers
# ------------------------------------------------------------------------------------------- #
B = [10.0, 10.0, 50.0, 110.0]  # the person (pid 7) in frame 1
A = [300.0, 10.0, 340.0, 110.0]  # the person in the query frame 0
FAR = [200.0, 10.0, 240.0, 110.0]


def feat(s):
    """A unit 3-vector whose dot product with [1, 0, 0] is exactly s."""
    return [s, float(np.sqrt(1 - s * s)), 0.0]


def scene(i, cam, persons):
    annos = [
        {"bbox": list(b), "bbox_mode": 0, "category_id": 0, "person_id": p, "iscrowd": 0}
        for b, p in persons
    ]
    return {
        "file_name": f"f{i}.jpg",
        "image_id": f"f{i}.jpg",
        "height": 400,
        "width": 600,
        "annotations": annos,
        "camera_id": cam,
    }


def hand_world():
    """
    Frame 0 (cam 1): the query frame, person 7 at A; a detection of another person (sim 0.99).
    Frame 1 (cam 2): person 7 at B; detections at B (sim 0.9) and FAR (sim 0.95).
    Frame 2 (cam 1): person 7, never detected.
    Frame 3 (cam 3): nobody; one detection (sim 0.5).
    Frame 4 (cam 3): empty frame, no detection.
    """
    gallery = [
        scene(0, 1, [(A, 7), (FAR, -1)]),
        scene(1, 2, [(B, 7)]),
        scene(2, 1, [([20.0, 20.0, 60.0, 120.0], 7)]),
        scene(3, 3, []),
        scene(4, 3, []),
    ]
    boxes = [np.array([FAR]), np.array([B, FAR]), np.zeros((0, 4)), np.array([B]), np.zeros((0, 4))]
    feats = [
        np.array([feat(0.99)]),
        np.array([feat(0.9), feat(0.95)]),
        np.zeros((0, 3)),
        np.array([feat(0.5)]),
        np.zeros((0, 3)),
    ]
    scores = [np.ones(len(b)) for b in boxes]
    query = {
        "file_name": "f0.jpg",
        "image_id": "f0.jpg",
        "height": 400,
        "width": 600,
        "query": {"bbox": A, "person_id": 7},
        "camera_id": 1,
        "gallery_lists": {},
    }
    return gallery, query, boxes, scores, feats


def run(searcher, gallery, queries, boxes, scores, feats, **kw):
    g = GalleryDetections.from_outputs(boxes, scores, feats, det_thresh=0.5, cws=False)
    qf = np.tile([1.0, 0.0, 0.0], (len(queries), 1))
    return searcher(queries, gallery, qf, g, **kw)


def test_prw_hand_case():
    gallery, query, boxes, scores, feats = hand_world()
    res = run(search_prw, gallery, [query], boxes, scores, feats)
    # all other frames: count_gt = 2 (frames 1, 2); ranking 0.95 (no), 0.9 (TP), 0.5 (no)
    # sklearn AP = 1/2, recall = 1/2 -> 0.25; the query frame's 0.99 is not ranked
    assert res["all"].count_gt.tolist() == [2] and res["all"].count_tp.tolist() == [1]
    assert res["all"].ap[0] == pytest.approx(0.25)
    assert res["all"].hits[0].tolist() == [False, True, True]
    # other cameras only: frame 2 (cam 1, the query's) leaves candidates and count_gt
    assert res["cross_cam"].count_gt.tolist() == [1]
    assert res["cross_cam"].ap[0] == pytest.approx(0.5)


def test_prw_pid_labeled_twice_takes_first_box():
    gallery, query, boxes, scores, feats = hand_world()
    gallery[1]["annotations"].append(dict(gallery[1]["annotations"][0], bbox=FAR))
    # the FAR detection (sim 0.95) sits on the second box of pid 7: not a TP
    res = run(search_prw, gallery, [query], boxes, scores, feats)
    assert res["all"].ap[0] == pytest.approx(0.25)
    gallery[1]["annotations"].reverse()  # FAR first: now it is the TP, ranked first
    res = run(search_prw, gallery, [query], boxes, scores, feats)
    assert res["all"].ap[0] == pytest.approx(0.5) and res["all"].hits[0, 0]


def test_zero_detections_anywhere_and_thresholding():
    gallery, query, boxes, scores, feats = hand_world()
    low = [s * 0.4 for s in scores]  # nothing reaches det_thresh 0.5
    res = run(search_prw, gallery, [query], boxes, low, feats)["all"]
    assert res.valid[0] and res.count_gt[0] == 2 and res.count_tp[0] == 0
    assert res.ap[0] == 0.0 and not res.hits[0].any()


def test_posetrack21_skips_queries_not_in_gallery():
    gallery, query, boxes, scores, feats = hand_world()
    lonely = dict(query, query={"bbox": A, "person_id": 99})
    res = run(search_posetrack21, gallery, [query, lonely], boxes, scores, feats)["all"]
    assert res.valid.tolist() == [True, False]
    assert res.summary()["mAP"] == pytest.approx(0.25)


def cuhk_lists(images, pos_index, pos_boxes):
    return {
        "images": np.array(images, np.int32),
        "pos_index": np.array(pos_index, np.int32),
        "pos_boxes": np.array(pos_boxes, np.float32).reshape(-1, 4),
    }


def test_cuhk_duplicated_entry_counts_twice_scores_once():
    gallery, query, boxes, scores, feats = hand_world()
    query["gallery_lists"] = {
        50: cuhk_lists([1, 3], [0], [B]),
        100: cuhk_lists([1, 1, 3], [0, 1], [B, B]),  # frame 1 listed twice (TestG100 q1250)
    }
    res = run(search_cuhk_sysu, gallery, [query], boxes, scores, feats)
    assert res["g50"].ap[0] == pytest.approx(0.5)
    # count_gt 2, one TP (psdb, without dedupe, would rank frame 1 twice and find 2 TPs)
    assert res["g100"].count_gt[0] == 2 and res["g100"].count_tp[0] == 1
    assert res["g100"].ap[0] == pytest.approx(0.25)


def test_cuhk_query_image_in_its_own_list_and_full_set():
    gallery, query, boxes, scores, feats = hand_world()
    boxes[0] = np.array([A, FAR])  # the query frame: its own box (0.99) and another person
    feats[0] = np.array([feat(0.99), feat(0.3)])
    scores[0] = np.ones(2)
    query["gallery_lists"] = {
        50: cuhk_lists([1, 3], [0], [B]),
        100: cuhk_lists([0, 1], [0, 1], [A, B]),  # the query frame, positive at its own box
    }
    res = run(search_cuhk_sysu, gallery, [query], boxes, scores, feats)
    # own list: ranking 0.99 (TP, frame 0), 0.95 (no), 0.9 (TP), 0.3 (no): AP = (1 + 2/3) / 2
    assert res["g100"].ap[0] == pytest.approx((1 + 2 / 3) / 2) and res["g100"].hits[0, 0]
    # full set = TestG50 list + frames 2, 4 as negatives; the query frame 0 is left out
    assert res["full"].count_gt[0] == 1
    assert res["full"].ap[0] == pytest.approx(0.5) and not res["full"].hits[0, 0]
    # when the TestG50 list holds the query frame, the full set scores it there
    query["gallery_lists"][50] = cuhk_lists([1, 0, 3], [0], [B])
    res = run(search_cuhk_sysu, gallery, [query], boxes, scores, feats, sizes=[-1])
    assert list(res) == ["full"]
    assert res["full"].ap[0] == pytest.approx(1 / 3)  # 0.99 (no), 0.95 (no), 0.9 (TP)


def test_cuhk_no_detection_in_target_image_and_empty_image():
    gallery, query, boxes, scores, feats = hand_world()
    query["gallery_lists"] = {50: cuhk_lists([2, 4, 1], [0, 2], [[20, 20, 60, 120], B])}
    res = run(search_cuhk_sysu, gallery, [query], boxes, scores, feats, sizes=[50])["g50"]
    # frame 2 has no detection: counted (count_gt 2), never ranked; frame 4 is empty
    assert res.count_gt[0] == 2 and res.count_tp[0] == 1
    assert res.ap[0] == pytest.approx(0.25)


def test_top_k_ties_are_pessimistic():
    gallery, query, boxes, scores, feats = hand_world()
    feats[1] = np.array([feat(0.95), feat(0.95)])  # the TP ties with a false match
    res = run(search_prw, gallery, [query], boxes, scores, feats)["all"]
    assert res.hits[0].tolist() == [False, True, True]
    assert res.ap[0] == pytest.approx(0.5 * 0.5)  # one threshold, precision 1/2


def test_degenerate_inputs():
    gallery, query, boxes, scores, feats = hand_world()
    # no query at all
    res = run(search_prw, gallery, [], boxes, scores, feats)
    assert res["all"].ap.shape == (0,) and res["all"].summary()["mAP"] == 0.0
    # no gallery detection at all (not even feature rows)
    empty = [np.zeros((0, 4))] * len(gallery)
    res = run(search_prw, gallery, [query], empty, [np.zeros(0)] * 5, [np.zeros((0, 3))] * 5)
    assert res["all"].count_gt.tolist() == [2] and res["all"].ap.tolist() == [0.0]
    with pytest.raises(ValueError, match="differ in D"):
        g = GalleryDetections.from_outputs(boxes, scores, feats)
        search_prw([query], gallery, np.ones((1, 5)), g)
