import numpy as np
import pytest

from hpps_d2.evaluation.reid_eval import evaluate_reid, evaluate_reid_distmat
from tests.evaluation import oracle


def test_hand_case():
    # query 0: pid 1, camera 0. Gallery by distance: a same-camera match (junk, removed), pid 2,
    # a true match, a junk match, pid 3. Kept: [pid 2, match, pid 3] -> first match at rank 2.
    # query 1: pid 5 appears nowhere -> skipped. query 2: pid 3, camera 1: its only pid-3 entry
    # is on camera 1 too (junk) -> skipped as well. query 3: pid 2, camera 0: nothing removed,
    # the pid-2 entry is second -> rank 2, AP 1/2.
    dist = np.array([[0.1, 0.2, 0.3, 0.4, 0.5]] * 4)
    g_pids = np.array([1, 2, 1, 1, 3])
    g_cams = np.array([0, 1, 1, 0, 1])
    r = evaluate_reid_distmat(dist, [1, 5, 3, 2], g_pids, [0, 0, 1, 0], g_cams)
    assert r.valid.tolist() == [True, False, False, True]
    assert r.first_rank.tolist() == [2, 0, 0, 2]
    assert r.ap.tolist() == [0.5, 0.0, 0.0, 0.5]
    assert r.summary() == {"mAP": 0.5, "rank1": 0.0, "rank5": 1.0, "rank10": 1.0}
    # the same-camera entries really are removed: without cameras, query 0 ranks first
    r = evaluate_reid_distmat(dist[:1], [1], g_pids, [9], g_cams)
    assert r.first_rank.tolist() == [1] and r.ap[0] == pytest.approx((1 + 2 / 3 + 3 / 4) / 3)


def test_two_matches_ap():
    # kept ranking: match, other, match -> AP = (1/1 + 2/3) / 2
    r = evaluate_reid_distmat([[0.3, 0.1, 0.2]], [4], [4, 4, 0], [0], [1, 1, 1])
    assert r.first_rank.tolist() == [1]
    assert r.ap[0] == pytest.approx((1 + 2 / 3) / 2)


@pytest.mark.parametrize("seed", range(20))
def test_random_against_oracle(seed):
    rng = np.random.default_rng(seed)
    nq, ng = int(rng.integers(1, 25)), int(rng.integers(1, 60))
    q_pids, g_pids = rng.integers(0, 6, nq), rng.integers(0, 6, ng)
    q_cams, g_cams = rng.integers(0, 3, nq), rng.integers(0, 3, ng)
    # odd seeds: integer distances, so ties (ordered by gallery index) are everywhere
    dist = rng.integers(0, 5, (nq, ng)).astype(float) if seed % 2 else rng.random((nq, ng))
    r = evaluate_reid_distmat(
        dist, q_pids, g_pids, q_cams, g_cams, max_elements=int(rng.integers(1, 300))
    )
    mAP, cmc, num_valid, per_query = oracle.reid(dist, q_pids, g_pids, q_cams, g_cams)
    assert int(r.valid.sum()) == num_valid
    for ap, ref, valid in zip(r.ap, per_query, r.valid):
        assert (ref is None) == (not valid)
        if ref is not None:
            assert ap == pytest.approx(ref, abs=1e-12)
    s = r.summary()
    assert s["mAP"] == pytest.approx(mAP, abs=1e-12)
    assert [s[f"rank{k}"] for k in (1, 5, 10)] == pytest.approx([cmc[k] for k in (1, 5, 10)])


def test_features_rank_by_descending_similarity():
    rng = np.random.default_rng(0)
    qf = rng.standard_normal((6, 8)).astype(np.float32)
    gf = rng.standard_normal((30, 8)).astype(np.float32)
    q_pids, g_pids = rng.integers(0, 3, 6), rng.integers(0, 3, 30)
    q_cams, g_cams = rng.integers(0, 2, 6), rng.integers(0, 2, 30)
    a = evaluate_reid(qf, gf, q_pids, g_pids, q_cams, g_cams, max_elements=40)
    b = evaluate_reid_distmat(-(qf @ gf.T), q_pids, g_pids, q_cams, g_cams)
    assert np.array_equal(a.ap, b.ap) and np.array_equal(a.first_rank, b.first_rank)
