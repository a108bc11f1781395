"""
The gathered search path (hpps_d2/evaluation/gathered_search.py) against the one-matrix path and
the per-query oracle, and the cost rule that chooses between them.
"""

import functools

import numpy as np
import pytest

from hpps_d2.evaluation import gathered_search, search_galleries
from hpps_d2.evaluation.gathered_search import choose_path, gather_similarities, path_costs
from hpps_d2.evaluation.ranking import Csr
from hpps_d2.evaluation.search_galleries import (
    cuhk_sysu_plans,
    gallery_image_index,
    prw_plans,
    search_cuhk_sysu,
)
from hpps_d2.evaluation.search_protocol import (
    GalleryDetections,
    SearchPlan,
    SearchTargets,
    run_search,
)
from tests.evaluation import oracle
from tests.evaluation import test_search_protocol as base
from tests.evaluation.synthetic import make_world

assert_same = base.assert_same


def assert_paths_equal(a, b, where=""):
    """Two runs agree query by query: AP within 1e-9, top-k, count_tp, count_gt, validity."""
    assert list(a) == list(b)
    for name in a:
        ra, rb = a[name], b[name]
        assert np.abs(ra.ap - rb.ap).max(initial=0) < 1e-9, f"{where} {name} AP"
        assert np.array_equal(ra.hits, rb.hits), f"{where} {name} top-k"
        assert np.array_equal(ra.count_tp, rb.count_tp), f"{where} {name} count_tp"
        assert np.array_equal(ra.count_gt, rb.count_gt), f"{where} {name} count_gt"
        assert np.array_equal(ra.valid, rb.valid), f"{where} {name} valid"
        for key, value in ra.summary().items():
            assert abs(value - rb.summary()[key]) < 1e-9, f"{where} {name} {key}"


def both_paths(qf, gallery, targets, plans, **kw):
    runs = {path: run_search(qf, gallery, targets, plans, path=path, **kw) for path in PATHS}
    for name, result in runs["gathered"].items():
        plan = next(p for p in plans if p.name == name)
        assert result.path == ("gathered" if plan.include_images is not None else "matrix")
    assert all(r.path == "matrix" for r in runs["matrix"].values())
    return runs


PATHS = ("matrix", "gathered")


# ------------------------------------------------------------------------------------------- #
# The synthetic worlds of tests/evaluation (the quirks of the real TestG files included)
# ------------------------------------------------------------------------------------------- #
@pytest.mark.parametrize("seed", range(8))
def test_worlds_both_paths_match_oracle(seed):
    dtype = np.float32 if seed % 4 == 3 else np.float64
    w = make_world(seed, noise=[0.2, 0.5, 0.9][seed % 3], dtype=dtype, list_sizes=(5, 10, 50))
    det_thresh = [0.0, 0.3, 0.5][seed % 3]
    cws = seed % 2 == 1
    dets = oracle.kept_detections(w.boxes, w.scores, w.features, det_thresh, cws)
    gallery = GalleryDetections.from_outputs(w.boxes, w.scores, w.features, det_thresh, cws)
    targets, plans = cuhk_sysu_plans(w.queries, gallery_image_index(w.gallery), [5, 10, 50, -1])
    max_elements = [1 << 24, 1, 700][seed % 3]  # one chunk, one query per chunk, a few
    runs = both_paths(w.query_features, gallery, targets, plans, max_elements=max_elements)
    for size, name in ((5, "g5"), (10, "g10"), (50, "g50"), (-1, "full")):
        ref = oracle.cuhk_sysu(w.queries, w.gallery, w.query_features, dets, size)
        for path in PATHS:
            assert_same(runs[path][name], ref, f"seed {seed} {path} {name}")
    assert_paths_equal(runs["matrix"], runs["gathered"], f"seed {seed}")


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize(
    "case",
    [
        "test_cuhk_duplicated_entry_counts_twice_scores_once",
        "test_cuhk_query_image_in_its_own_list_and_full_set",
        "test_cuhk_no_detection_in_target_image_and_empty_image",
        "test_chunking_and_ties",
    ],
)
def test_hand_cases_on_both_paths(monkeypatch, path, case):
    """The hand-computed CUHK-SYSU cases of test_search_protocol.py, with the path forced."""
    monkeypatch.setattr(base, "search_cuhk_sysu", functools.partial(search_cuhk_sysu, path=path))
    monkeypatch.setattr(base, "run_search", functools.partial(run_search, path=path))
    getattr(base, case)()


# ------------------------------------------------------------------------------------------- #
# A random CUHK-SYSU-style protocol with every edge case
# ------------------------------------------------------------------------------------------- #
def _scene(i, boxes, pids):
    annos = [
        {"bbox": list(map(float, b)), "bbox_mode": 0, "category_id": 0, "person_id": int(p)}
        for b, p in zip(boxes, pids)
    ]
    return {"file_name": f"s{i}.jpg", "image_id": f"s{i}.jpg", "height": 300, "width": 400,
            "annotations": annos}


def cuhk_protocol(seed, num_images=120, num_queries=40, sizes=(3, 10, 30, 50), dim=4, ties=True):
    """
    Gallery lists of several sizes with: images without detections, positives never detected,
    lists whose images hold no detection at all, empty lists, repeated entries, the query image
    in its own list (as a positive or not), query images missing from the gallery, and (with
    ``ties``) embeddings quantised so that many similarities tie exactly.
    """
    rng = np.random.default_rng(seed)
    gallery, boxes, feats, scores, persons = [], [], [], [], []
    for i in range(num_images):
        n = int(rng.integers(0, 5))
        xy = rng.uniform(0, 300, (n, 2))
        gt = np.c_[xy, xy + rng.uniform(10, 80, (n, 2))]
        gallery.append(_scene(i, gt, np.arange(n) + 10 * i))
        persons.append(gt)
        found = rng.random(n) < 0.8
        nfp = int(rng.poisson(1.0)) if rng.random() < 0.8 else 0
        fp = rng.uniform(0, 300, (nfp, 2))
        det = np.r_[gt[found] + rng.normal(0, 2, (int(found.sum()), 4)), np.c_[fp, fp + 40]]
        f = rng.standard_normal((len(det), dim))
        if ties:
            f = np.round(f * 2) / 2  # multiples of 1/2 with unit query entries: exact sums
        boxes.append(det)
        feats.append(f)
        scores.append(np.round(rng.uniform(0.2, 1.0, len(det)) * 4) / 4)
    no_dets = [i for i in range(num_images) if len(boxes[i]) == 0]
    queries = []
    for q in range(num_queries):
        own = int(rng.integers(num_images))
        image_id = f"s{own}.jpg" if q % 9 else f"missing{q}.jpg"  # not in the gallery
        lists = {}
        for k in sizes:
            kind = rng.random()
            if q % 13 == 5 and k == sizes[0]:
                images = []  # an empty gallery
            elif kind < 0.1 and len(no_dets) >= 2:
                images = list(rng.choice(no_dets, min(k, len(no_dets)), replace=False))
            else:
                images = list(rng.choice(num_images, min(k, num_images), replace=False))
            if images and rng.random() < 0.3:
                images[-1] = own  # the query image in its own list
            if images and rng.random() < 0.3:
                images.append(images[0])  # a repeated entry
            pos_index, pos_boxes = [], []
            for j, img in enumerate(images):
                if len(persons[img]) and rng.random() < 0.25:
                    pos_index.append(j)
                    pos_boxes.append(persons[img][int(rng.integers(len(persons[img])))])
            lists[k] = {
                "images": np.asarray(images, dtype=np.int32),
                "pos_index": np.asarray(pos_index, dtype=np.int32),
                "pos_boxes": np.asarray(pos_boxes, dtype=np.float32).reshape(-1, 4),
            }
        queries.append({"file_name": image_id, "image_id": image_id, "gallery_lists": lists})
    qf = rng.standard_normal((num_queries, dim))
    if ties:
        qf = np.round(qf)
    return gallery, queries, boxes, scores, feats, qf


@pytest.mark.parametrize("seed", range(6))
def test_random_protocol_edge_cases(seed):
    ties = seed % 2 == 0
    sizes = (3, 10, 30, 50)
    gallery_recs, queries, boxes, scores, feats, qf = cuhk_protocol(seed, ties=ties)
    det_thresh, cws = [0.25, 0.5, 0.0][seed % 3], seed % 4 == 1
    dets = oracle.kept_detections(boxes, scores, feats, det_thresh, cws)
    gallery = GalleryDetections.from_outputs(boxes, scores, feats, det_thresh, cws)
    targets, plans = cuhk_sysu_plans(queries, gallery_image_index(gallery_recs), [*sizes, -1])
    runs = both_paths(qf, gallery, targets, plans, max_elements=[1 << 24, 1, 333][seed % 3])
    for k in (*sizes, -1):
        name = "full" if k == -1 else f"g{k}"
        ref = oracle.cuhk_sysu(queries, gallery_recs, qf, dets, k)
        for path in PATHS:
            assert_same(runs[path][name], ref, f"seed {seed} {path} {name}")
    assert_paths_equal(runs["matrix"], runs["gathered"], f"seed {seed}")
    g3 = runs["gathered"]["g3"]
    assert not g3.valid.all()  # empty galleries / galleries without positives are skipped
    assert (g3.valid & (g3.count_tp == 0)).any() or (runs["gathered"]["g10"].count_tp == 0).any()


@pytest.mark.parametrize("seed", [0, 1])
def test_many_true_positives_binary_search(monkeypatch, seed):
    """Rows with more true positives than comparison passes count n_ge in sorted rows."""
    monkeypatch.setattr(gathered_search, "_MAX_COMPARE_PASSES", 0)
    gallery_recs, queries, boxes, scores, feats, qf = cuhk_protocol(seed, ties=seed == 0)
    dets = oracle.kept_detections(boxes, scores, feats, 0.25, False)
    gallery = GalleryDetections.from_outputs(boxes, scores, feats, 0.25, False)
    targets, plans = cuhk_sysu_plans(queries, gallery_image_index(gallery_recs), [10, 50])
    res = run_search(qf, gallery, targets, plans, path="gathered", max_elements=500)
    for k in (10, 50):
        assert_same(res[f"g{k}"], oracle.cuhk_sysu(queries, gallery_recs, qf, dets, k), k)


def test_random_protocol_is_not_trivial():
    """The random protocol does exercise ties, partial recall and no-detection galleries."""
    gallery_recs, queries, boxes, scores, feats, qf = cuhk_protocol(0)
    gallery = GalleryDetections.from_outputs(boxes, scores, feats, 0.25, False)
    targets, plans = cuhk_sysu_plans(queries, gallery_image_index(gallery_recs), [30])
    res = run_search(qf, gallery, targets, plans, path="gathered")["g30"]
    assert (res.count_tp < res.count_gt).any() and (res.count_tp > 0).any()
    assert 0 < res.hits[:, 0].mean() < 1
    sims = np.concatenate([f for f in feats if len(f)]) @ qf[0]
    assert len(np.unique(sims)) < len(sims) / 2  # many exact ties


def test_degenerate_inputs_gathered():
    gallery_recs, queries, boxes, scores, feats, qf = cuhk_protocol(3)
    index = gallery_image_index(gallery_recs)
    # no query
    targets, plans = cuhk_sysu_plans([], index, [10])
    res = run_search(np.zeros((0, 4)), GalleryDetections.from_outputs(boxes, scores, feats),
                     targets, plans, path="gathered")
    assert res["g10"].ap.shape == (0,) and res["g10"].path == "gathered"
    # no detection anywhere
    empty = GalleryDetections.from_outputs(
        [np.zeros((0, 4))] * len(boxes), [np.zeros(0)] * len(boxes),
        [np.zeros((0, 4))] * len(boxes),
    )
    targets, plans = cuhk_sysu_plans(queries, index, [10, 50])
    runs = both_paths(qf, empty, targets, plans)
    assert_paths_equal(runs["matrix"], runs["gathered"])
    assert (runs["gathered"]["g10"].ap == 0).all() and not runs["gathered"]["g10"].hits.any()
    with pytest.raises(ValueError, match="differ in D"):
        run_search(np.ones((len(queries), 5)), GalleryDetections.from_outputs(boxes, scores, feats),
                   targets, plans, path="gathered")
    with pytest.raises(ValueError, match="search path"):
        run_search(qf, empty, targets, plans, path="fast")


def test_gather_similarities_layout():
    """Values are query-major, images ascending, each image's detections in order; exact."""
    rng = np.random.default_rng(0)
    counts = np.array([2, 0, 3, 1, 4])
    offsets = np.r_[0, np.cumsum(counts)]
    feats = np.round(rng.standard_normal((offsets[-1], 3)) * 2) / 2
    qf = np.round(rng.standard_normal((4, 3)))
    images = Csr.from_lists([[4, 0], [], [1, 2, 0], [3]])
    got = gather_similarities(qf, feats, offsets, images, np.array([3, 0, 2]))
    want_rows, want_dets = [], []
    for r, q in enumerate([3, 0, 2]):
        for img in sorted(images.row(q)):
            for d in range(offsets[img], offsets[img + 1]):
                want_rows.append(r)
                want_dets.append(d)
    assert got.row.tolist() == want_rows and got.det.tolist() == want_dets
    expected = np.einsum("sd,sd->s", feats[want_dets], qf[[3, 0, 2]][want_rows])
    assert np.array_equal(got.values[: got.size], expected)
    pick = rng.permutation(got.size)
    assert np.array_equal(got.lookup(got.row[pick], got.det[pick]), expected[pick])
    with pytest.raises(ValueError, match="outside"):
        got.lookup(np.array([0]), np.array([0]))  # query 3 does not list image 0


# ------------------------------------------------------------------------------------------- #
# The cost rule
# ------------------------------------------------------------------------------------------- #
def _pool(rng, num_images, per_image, dim):
    counts = rng.poisson(per_image, num_images)
    feats = [rng.standard_normal((n, dim)).astype(np.float32) for n in counts]
    boxes = [np.tile([0.0, 0.0, 20.0, 40.0], (n, 1)) for n in counts]
    return GalleryDetections.from_outputs(boxes, [np.ones(n) for n in counts], feats)


def _list_plan(rng, num_queries, num_images, k):
    lists = [rng.choice(num_images, k, replace=False) for _ in range(num_queries)]
    empty = Csr(np.zeros(num_queries + 1, dtype=np.int64), np.zeros(0, dtype=np.int64))
    return SearchPlan(f"g{k}", np.ones(num_queries), empty, include_images=Csr.from_lists(lists))


def test_cost_rule_small_lists_gathered_full_galleries_matrix():
    rng = np.random.default_rng(0)
    num_queries, num_images, dim = 200, 3000, 128
    gallery = _pool(rng, num_images, 6, dim)
    qf = rng.standard_normal((num_queries, dim)).astype(np.float32)
    targets = SearchTargets(np.zeros(0, dtype=np.int64), np.zeros((0, 4)))
    small = [_list_plan(rng, num_queries, num_images, k) for k in (20, 50)]
    res = run_search(qf, gallery, targets, small)
    assert {r.path for r in res.values()} == {"gathered"}
    # a list of every image (PRW-like full gallery) or a large fraction: the matrix
    for k in (num_images, num_images // 2):
        res = run_search(qf, gallery, targets, [_list_plan(rng, num_queries, num_images, k)])
        assert {r.path for r in res.values()} == {"matrix"}, k
    # with an "every image but" plan in the call, the matrix is computed and shared
    complement = SearchPlan(
        "all", np.ones(num_queries), small[0].positives,
        exclude_images=Csr(np.zeros(num_queries + 1, dtype=np.int64), np.zeros(0, np.int64)),
    )
    res = run_search(qf, gallery, targets, [*small, complement])
    assert {r.path for r in res.values()} == {"matrix"}


def test_cost_rule_on_protocols():
    """PRW (every other frame) and the CUHK-SYSU full set: the matrix; tiny problems too."""
    w = make_world(2)
    gallery = GalleryDetections.from_outputs(w.boxes, w.scores, w.features, 0.0)
    index = gallery_image_index(w.gallery)
    res = search_cuhk_sysu(w.queries, w.gallery, w.query_features, gallery, sizes=[10])
    assert [r.path for r in res.values()] == ["matrix"]  # 15 x 300 entries: overheads win
    res = search_cuhk_sysu(w.queries, w.gallery, w.query_features, gallery, [10], "gathered")
    assert [r.path for r in res.values()] == ["gathered"]
    res = search_cuhk_sysu(w.queries, w.gallery, w.query_features, gallery)  # with the full set
    assert {r.path for r in res.values()} == {"matrix"}
    res = search_galleries.search_prw(w.queries, w.gallery, w.query_features, gallery)
    assert {r.path for r in res.values()} == {"matrix"}
    targets, plans, group = prw_plans(w.queries, w.gallery, index)
    forced = run_search(w.query_features, gallery, targets, plans, image_group=group,
                        path="gathered")  # complement plans cannot gather: still the matrix
    assert {r.path for r in forced.values()} == {"matrix"}


def test_choose_path():
    costs = path_costs(100, 10_000, 256, [100 * 500], [50])
    assert costs["gathered"] < costs["matrix"]
    assert choose_path(costs, has_complement=False) == "gathered"
    assert choose_path(costs, has_complement=True) == "matrix"
    assert choose_path(costs, has_complement=False, path="matrix") == "matrix"
    costs = path_costs(100, 10_000, 256, [100 * 10_000], [50])  # every detection listed
    assert choose_path(costs, has_complement=False) == "matrix"
    assert choose_path(costs, has_complement=False, path="gathered") == "gathered"
    with pytest.raises(ValueError):
        choose_path(costs, False, "cheapest")
