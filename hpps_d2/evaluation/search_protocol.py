"""
The person-search ranking protocol (docs/datasets.md section 9), vectorised over queries.

For one query and its gallery, the reference code (psdb, SeqNet, NAE, AlignPS, psd2) walks the
gallery image by image: ``count_gt`` grows for every image listed as showing the query person,
before anything else; an image without kept detections adds nothing else; in an image showing
the person, the most similar detection with ``IoU >= min(0.5, wh / ((w+10)(h+10)))`` is the one
true positive; every kept detection of every candidate image joins one ranking, on which
``AP = sklearn AP x count_tp / count_gt`` (0 when ``count_tp == 0``) and top-k (not scaled).

This module computes the same numbers without walking images. sklearn's AP with ties is
``(1 / count_tp) * sum_i cum_tp(s_i) / n_ge(s_i)`` over the true positives ``i``, where
``n_ge(s)`` counts ranked detections scoring ``>= s`` and ``cum_tp(s)`` the true positives among
them; so only the true-positive scores and a few counts are needed:

* the similarity of every query with every kept gallery detection is one matrix product per chunk
  of queries, shared by every gallery definition (:class:`SearchPlan`) of the evaluation; or, when
  every plan is a list and the lists are short enough for it to cost less (CUHK-SYSU TestG<k>
  without the full set), only the detections of each query's listed images are scored
  (:mod:`~hpps_d2.evaluation.gathered_search`; same values, same metrics);
* which detections may match a target box (IoU test) is computed once per target
  (:class:`SearchTargets`), whatever the number of queries using it;
* a query's true positive in an image is the maximum similarity over those detections;
* ``n_ge`` is a binary search in sorted rows: the candidate detections of each query (a gallery
  list), or whole camera groups minus a few excluded images (an "every image but" gallery).

Top-k with tied scores is decided pessimistically: a true positive is ranked after every
non-matching detection of equal score (the reference code leaves tie order to ``np.argsort``).
A query whose gallery shows the person nowhere (``count_gt == 0``) is skipped: not in the means.
"""

import itertools
from dataclasses import dataclass, field
from typing import Dict, Optional, Sequence

import numpy as np

from .gathered_search import choose_path, estimate_batches, gather_similarities, path_costs
from .geometry import aligned_iou, search_iou_threshold
from .ranking import Csr, count_below, expand_ranges

__all__ = [
    "TOPK",
    "GalleryDetections",
    "SearchPlan",
    "SearchResult",
    "SearchTargets",
    "run_search",
]

#: The k of the reported top-k accuracies.
TOPK = (1, 5, 10)


@dataclass
class GalleryDetections:
    """
    The kept detections of every gallery image, flattened image by image.

    Attributes:
        boxes: (N, 4) float64 XYXY in original image coordinates.
        features: (N, D) embeddings used for the similarity (already multiplied by the detection
            score under class-weighted similarity).
        offsets: (G + 1,) int64; the detections of image ``i`` are ``offsets[i]:offsets[i + 1]``.
    """

    boxes: np.ndarray
    features: np.ndarray
    offsets: np.ndarray

    @classmethod
    def from_outputs(
        cls,
        boxes: Sequence[np.ndarray],
        scores: Sequence[np.ndarray],
        features: Sequence[np.ndarray],
        det_thresh: float = 0.5,
        cws: bool = False,
    ) -> "GalleryDetections":
        """
        Args:
            boxes, scores, features: per gallery image, (N_i, 4), (N_i,) and (N_i, D).
            det_thresh: detections with ``score >= det_thresh`` are kept.
            cws: class-weighted similarity (NAE): multiply each kept embedding by its score.
        """
        kept_boxes, kept_feats, counts = [], [], []
        dim = next((np.shape(f)[-1] for f in features if np.ndim(f) == 2), 0)
        dtype = np.result_type(*[np.asarray(f).dtype for f in features], np.float32)
        for b, s, f in zip(boxes, scores, features):
            s = np.asarray(s).reshape(-1)
            keep = s >= det_thresh
            f = np.asarray(f, dtype=dtype).reshape(len(s), dim)[keep]
            if cws:
                f = f * s[keep, None].astype(dtype)
            kept_boxes.append(np.asarray(b, dtype=np.float64).reshape(-1, 4)[keep])
            kept_feats.append(f)
            counts.append(int(keep.sum()))
        offsets = np.r_[0, np.cumsum(counts, dtype=np.int64)].astype(np.int64)
        cat_boxes = np.concatenate(kept_boxes) if kept_boxes else np.zeros((0, 4))
        cat_feats = np.concatenate(kept_feats) if kept_feats else np.zeros((0, dim), dtype)
        return cls(cat_boxes, cat_feats.reshape(len(cat_boxes), dim), offsets)

    @property
    def num_images(self) -> int:
        return len(self.offsets) - 1

    def counts(self) -> np.ndarray:
        """(G,) number of kept detections per image."""
        return np.diff(self.offsets)

    def image_index(self) -> np.ndarray:
        """(N,) the image of each detection."""
        return np.repeat(np.arange(self.num_images, dtype=np.int64), self.counts())


@dataclass
class SearchTargets:
    """
    Ground-truth boxes that queries look for, each in one gallery image.

    Attributes:
        image: (T,) int64 gallery image index.
        box: (T, 4) float64 XYXY.
    """

    image: np.ndarray
    box: np.ndarray

    def qualifying(self, gallery: GalleryDetections) -> Csr:
        """
        For each target, the kept detections of its image with
        ``IoU >= min(0.5, w*h / ((w+10)*(h+10)))``, in detection order.
        """
        counts = gallery.counts()[self.image]
        owner, dets = expand_ranges(gallery.offsets[self.image], counts)
        ok = (
            aligned_iou(gallery.boxes[dets], self.box[owner])
            >= search_iou_threshold(self.box)[owner]
        )
        return Csr.from_pairs(owner[ok], dets[ok], len(self.image))


@dataclass
class SearchPlan:
    """
    Which gallery each query searches, for one variant of a protocol (one gallery size, one
    camera mode, ...). Either ``include_images`` (list mode) or ``exclude_group`` /
    ``exclude_images`` (complement mode: every image except those) is given.

    Attributes:
        name: key of the variant in the results, e.g. ``"g100"``.
        count_gt: (Q,) gallery entries showing the query person, duplicates included.
        positives: Q rows of target ids (:class:`SearchTargets`) that are scored: at most one per
            image, all inside the query's candidate images.
        include_images: Q rows of candidate gallery images, each at most once.
        exclude_group: (Q,) int64 image group (see :func:`run_search`) left out; -1 for none.
        exclude_images: Q rows of further images left out, none of them in the excluded group.
    """

    name: str
    count_gt: np.ndarray
    positives: Csr
    include_images: Optional[Csr] = None
    exclude_group: Optional[np.ndarray] = None
    exclude_images: Optional[Csr] = None

    def __post_init__(self):
        complement = self.exclude_group is not None or self.exclude_images is not None
        if self.include_images is not None and complement:
            raise ValueError(f"plan {self.name}: give include_images or exclusions, not both")
        self.count_gt = np.asarray(self.count_gt, dtype=np.int64)


@dataclass
class SearchResult:
    """
    Per-query outcome of one :class:`SearchPlan`.

    Attributes:
        ap: (Q,) average precision times recall.
        hits: (Q, len(TOPK)) top-k success.
        count_gt, count_tp: (Q,) int64.
        valid: (Q,) the queries in the means (``count_gt > 0``).
        path: how the similarities were computed: ``"matrix"`` (rows of the shared query x
            detection matrix) or ``"gathered"`` (only the listed images' detections;
            :mod:`~hpps_d2.evaluation.gathered_search`).
    """

    ap: np.ndarray
    hits: np.ndarray
    count_gt: np.ndarray
    count_tp: np.ndarray
    path: str = "matrix"
    valid: np.ndarray = field(init=False)

    def __post_init__(self):
        self.valid = self.count_gt > 0

    def summary(self) -> Dict[str, float]:
        """``{"mAP", "top1", "top5", "top10"}`` as fractions over the valid queries."""
        n = int(self.valid.sum())
        out = {"mAP": float(self.ap[self.valid].mean()) if n else 0.0}
        for j, k in enumerate(TOPK):
            out[f"top{k}"] = float(self.hits[self.valid, j].mean()) if n else 0.0
        return out


@dataclass
class _Columns:
    """
    Column layout of the similarity matrix: detections grouped by image group, so that a group
    is a contiguous slice that can be sorted in place.

    Attributes:
        of_det: (N,) column of each detection.
        image: (N,) gallery image of each column.
        bounds: (num_groups + 1,) group ``g`` is columns ``bounds[g]:bounds[g + 1]``.
    """

    of_det: np.ndarray
    image: np.ndarray
    bounds: np.ndarray

    @classmethod
    def build(cls, gallery: GalleryDetections, image_group: Optional[np.ndarray]):
        det_image = gallery.image_index()
        if image_group is None:
            image_group = np.zeros(gallery.num_images, dtype=np.int64)
        det_group = np.asarray(image_group, dtype=np.int64)[det_image]
        order = np.argsort(det_group, kind="stable")
        of_det = np.empty_like(order)
        of_det[order] = np.arange(len(order))
        sizes = np.bincount(det_group, minlength=int(det_group.max(initial=-1)) + 1)
        return cls(of_det, det_image[order], np.r_[0, np.cumsum(sizes)].astype(np.int64)), order


def _true_positive_scores(sims, rows, positives: Csr, qualifying: Csr, cols: _Columns):
    """
    Returns:
        tp: (C, P) the true-positive similarities of each query row, ascending, -inf padded.
        count_tp: (C,) int64.
    """
    return _tp_from_lookup(
        lambda r, dets: sims[r, cols.of_det[dets]], sims.shape[0], sims.dtype, rows,
        positives, qualifying,
    )


def _tp_from_lookup(lookup, num_rows, dtype, rows, positives: Csr, qualifying: Csr):
    """:func:`_true_positive_scores` with ``lookup(row in chunk, detections)`` giving values."""
    owner, tids = positives.take(rows)
    pair, dets = qualifying.take(tids)
    best = np.full(len(tids), -np.inf, dtype=dtype)
    if len(dets):
        starts = np.flatnonzero(np.r_[True, pair[1:] != pair[:-1]])
        best[pair[starts]] = np.maximum.reduceat(lookup(owner[pair], dets), starts)
    has = best > -np.inf
    owner, best = owner[has], best[has]
    count_tp = np.bincount(owner, minlength=num_rows).astype(np.int64)
    tp = np.full((num_rows, max(1, int(count_tp.max(initial=0)))), -np.inf, dtype=dtype)
    position = np.arange(len(owner)) - (np.cumsum(count_tp) - count_tp)[owner]
    tp[owner, position] = best
    tp.sort(axis=1)
    return tp, count_tp


def _gathered_sorted(sims, images: Csr, rows, gallery: GalleryDetections, cols: _Columns):
    """(C, M) the similarities of the detections of each row's images, ascending, -inf padded."""
    owner, imgs = images.take(rows)
    pair, dets = expand_ranges(gallery.offsets[imgs], gallery.counts()[imgs])
    row_of_det = owner[pair]
    per_row = np.bincount(row_of_det, minlength=len(rows))
    out = np.full((len(rows), max(1, int(per_row.max(initial=0)))), -np.inf, dtype=sims.dtype)
    position = np.arange(len(dets)) - (np.cumsum(per_row) - per_row)[row_of_det]
    out[row_of_det, position] = sims[row_of_det, cols.of_det[dets]]
    out.sort(axis=1)
    return out


def _masked_sorted(sims, images: Csr, rows, gallery: GalleryDetections, cols: _Columns):
    """(C, N) the similarities with the columns outside each row's images at -inf, ascending."""
    owner, imgs = images.take(rows)
    listed = np.zeros((len(rows), gallery.num_images), dtype=bool)
    listed[owner, imgs] = True
    out = np.where(np.take(listed, cols.image, axis=1), sims, np.array(-np.inf, sims.dtype))
    out.sort(axis=1)
    return out


def _count_ge(sorted_rows, vr, tau):
    """Entries of ``sorted_rows[vr[k]]`` that are ``>= tau[k]``."""
    return sorted_rows.shape[1] - count_below(sorted_rows, vr, tau)


def _rank_metrics(tp, count_tp, count_gt, vr, vj, n_ge):
    """AP x recall and top-k hits of each row from its true positives and their ``n_ge``."""
    num_rows, width = tp.shape
    tau = tp[vr, vj]
    cum_tp = _count_ge(tp, vr, tau)  # true positives scoring >= tau
    ap_sum = np.bincount(vr, weights=cum_tp / n_ge, minlength=num_rows)
    ap = np.zeros(num_rows, dtype=np.float64)
    found = count_tp > 0
    ap[found] = ap_sum[found] / count_gt[found]
    hits = np.zeros((num_rows, len(TOPK)), dtype=bool)
    top = vj == width - 1  # each row's best true positive
    rank = n_ge[top] - cum_tp[top] + 1  # tied non-matches ranked first
    hits[vr[top]] = rank[:, None] <= np.asarray(TOPK)[None, :]
    return ap, hits


def run_search(
    query_features: np.ndarray,
    gallery: GalleryDetections,
    targets: SearchTargets,
    plans: Sequence[SearchPlan],
    image_group: Optional[np.ndarray] = None,
    max_elements: int = 1 << 24,
    path: str = "auto",
) -> Dict[str, SearchResult]:
    """
    Evaluate every plan for every query, sharing the similarity matrix across plans.

    List plans take the gathered path instead (only their listed images' detections, see
    :mod:`~hpps_d2.evaluation.gathered_search`) when its estimated cost is lower and no
    complement plan needs the matrix anyway; each result's ``path`` says which ran.

    Per chunk of queries: one matrix product; per plan, the true-positive scores; then ``n_ge``
    from sorted rows: a list plan sorts its candidates (gathered when the lists are short, the
    whole row masked to the list otherwise); complement plans share the rows sorted in place,
    group by group, once every gather from the unsorted rows is done.

    Args:
        query_features: (Q, D) L2-normalised query embeddings.
        gallery: the kept gallery detections.
        targets: the target boxes the plans' ``positives`` refer to.
        plans: gallery definitions to evaluate.
        image_group: (G,) int64 group of each gallery image in ``0..num_groups-1`` (PRW: camera),
            used by complement plans' ``exclude_group``; None = one group.
        max_elements: bound on the similarity entries held at once (sets the query chunk size).
        path: ``"auto"`` (by cost), or force ``"matrix"`` / ``"gathered"`` for the list plans
            (complement plans always use the matrix). Metrics do not depend on it.

    Returns:
        ``{plan.name: SearchResult}``.
    """
    qf = np.asarray(query_features)
    gf = gallery.features
    num_queries = len(qf)
    dtype = np.result_type(qf.dtype, gf.dtype, np.float32)
    qf = qf.astype(dtype, copy=False).reshape(num_queries, -1 if num_queries else gf.shape[-1])
    if len(gf) == 0:
        gf = np.zeros((0, qf.shape[1]), dtype=dtype)
    if qf.shape[1] != gf.shape[1]:
        raise ValueError(f"query features {qf.shape} and gallery features {gf.shape} differ in D")
    qualifying = targets.qualifying(gallery)
    gf = gf.astype(dtype, copy=False)
    lists = [p for p in plans if p.include_images is not None]
    has_complement = len(lists) < len(plans)
    costs = _path_costs(num_queries, gallery, qf.shape[1], lists, max_elements)
    chosen = choose_path(costs, has_complement, path)
    out = {
        p.name: SearchResult(
            ap=np.zeros(num_queries),
            hits=np.zeros((num_queries, len(TOPK)), dtype=bool),
            count_gt=p.count_gt,
            count_tp=np.zeros(num_queries, dtype=np.int64),
            path="gathered" if chosen == "gathered" and p.include_images is not None else "matrix",
        )
        for p in plans
    }
    if chosen == "gathered":
        for plan in lists:
            _run_gathered(qf, gf, gallery, qualifying, plan, out[plan.name], max_elements)
        plans = [p for p in plans if p.include_images is None]
        if not plans:
            return out
    cols, order = _Columns.build(gallery, image_group)
    gf = gf[order]
    chunk = max(1, max_elements // max(1, len(gf)))
    for start in range(0, num_queries, chunk):
        rows = np.arange(start, min(num_queries, start + chunk))
        sims = qf[rows] @ gf.T  # (C, N), columns in group order
        deferred = []
        for plan in plans:
            tp, count_tp = _true_positive_scores(sims, rows, plan.positives, qualifying, cols)
            vr, vj = np.nonzero(np.arange(tp.shape[1])[None, :] >= tp.shape[1] - count_tp[:, None])
            tau = tp[vr, vj]
            if plan.include_images is not None:
                listed = plan.include_images.take(rows)[1]
                if gallery.counts()[listed].sum() * 8 < sims.size:  # short lists: gather
                    values = _gathered_sorted(sims, plan.include_images, rows, gallery, cols)
                else:
                    values = _masked_sorted(sims, plan.include_images, rows, gallery, cols)
                n_ge = _count_ge(values, vr, tau)
            else:
                n_ge = np.zeros(len(vr), dtype=np.int64)
                if plan.exclude_images is not None:
                    values = _gathered_sorted(sims, plan.exclude_images, rows, gallery, cols)
                    n_ge -= _count_ge(values, vr, tau)
            deferred.append((plan, tp, count_tp, vr, vj, tau, n_ge))
        if any(plan.include_images is None for plan in plans):
            for a, b in itertools.pairwise(cols.bounds):
                sims[:, a:b].sort(axis=1)  # in place: every gather from sims is done
        for plan, tp, count_tp, vr, vj, tau, n_ge in deferred:
            if plan.include_images is None:
                excluded = plan.exclude_group[rows][vr] if plan.exclude_group is not None else None
                for g, (a, b) in enumerate(itertools.pairwise(cols.bounds)):
                    n = (b - a) - count_below(sims[:, a:b], vr, tau)
                    n_ge += n if excluded is None else np.where(excluded == g, 0, n)
            ap, hits = _rank_metrics(tp, count_tp, plan.count_gt[rows], vr, vj, n_ge)
            result = out[plan.name]
            result.ap[rows], result.hits[rows], result.count_tp[rows] = ap, hits, count_tp
    return out


def _gathered_weights(plan: SearchPlan, gallery: GalleryDetections) -> np.ndarray:
    """
    (Q,) per query, the memory the gathered path holds for it, in 4-byte entries (as
    ``max_elements`` counts them): a similarity and a few int64 indices per (query, detection)
    pair and per (query, image) pair; the batched operands are bounded apart (cache-sized).
    """
    listed = plan.include_images
    cum = np.r_[0, np.cumsum(gallery.counts()[listed.values])]
    return 8 * (cum[listed.offsets[1:]] - cum[listed.offsets[:-1]] + listed.lengths())


def _path_costs(num_queries, gallery: GalleryDetections, dim, lists, max_elements):
    """:func:`~hpps_d2.evaluation.gathered_search.path_costs` of the list plans of a call."""
    counts = gallery.counts()
    pairs, batches = [], []
    for plan in lists:
        pairs.append(int(counts[plan.include_images.values].sum()))
        weight = int(_gathered_weights(plan, gallery).sum())
        chunks = -(-weight // max(1, max_elements))
        batches.append(estimate_batches(plan.include_images, counts, dim, chunks))
    return path_costs(num_queries, gallery.offsets[-1], dim, pairs, batches)


def _run_gathered(qf, gf, gallery, qualifying, plan: SearchPlan, result, max_elements):
    """One list plan on the gathered path, by chunks of queries of bounded size."""
    num_queries = len(qf)
    if num_queries == 0:
        return
    cum = np.cumsum(_gathered_weights(plan, gallery))
    start = 0
    while start < num_queries:
        base = cum[start - 1] if start else 0
        stop = max(start + 1, int(np.searchsorted(cum, base + max_elements, side="right")))
        rows = np.arange(start, min(num_queries, stop))
        start = rows[-1] + 1
        gathered = gather_similarities(qf, gf, gallery.offsets, plan.include_images, rows)
        tp, count_tp = _tp_from_lookup(
            gathered.lookup, len(rows), gathered.values.dtype, rows, plan.positives, qualifying
        )
        vr, vj = np.nonzero(np.arange(tp.shape[1])[None, :] >= tp.shape[1] - count_tp[:, None])
        n_ge = gathered.count_at_least(len(rows), tp, vr, vj)
        ap, hits = _rank_metrics(tp, count_tp, plan.count_gt[rows], vr, vj, n_ge)
        result.ap[rows], result.hits[rows], result.count_tp[rows] = ap, hits, count_tp
