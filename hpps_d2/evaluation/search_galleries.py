"""
The galleries of the three person-search benchmarks, compiled into :class:`SearchPlan` s.

* **CUHK-SYSU** (docs/datasets.md section 6): the gallery of a query is its protocol list
  ``gallery_lists[k]`` (``TestG<k>.mat``), kept as the file gives it. The target in a listed image
  is the box the list gives (not the gallery pid labels). Full set (``k = -1``): the ``TestG50``
  list first, then every other gallery image as a guaranteed negative, except the query image
  (NAE's ``tested`` set); the query image is scored when the ``TestG50`` list itself holds it.
* **PRW** (section 7): every gallery frame except the query's own; ``cross_cam`` (SeqNet's
  ``ignore_cam_id=False``, psd2's "mlv") also drops the frames of the query's camera, from the
  candidates and from ``count_gt`` alike. The target is the frame's first box with the query pid.
* **PoseTrack21** (section 8; PoseTrack21 ``eval_search_pts``): every gallery image except the
  query's; no camera notion; the target is the image's first box with the query pid.

Edge rules, for every benchmark (SeqNet's, docs/datasets.md section 9):

* a gallery image listed twice counts twice in ``count_gt`` but is scored once, with the entry of
  its first occurrence (SeqNet dedupes by name after incrementing ``count_gt``; psdb scores both
  copies). So a duplicated positive can at most give one true positive, and recall stays < 1;
* a pid labeled twice in one frame: the first box is the target (SeqNet's ``gt.ravel()`` then
  holds 8 numbers, and its size and IoU code read the first box's four);
* a query whose gallery shows the person nowhere (``count_gt == 0``) is skipped (PoseTrack21's
  rule; SeqNet would divide by zero). CUHK-SYSU lists always hold a positive.
"""

import itertools
import logging
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from .geometry import pairwise_iou
from .ranking import Csr, expand_ranges
from .search_protocol import GalleryDetections, SearchPlan, SearchResult, SearchTargets, run_search

__all__ = [
    "FULL_SET",
    "best_detection_query_features",
    "cuhk_sysu_plans",
    "gallery_image_index",
    "posetrack21_plans",
    "prw_plans",
    "search_cuhk_sysu",
    "search_posetrack21",
    "search_prw",
]

logger = logging.getLogger(__name__)

#: Gallery size of the CUHK-SYSU full-set protocol.
FULL_SET = -1
#: The protocol list the full set starts from (NAE), and that defines the gallery identities.
_FULL_SET_LIST = 50


def gallery_image_index(gallery_records: Sequence[dict]) -> Dict[str, int]:
    """``{image_id: position}`` of a gallery split; an image listed twice is an error."""
    index: Dict[str, int] = {}
    for i, r in enumerate(gallery_records):
        if index.setdefault(r["image_id"], i) != i:
            raise ValueError(f"gallery image_id {r['image_id']!r} appears twice in the gallery")
    return index


def _query_images(query_records, image_index) -> np.ndarray:
    """(Q,) gallery index of each query's image, -1 when the gallery lacks it."""
    return np.array([image_index.get(r["image_id"], -1) for r in query_records], dtype=np.int64)


def _list_size_name(k: int) -> str:
    return "full" if k == FULL_SET else f"g{k}"


def _flat_lists(query_records, k: int, num_images: int):
    """
    Concatenate the size-k protocol lists of every query.

    Returns:
        rows, images: (S,) int64, the query and gallery image of every list entry, in list order.
        prow, pflat: (P,) int64, the query and the entry (index into ``images``) of every positive.
        boxes: (P, 4) float64 the positives' boxes.
    """
    lists = []
    for q, r in enumerate(query_records):
        gl = (r.get("gallery_lists") or {}).get(k)
        if gl is None:
            raise KeyError(
                f"query {q} ({r.get('image_id')}) has no gallery list of size {k}; "
                f"sizes present: {sorted(r.get('gallery_lists') or {})}"
            )
        lists.append(gl)
    lengths = np.array([len(gl["images"]) for gl in lists], dtype=np.int64)
    npos = np.array([len(gl["pos_index"]) for gl in lists], dtype=np.int64)
    rows = np.repeat(np.arange(len(lists), dtype=np.int64), lengths)
    prow = np.repeat(np.arange(len(lists), dtype=np.int64), npos)
    images = np.concatenate([np.asarray(gl["images"]).reshape(-1) for gl in lists] or [[]])
    pos = np.concatenate([np.asarray(gl["pos_index"]).reshape(-1) for gl in lists] or [[]])
    images, pos = images.astype(np.int64), pos.astype(np.int64)
    boxes = [np.asarray(gl["pos_boxes"], dtype=np.float64).reshape(-1, 4) for gl in lists]
    boxes = np.concatenate(boxes) if boxes else np.zeros((0, 4))
    bad = np.flatnonzero((images < 0) | (images >= num_images))
    if len(bad):
        raise ValueError(
            f"query {rows[bad[0]]}: gallery list {k} lists image {images[bad[0]]}, outside the "
            f"{num_images} gallery images"
        )
    bad = np.flatnonzero((pos < 0) | (pos >= lengths[prow]))
    if len(bad) or len(boxes) != len(pos):
        q = prow[bad[0]] if len(bad) else 0
        raise ValueError(f"query {q}: gallery list {k} has a positive outside the list or no box")
    starts = np.cumsum(lengths) - lengths
    return rows, images, prow, starts[prow] + pos, boxes


def cuhk_sysu_plans(
    query_records: Sequence[dict], image_index: Dict[str, int], sizes: Sequence[int]
) -> Tuple[SearchTargets, List[SearchPlan]]:
    """
    Plans ``"g<k>"`` for the protocol lists and ``"full"`` for ``k = -1``.

    Args:
        query_records: CUHK-SYSU query records with ``gallery_lists``.
        image_index: ``{image_id: index}`` of the gallery split the lists index.
        sizes: gallery sizes, each a key of every query's ``gallery_lists`` or ``-1``.
    """
    num_images, num_queries = len(image_index), len(query_records)
    qimg = _query_images(query_records, image_index)
    pending = []  # (name, count_gt, scored rows, their images and boxes, candidates)
    for k in sizes:
        rows, images, prow, pflat, boxes = _flat_lists(
            query_records, _reference_size(query_records) if k == FULL_SET else k, num_images
        )
        is_first = _first_occurrences(rows, images, num_images)
        scored = is_first[pflat]
        count_gt = np.bincount(prow, minlength=num_queries).astype(np.int64)
        if k == FULL_SET:
            own_listed = np.bincount(rows[images == qimg[rows]], minlength=num_queries) > 0
            drop = np.flatnonzero((qimg >= 0) & ~own_listed)
            candidates = {"exclude_images": Csr.from_pairs(drop, qimg[drop], num_queries)}
        else:
            include = Csr.from_pairs(rows[is_first], images[is_first], num_queries)
            candidates = {"include_images": include}
        scored_images = images[pflat][scored]
        pending.append(
            (_list_size_name(k), count_gt, prow[scored], scored_images, boxes[scored], candidates)
        )
    keys = [np.c_[p[3].astype(np.float64), p[4]] for p in pending]
    keys = np.concatenate(keys) if keys else np.zeros((0, 5))
    unique, inverse = np.unique(keys, axis=0, return_inverse=True)
    inverse = inverse.reshape(-1)
    targets = SearchTargets(unique[:, 0].astype(np.int64), unique[:, 1:].copy())
    plans, offset = [], 0
    for name, count_gt, prows, _, _, candidates in pending:
        tids = inverse[offset : offset + len(prows)]
        offset += len(prows)
        positives = Csr.from_pairs(prows, tids, num_queries)
        plans.append(SearchPlan(name, count_gt, positives, **candidates))
    return targets, plans


def _first_occurrences(rows: np.ndarray, images: np.ndarray, num_images: int) -> np.ndarray:
    """
    Whether each (row, image) pair is the first of its kind; rows non-decreasing. Repeats are
    rare, so pairs are counted per block of rows and only the repeated ones are sorted.
    """
    is_first = np.ones(len(rows), dtype=bool)
    block = max(1, (1 << 22) // max(1, num_images))
    bounds = np.searchsorted(rows, np.arange(0, int(rows.max(initial=-1)) + 1 + block, block))
    for a, b in itertools.pairwise(bounds):
        if a == b:
            continue
        key = (rows[a:b] - rows[a]) * num_images + images[a:b]
        repeated = np.flatnonzero(np.bincount(key)[key] > 1)
        if len(repeated):
            _, first = np.unique(key[repeated], return_index=True)
            is_first[a + repeated] = False
            is_first[a + repeated[first]] = True
    return is_first


def _reference_size(query_records) -> int:
    """The list the full set starts from: TestG50, or the smallest size present (warned)."""
    present = set(query_records[0].get("gallery_lists") or {}) if query_records else set()
    if _FULL_SET_LIST in present or not present:
        return _FULL_SET_LIST
    logger.warning("CUHK-SYSU full set: no TestG50 list; starting from TestG%d", min(present))
    return min(present)


def _labeled_targets(gallery_records):
    """
    The first box of every labeled pid in every gallery image.

    Returns:
        image: (T,) int64; pid: (T,) int64; box: (T, 4) float64, sorted by pid (stable).
    """
    image, pid, box = [], [], []
    for i, r in enumerate(gallery_records):
        seen = set()
        for a in r.get("annotations", ()):
            p = int(a.get("person_id", -1))
            if p < 0 or a.get("iscrowd", 0) or p in seen:  # unlabeled, ignore region, repeated
                continue
            seen.add(p)
            image.append(i)
            pid.append(p)
            box.append(a["bbox"])
    image = np.asarray(image, dtype=np.int64)
    pid = np.asarray(pid, dtype=np.int64)
    box = np.asarray(box, dtype=np.float64).reshape(-1, 4)
    order = np.argsort(pid, kind="stable")
    return image[order], pid[order], box[order]


def _pid_plans(query_records, gallery_records, image_index, cam_modes, image_group, cam_ids):
    """Plans of the pid-based galleries (PRW, PoseTrack21): every image but some."""
    num_queries = len(query_records)
    t_img, t_pid, t_box = _labeled_targets(gallery_records)
    qimg = _query_images(query_records, image_index)
    qpid = np.array([int(r["query"]["person_id"]) for r in query_records], dtype=np.int64)
    lo = np.searchsorted(t_pid, qpid, side="left")
    hi = np.searchsorted(t_pid, qpid, side="right")
    rows, tids = expand_ranges(lo, hi - lo)
    keep_other = t_img[tids] != qimg[rows]
    plans = []
    for ignore_cam_id in cam_modes:
        keep = keep_other
        extra = {"exclude_images": None, "exclude_group": None}
        own = qimg >= 0
        if not ignore_cam_id:
            qcam = np.array([r.get("camera_id", -1) for r in query_records], dtype=np.int64)
            if (qcam < 0).any():
                q = int(np.argmax(qcam < 0))
                raise ValueError(
                    f"cross-camera search needs camera_id; query {q} "
                    f"({query_records[q]['image_id']}) lacks it"
                )
            qgroup = np.full(num_queries, -1, dtype=np.int64)
            known = np.isin(qcam, cam_ids)
            qgroup[known] = np.searchsorted(cam_ids, qcam[known])
            keep = keep & (image_group[t_img[tids]] != qgroup[rows])
            extra["exclude_group"] = qgroup
            own = own & (image_group[np.maximum(qimg, 0)] != qgroup)
        drop = np.flatnonzero(own)
        extra["exclude_images"] = Csr.from_pairs(drop, qimg[drop], num_queries)
        count_gt = np.bincount(rows[keep], minlength=num_queries).astype(np.int64)
        positives = Csr.from_pairs(rows[keep], tids[keep], num_queries)
        name = "all" if ignore_cam_id else "cross_cam"
        plans.append(SearchPlan(name, count_gt, positives, **extra))
    return SearchTargets(t_img, t_box), plans


def prw_plans(
    query_records: Sequence[dict],
    gallery_records: Sequence[dict],
    image_index: Dict[str, int],
    cam_modes: Sequence[bool] = (True, False),
):
    """
    PRW plans: ``"all"`` (``ignore_cam_id=True``) and ``"cross_cam"`` (``False``).

    Returns:
        (targets, plans, image_group): ``image_group`` (G,) is the camera index of each image.
    """
    cams = np.array([r.get("camera_id", -1) for r in gallery_records], dtype=np.int64)
    if not all(cam_modes) and len(cams) and cams.min() < 0:
        missing = gallery_records[int(np.argmin(cams))]["image_id"]
        raise ValueError(
            f"PRW cross-camera search needs camera_id; gallery image {missing} lacks it"
        )
    cam_ids, image_group = np.unique(cams, return_inverse=True)
    image_group = image_group.reshape(-1).astype(np.int64)
    targets, plans = _pid_plans(
        query_records, gallery_records, image_index, cam_modes, image_group, cam_ids
    )
    return targets, plans, image_group


def posetrack21_plans(
    query_records: Sequence[dict], gallery_records: Sequence[dict], image_index: Dict[str, int]
):
    """PoseTrack21: one plan, ``"all"``: every gallery image except the query's."""
    group = np.zeros(len(gallery_records), dtype=np.int64)
    return _pid_plans(query_records, gallery_records, image_index, (True,), group, np.zeros(1))


def search_cuhk_sysu(
    query_records: Sequence[dict],
    gallery_records: Sequence[dict],
    query_features: np.ndarray,
    gallery: GalleryDetections,
    sizes: Optional[Sequence[int]] = None,
    path: str = "auto",
) -> Dict[str, SearchResult]:
    """
    CUHK-SYSU search at every gallery size.

    Args:
        query_records, gallery_records: the two splits (lists index the gallery's order).
        query_features: (Q, D) query embeddings, in query record order.
        gallery: kept detections of the gallery images, in gallery record order.
        sizes: gallery sizes (-1 = full set); None = every size of the lists, then the full set.
        path: how list galleries are scored (:func:`run_search`): by cost, or forced.

    Returns:
        ``{"g<k>": SearchResult, ..., "full": SearchResult}``.
    """
    if sizes is None:
        present = query_records[0].get("gallery_lists") or {} if len(query_records) else {}
        sizes = sorted(present) + [FULL_SET]
    index = gallery_image_index(gallery_records)
    targets, plans = cuhk_sysu_plans(query_records, index, sizes)
    return run_search(query_features, gallery, targets, plans, path=path)


def search_prw(
    query_records: Sequence[dict],
    gallery_records: Sequence[dict],
    query_features: np.ndarray,
    gallery: GalleryDetections,
    cam_modes: Sequence[bool] = (True, False),
) -> Dict[str, SearchResult]:
    """PRW search; returns ``{"all": ..., "cross_cam": ...}`` for the requested camera modes."""
    index = gallery_image_index(gallery_records)
    targets, plans, group = prw_plans(query_records, gallery_records, index, cam_modes)
    return run_search(query_features, gallery, targets, plans, image_group=group)


def search_posetrack21(
    query_records: Sequence[dict],
    gallery_records: Sequence[dict],
    query_features: np.ndarray,
    gallery: GalleryDetections,
) -> Dict[str, SearchResult]:
    """PoseTrack21 search; returns ``{"all": ...}``; queries never seen in the gallery skipped."""
    index = gallery_image_index(gallery_records)
    targets, plans = posetrack21_plans(query_records, gallery_records, index)
    return run_search(query_features, gallery, targets, plans)


def best_detection_query_features(
    query_records: Sequence[dict],
    image_index: Dict[str, int],
    boxes: Sequence[np.ndarray],
    features: Sequence[np.ndarray],
    query_features: np.ndarray,
) -> np.ndarray:
    """
    psd2's PoseTrack21 variant: the query feature is the embedding of the detection of the query
    image with the highest IoU to the query box (first one on ties), instead of the embedding of
    the query box. A query whose image has no detection overlapping its box keeps its own.

    Args:
        boxes, features: per gallery image, the (N_i, 4) detections considered (the evaluator
            passes those kept by ``det_thresh``) and their (N_i, D) embeddings, not score-scaled.
        query_features: (Q, D) embeddings of the query boxes (the fallback).

    Returns:
        (Q, D) query features.
    """
    out = np.array(query_features, copy=True)
    for q, r in enumerate(query_records):
        i = image_index.get(r["image_id"], -1)
        if i < 0 or len(boxes[i]) == 0:
            continue
        iou = pairwise_iou(np.asarray(r["query"]["bbox"])[None], boxes[i])[0]
        j = int(np.argmax(iou))
        if iou[j] > 0:
            out[q] = np.asarray(features[i])[j]
    return out
