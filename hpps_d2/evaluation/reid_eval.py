"""
The crop re-ID protocol of MSMT17 and CUHK03-NP (docs/datasets.md section 10; torchreid
``eval_market1501``), vectorised over queries.

For each query, the gallery is sorted by ascending distance; entries with the query's pid *and*
camera are removed (junk); a query with no true match left is skipped. With the ranks
``r_1 < r_2 < ... < r_M`` (1-based, among the kept entries) of its M true matches:
``AP = mean_i(i / r_i)`` (exact, non-interpolated) and ``CMC@k = [r_1 <= k]`` (cumulative, clipped
to 1). mAP and CMC are means over the valid queries.

The ranks come from sorted distance rows and binary searches instead of a full ``argsort``; tied
distances are ordered by gallery index (a stable sort: torchreid leaves them to ``np.argsort``).
With embeddings, the distance is the negative cosine similarity: the order of ``1 - cos`` without
the ties its rounding would create.
"""

from dataclasses import dataclass, field
from typing import Dict, Sequence

import numpy as np

from .ranking import Csr, count_below

__all__ = ["ReIDResult", "evaluate_reid", "evaluate_reid_distmat"]


@dataclass
class ReIDResult:
    """
    Attributes:
        ap: (Q,) average precision (0 for skipped queries).
        first_rank: (Q,) 1-based rank of the first true match among kept entries (0 if none).
        valid: (Q,) queries with a true match.
    """

    ap: np.ndarray
    first_rank: np.ndarray
    valid: np.ndarray = field(init=False)

    def __post_init__(self):
        self.valid = self.first_rank > 0

    def summary(self, ranks: Sequence[int] = (1, 5, 10)) -> Dict[str, float]:
        """``{"mAP", "rank1", "rank5", "rank10"}`` as fractions over the valid queries."""
        n = int(self.valid.sum())
        out = {"mAP": float(self.ap[self.valid].mean()) if n else 0.0}
        for k in ranks:
            out[f"rank{k}"] = float((self.first_rank[self.valid] <= k).mean()) if n else 0.0
        return out


def _rank_chunk(dist, q_pids, q_cams, g_pids, g_cams):
    """AP and first rank for a (C, G) block of distances."""
    num_rows = dist.shape[0]
    same = q_pids[:, None] == g_pids[None, :]
    junk = same & (q_cams[:, None] == g_cams[None, :])
    mr, mj = np.nonzero(same & ~junk)  # true matches, row-major
    srt = np.sort(dist, axis=1)
    d = dist[mr, mj]
    below = count_below(srt, mr, d, strict=True)
    tied = count_below(srt, mr, d, strict=False) - below > 1
    for k in np.flatnonzero(tied):  # equal distances: the lower gallery index first
        below[k] += int(np.count_nonzero(dist[mr[k], : mj[k]] == d[k]))
    # junk entries sorted before each match do not count
    jr, jj = np.nonzero(junk)
    junk_rows = Csr.from_pairs(jr, jj, num_rows)
    pair, jidx = junk_rows.take(mr)
    jd = dist[mr[pair], jidx]
    before = (jd < d[pair]) | ((jd == d[pair]) & (jidx < mj[pair]))
    below -= np.bincount(pair[before], minlength=len(mr)).astype(below.dtype)
    rank = below + 1  # 1-based among kept entries
    order = np.lexsort((rank, mr))
    mr, rank = mr[order], rank[order]
    per_row = np.bincount(mr, minlength=num_rows)
    nth = np.arange(len(mr)) - (np.cumsum(per_row) - per_row)[mr] + 1
    ap = np.zeros(num_rows)
    found = per_row > 0
    ap[found] = np.bincount(mr, weights=nth / rank, minlength=num_rows)[found] / per_row[found]
    first = np.zeros(num_rows, dtype=np.int64)
    first[mr[nth == 1]] = rank[nth == 1]
    return ap, first


def evaluate_reid_distmat(
    distmat: np.ndarray,
    q_pids: np.ndarray,
    g_pids: np.ndarray,
    q_cams: np.ndarray,
    g_cams: np.ndarray,
    max_elements: int = 1 << 24,
) -> ReIDResult:
    """
    Args:
        distmat: (Q, G) distances, smaller = more similar.
        q_pids, q_cams: (Q,) query person and camera ids; g_pids, g_cams: (G,).
        max_elements: bound on the distances sorted at once.
    """
    distmat = np.asarray(distmat)
    q_pids, q_cams = np.asarray(q_pids).reshape(-1), np.asarray(q_cams).reshape(-1)
    g_pids, g_cams = np.asarray(g_pids).reshape(-1), np.asarray(g_cams).reshape(-1)
    num_q = distmat.shape[0]
    ap, first = np.zeros(num_q), np.zeros(num_q, dtype=np.int64)
    chunk = max(1, max_elements // max(1, distmat.shape[1]))
    for s in range(0, num_q, chunk):
        rows = slice(s, min(num_q, s + chunk))
        ap[rows], first[rows] = _rank_chunk(
            distmat[rows], q_pids[rows], q_cams[rows], g_pids, g_cams
        )
    return ReIDResult(ap, first)


def evaluate_reid(
    q_feats: np.ndarray,
    g_feats: np.ndarray,
    q_pids: np.ndarray,
    g_pids: np.ndarray,
    q_cams: np.ndarray,
    g_cams: np.ndarray,
    max_elements: int = 1 << 24,
) -> ReIDResult:
    """
    Same, from L2-normalised embeddings: distance = ``-(q_feats @ g_feats.T)``, chunked.

    Args:
        q_feats: (Q, D); g_feats: (G, D).
    """
    q_feats, g_feats = np.asarray(q_feats), np.asarray(g_feats)
    q_pids, q_cams = np.asarray(q_pids).reshape(-1), np.asarray(q_cams).reshape(-1)
    g_pids, g_cams = np.asarray(g_pids).reshape(-1), np.asarray(g_cams).reshape(-1)
    num_q = len(q_feats)
    ap, first = np.zeros(num_q), np.zeros(num_q, dtype=np.int64)
    chunk = max(1, max_elements // max(1, len(g_feats)))
    for s in range(0, num_q, chunk):
        rows = slice(s, min(num_q, s + chunk))
        dist = -(q_feats[rows] @ g_feats.T)
        ap[rows], first[rows] = _rank_chunk(dist, q_pids[rows], q_cams[rows], g_pids, g_cams)
    return ReIDResult(ap, first)
