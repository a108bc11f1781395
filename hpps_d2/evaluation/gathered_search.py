"""
Gathered similarities for list galleries, and the cost rule that chooses them over the matrix.

A CUHK-SYSU TestG<k> query searches k listed images; with k = 100 of 6,978 that is about 1% of
the kept detections, so computing the whole query x detection matrix (what
:func:`~hpps_d2.evaluation.search_protocol.run_search` shares between gallery definitions) wastes
~99% of it. The gathered path computes only the (query, detection) pairs of each query's listed
images, without a Python loop over queries or detections:

* the (query, image) pairs of a chunk of queries are grouped by image; an image listed by ``m``
  queries and holding ``n`` kept detections is one ``(m, D) x (D, n)`` product, and images of
  the same ``n`` and about the same ``m`` (padded up to a geometric grid) are one batched,
  cache-sized ``np.matmul`` (the detections of an image are a contiguous slice of the features,
  read once per image, not once per query);
* the values land in a flat, query-major layout: query by query, its listed images in ascending
  index, each image's detections in order, so that ``(query, detection)`` keys are sorted and a
  detection's similarity is found by binary search (the true positives need it).

Which path runs is a cost estimate (:func:`choose_path`), never a dataset name: the matrix costs
``Q x N x D`` multiply-adds at matrix-product speed; the gathered path ``S x D`` for the ``S``
listed (query, detection) pairs of every list plan, at a per-element cost measured
``GATHER_COST_FACTOR`` times higher (small products, gathers), plus a fixed overhead per batched
product. A gallery defined as "every image but" (PRW, PoseTrack21, the CUHK-SYSU full set) needs
whole rows, so any such plan in the call selects the matrix, whose rows the list plans then share.
"""

from dataclasses import dataclass
from typing import Dict, Sequence

import numpy as np

from .ranking import Csr, count_below, expand_ranges

__all__ = [
    "GATHER_COST_FACTOR",
    "GROUP_OVERHEAD",
    "GatheredRows",
    "choose_path",
    "estimate_batches",
    "gather_similarities",
    "path_costs",
]

#: Cost of one gathered multiply-add relative to one matrix-path entry x D (the matrix path's
#: whole time over ``Q N D``), measured on 2 busy cores, float32, D = 256, 500 queries x gallery
#: 100 of a 3,000-image pool (~10 detections per image): about 5.
GATHER_COST_FACTOR = 5.0
#: Fixed cost of one batched product, in the same units (~30 us of Python and call overhead).
GROUP_OVERHEAD = 1e6

PATHS = ("auto", "matrix", "gathered")


@dataclass
class GatheredRows:
    """
    The similarities of a chunk of queries with the detections of their listed images.

    Attributes:
        values: (S + pad,) similarities in the flat query-major layout; the tail is scratch.
        row: (S,) int64 position in the chunk of each value's query, non-decreasing.
        det: (S,) int64 detection of each value, ascending within a query.
        keys: (S,) int64 ``row * key_base + det``, ascending.
        key_base: multiplier of ``row`` in ``keys``.
    """

    values: np.ndarray
    row: np.ndarray
    det: np.ndarray
    keys: np.ndarray
    key_base: int

    @property
    def size(self) -> int:
        return len(self.row)

    def lookup(self, row: np.ndarray, det: np.ndarray) -> np.ndarray:
        """Similarities of (row in chunk, detection) pairs, each of which must be gathered."""
        want = np.asarray(row, dtype=np.int64) * self.key_base + np.asarray(det, dtype=np.int64)
        at = np.minimum(np.searchsorted(self.keys, want), max(0, self.size - 1))
        if len(want) and (self.size == 0 or (self.keys[at] != want).any()):
            raise ValueError("a scored detection lies outside its query's listed images")
        return self.values[at]

    def count_at_least(self, num_rows: int, tp: np.ndarray, vr: np.ndarray, vj: np.ndarray):
        """
        For each ``k``: how many values of row ``vr[k]`` are ``>= tp[vr[k], vj[k]]``.

        Few true positives per row (the usual case): one comparison pass over the values per
        column of ``tp``; otherwise a binary search in the sorted rows.
        """
        vr = np.asarray(vr, dtype=np.int64)
        if tp.shape[1] > _MAX_COMPARE_PASSES:
            rows = self.sorted_rows(num_rows)
            return rows.shape[1] - count_below(rows, vr, tp[vr, vj])
        out = np.zeros(len(vr), dtype=np.int64)
        values = self.values[: self.size]
        per_row = np.bincount(self.row, minlength=num_rows)
        ends = np.cumsum(per_row)
        hits = np.zeros(self.size + 1, dtype=np.int64)
        for j in np.unique(vj):
            at = vj == j
            np.cumsum(values >= np.repeat(tp[:, j], per_row), out=hits[1:])
            out[at] = (hits[ends] - hits[ends - per_row])[vr[at]]
        return out

    def sorted_rows(self, num_rows: int) -> np.ndarray:
        """(C, M) each row's values ascending, ``-inf`` padded (M >= 1)."""
        per_row = np.bincount(self.row, minlength=num_rows)
        width = max(1, int(per_row.max(initial=0)))
        out = np.full((num_rows, width), -np.inf, dtype=self.values.dtype)
        position = np.arange(self.size) - (np.cumsum(per_row) - per_row)[self.row]
        out[self.row, position] = self.values[: self.size]
        out.sort(axis=1)
        return out


def _sorted_pairs(images: Csr, rows: np.ndarray, num_images: int):
    """The (row in chunk, image) pairs of ``rows``, ascending by row then image."""
    owner, imgs = images.take(rows)
    if len(imgs) > 1:
        key = owner * max(1, num_images) + imgs
        if (key[1:] < key[:-1]).any():
            order = np.argsort(key, kind="stable")
            owner, imgs = owner[order], imgs[order]
    return owner, imgs


#: Up to this many true positives per query, ``n_ge`` is counted by comparison passes.
_MAX_COMPARE_PASSES = 8
#: Bound on the gathered query and detection features of one batched product (cache-sized).
_BATCH_ELEMENTS = 1 << 18
#: Batch shapes are rounded up to this geometric grid (fewer, slightly padded products).
_BIN_RATIO = 1.25
_BINS = np.unique(np.round(_BIN_RATIO ** np.arange(64)).astype(np.int64))


def _bin_up(x: np.ndarray) -> np.ndarray:
    """The smallest grid value >= each of ``x`` (``x >= 1``)."""
    return _BINS[np.searchsorted(_BINS, x)]


def gather_similarities(
    query_features: np.ndarray,
    features: np.ndarray,
    offsets: np.ndarray,
    images: Csr,
    rows: np.ndarray,
) -> GatheredRows:
    """
    Similarities of queries ``rows`` with the detections of their listed images only.

    Args:
        query_features: (Q, D) query embeddings (same dtype as ``features``).
        features: (N, D) kept detection embeddings, image by image.
        offsets: (G + 1,) the detections of image ``i`` are ``offsets[i]:offsets[i + 1]``.
        images: Q rows of listed images, each at most once per row.
        rows: (C,) the queries of the chunk.
    """
    offsets = np.asarray(offsets, dtype=np.int64)
    num_images = len(offsets) - 1
    counts = np.diff(offsets)
    rows = np.asarray(rows, dtype=np.int64)
    owner, imgs = _sorted_pairs(images, rows, num_images)
    n = counts[imgs]
    has = n > 0
    owner, imgs, n = owner[has], imgs[has], n[has]
    pair_start = np.cumsum(n) - n  # flat position of each pair's first detection
    pair, det = expand_ranges(offsets[imgs], n)
    row = owner[pair]
    total = len(det)
    dtype = np.result_type(query_features.dtype, features.dtype)
    scratch = int(n.max(initial=0))
    values = np.empty(total + scratch, dtype=dtype)  # the tail: scratch for padding pairs
    if total:
        qf = query_features[rows]
        dim = max(1, qf.shape[1])
        small = imgs.astype(np.uint16) if num_images <= 1 << 16 else imgs  # radix sort
        by_image = np.argsort(small, kind="stable")
        sorted_imgs = imgs[by_image]
        first = np.flatnonzero(np.r_[True, sorted_imgs[1:] != sorted_imgs[:-1]])
        m = np.diff(np.r_[first, len(sorted_imgs)])  # queries listing each image
        image = sorted_imgs[first]
        nd = counts[image]
        # batch images by detections and by queries rounded up to a geometric bin
        m_bin = _bin_up(m)
        group = nd * (int(m_bin.max()) + 1) + m_bin
        order = np.argsort(group, kind="stable")
        bounds = np.flatnonzero(np.r_[True, group[order][1:] != group[order][:-1], True])
        # a padding pair (index len(imgs)) reads query 0 and writes to the scratch tail
        owner_ext = np.r_[owner, 0]
        start_ext = np.r_[pair_start, total]
        by_image_ext = np.r_[by_image, len(imgs)]
        batches = []  # (a, b): images order[a:b], few enough for cache-sized operands
        for a, b in zip(bounds[:-1], bounds[1:]):
            per = max(1, _BATCH_ELEMENTS // (int(m_bin[order[a]] + nd[order[a]]) * dim))
            batches += [(c, min(b, c + per)) for c in range(a, b, per)]
        for a, b in batches:
            u = order[a:b]
            mm, nn = int(m_bin[u[0]]), int(nd[u[0]])
            slot = first[u][:, None] + np.arange(mm)  # (B, mm) positions in by_image
            slot = np.where(np.arange(mm) < m[u][:, None], slot, len(by_image))
            pidx = by_image_ext[slot]  # (B, mm) pairs, padded
            j = np.arange(nn)
            fb = np.take(features, offsets[image[u]][:, None] + j, axis=0)  # (B, nn, D)
            qb = np.take(qf, owner_ext[pidx], axis=0)  # (B, mm, D)
            prod = np.matmul(qb, fb.transpose(0, 2, 1))  # (B, mm, nn)
            np.put(values, start_ext[pidx][:, :, None] + j, prod)
    key_base = max(1, len(features))
    return GatheredRows(values, row, det, row * key_base + det, key_base)


def estimate_batches(images: Csr, counts: np.ndarray, dim: int, chunks: int = 1) -> int:
    """
    About how many batched products :func:`gather_similarities` runs for these lists: one per
    occupied (detections, queries bin) pair per chunk, plus the splits that keep batches cache-sized.
    """
    m = np.bincount(images.values, minlength=len(counts))
    used = (m > 0) & (counts > 0)
    if not used.any():
        return 0
    m_bin, n = _bin_up(m[used]), counts[used]
    bins = len(np.unique(n * (int(m_bin.max()) + 1) + m_bin))
    volume = int(((m_bin + n) * max(1, dim)).sum())
    return bins * max(1, chunks) + volume // _BATCH_ELEMENTS


def path_costs(
    num_queries: int,
    num_detections: int,
    dim: int,
    list_pairs: Sequence[int],
    list_groups: Sequence[int],
) -> Dict[str, float]:
    """
    Estimated cost, in matrix multiply-adds, of the two paths for the list plans of one call.

    Args:
        list_pairs: per list plan, its (query, detection) pairs (``S``).
        list_groups: per list plan, an estimate of its batched products.
    """
    gathered = sum(GATHER_COST_FACTOR * s * max(1, dim) for s in list_pairs)
    gathered += GROUP_OVERHEAD * sum(list_groups)
    matrix = float(num_queries) * float(num_detections) * max(1, dim)
    return {"matrix": matrix, "gathered": float(gathered)}


def choose_path(costs: Dict[str, float], has_complement: bool, path: str = "auto") -> str:
    """``"matrix"`` or ``"gathered"``: the forced one, else the cheaper (matrix on a tie)."""
    if path not in PATHS:
        raise ValueError(f"search path {path!r}: expected one of {PATHS}")
    if path != "auto":
        return path
    if has_complement:
        return "matrix"
    return "gathered" if costs["gathered"] < costs["matrix"] else "matrix"
