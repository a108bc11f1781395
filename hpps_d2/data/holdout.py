"""
A validation split carved out of a person-search *training* split, so that calibration never
looks at the test split (issue G, section 1). Dataset-agnostic: it needs only scene records
whose annotations carry ``person_id`` (``>= 0`` labeled, ``< 0`` unlabeled) and, for the
cross-camera preference, ``camera_id``.

Nothing public is a reference for this (SeqNet, NAE and psd2 tune on the test split or not at
all), so the rule is ours; it follows the PRW protocol that our PRW loader and evaluator use
(``hpps_d2/data/datasets/prw.py`` ``_load_queries``; ``hpps_d2/evaluation/search_galleries.py``
``_pid_plans``: a query searches every gallery frame but its own, ``cross_cam`` also drops its
camera, and the target in a frame is its first box with the query pid):

1. **held-out identities** (:func:`select_holdout`): sort the distinct labeled ids; a permutation
   of their ranks drawn by ``np.random.default_rng(seed)`` holds out its first
   ``k = clip(round(fraction * N), 1, N - 1)`` ids. Only ranks are used, so any increasing
   relabeling of the ids (PRW's raw pids -> the train loader's ``0..N-1``) selects the same
   people; the synthetic PRW writer applies the same function to its raw train pids, so that it
   can make held-out identities share frames only with each other
   (``hpps_d2/synth/writers/prw.py``).
2. **val gallery**: every training frame that shows a held-out identity, in the split's order.
   Its other labeled boxes become unlabeled (they are training identities; kept as people so
   detection is evaluated on every person), so the val split's identities are exactly the
   held-out ones.
3. **train rest**: every other frame (none shows a held-out identity), with the remaining ids
   relabeled to ``0..N'-1`` in ascending order (an OIM lookup table without unused rows).
4. **val queries**: one per held-out identity shown in at least 2 gallery frames (so it has a
   match besides its own frame). Candidates are the identity's first box in each of its frames.
   Preferred is the frame with the most frames of the identity in *other* cameras (PRW's queries
   have cross-camera matches; this maximises the ``cross_cam`` ground truth), then the largest
   box area (PRW's queries are hand-drawn clear views; box size is the proxy a label-only rule
   has), then the earlier frame. A frame without ``camera_id`` counts as its own camera. The
   query record is the frame's image fields plus ``query = {"bbox", "person_id"}`` and
   ``camera_id``, like ``load_prw(..., "query")``; its frame is a val gallery frame, which the
   protocol leaves out of the query's own gallery.
"""

import copy
from typing import Dict, Iterable, List, Sequence, Tuple

import numpy as np

__all__ = ["DEFAULT_FRACTION", "DEFAULT_SEED", "select_holdout", "carve_validation"]

#: Share of the training identities held out for validation (ours: 20%, the usual 80/20 split,
#: which leaves 386 of real PRW's 483 train identities for training).
DEFAULT_FRACTION = 0.2
#: Seed of the held-out permutation (ours).
DEFAULT_SEED = 0
#: Image fields a query record copies from its frame (as hpps_d2/evaluation/test_mapper.py reads).
_IMAGE_FIELDS = ("file_name", "image_id", "height", "width", "image_source", "camera_id")


def select_holdout(
    ids: Iterable[int], fraction: float = DEFAULT_FRACTION, seed: int = DEFAULT_SEED
) -> List[int]:
    """
    The held-out identities among ``ids`` (module docstring, rule 1).

    Args:
        ids: labeled identities (duplicates and negative values are ignored).
        fraction: share held out, in ``(0, 1)``.
        seed: seed of the permutation of ranks.

    Returns:
        list[int]: the held-out ids, ascending.

    Raises:
        ValueError: ``fraction`` outside ``(0, 1)`` or fewer than 2 identities.
    """
    if not 0.0 < float(fraction) < 1.0:
        raise ValueError(f"holdout fraction must be in (0, 1), got {fraction}")
    distinct = sorted({int(i) for i in ids if int(i) >= 0})
    n = len(distinct)
    if n < 2:
        raise ValueError(f"a validation split needs at least 2 labeled identities, got {n}")
    k = min(max(int(round(float(fraction) * n)), 1), n - 1)
    order = np.random.default_rng(int(seed)).permutation(n)
    return sorted(distinct[int(i)] for i in order[:k])


def _labeled(record: dict) -> List[int]:
    return [
        int(a["person_id"])
        for a in record.get("annotations", ())
        if int(a.get("person_id", -1)) >= 0 and not a.get("iscrowd", 0)
    ]


def _area(box: Sequence[float]) -> float:
    return max(0.0, float(box[2]) - float(box[0])) * max(0.0, float(box[3]) - float(box[1]))


def _query(record: dict, box: Sequence[float], pid: int) -> dict:
    q = {k: record[k] for k in _IMAGE_FIELDS if k in record}
    q["query"] = {"bbox": [float(v) for v in box], "person_id": int(pid)}
    return q


def carve_validation(
    records: Sequence[dict],
    fraction: float = DEFAULT_FRACTION,
    seed: int = DEFAULT_SEED,
    unlabeled: int = -1,
) -> Tuple[List[dict], List[dict], List[dict]]:
    """
    Split a search training split into ``(train_rest, val_query, val_gallery)`` (module docstring).

    Args:
        records: scene records (``annotations`` with ``person_id`` and XYXY ``bbox``); not
            modified.
        fraction, seed: :func:`select_holdout`.
        unlabeled: the ``person_id`` given to boxes that lose their label (``UNLABELED``).

    Returns:
        train_rest: records of the frames without a held-out identity, ids relabeled to
            ``0..N'-1`` (ascending).
        val_query: query records, one per held-out identity seen in >= 2 gallery frames, in
            ascending id order.
        val_gallery: records of the frames with a held-out identity, in input order; only
            held-out ids stay labeled (with their input ids).

    Raises:
        ValueError: a record without ``annotations`` (not a scene record), or fewer than 2
            labeled identities.
    """
    for i, r in enumerate(records):
        if "annotations" not in r:
            raise ValueError(
                f"record {i} ({r.get('image_id', r.get('file_name'))}): carve_validation needs "
                "scene records with 'annotations' (a search training split)"
            )
    held = set(select_holdout((p for r in records for p in _labeled(r)), fraction, seed))
    rest, gallery = [], []
    for r in records:
        (gallery if held & set(_labeled(r)) else rest).append(r)
    mapping = {p: i for i, p in enumerate(sorted({p for r in rest for p in _labeled(r)}))}

    def relabel(r: dict, keep) -> dict:
        out = copy.deepcopy(r)
        for a in out["annotations"]:
            p = int(a.get("person_id", -1))
            if p >= 0 and not a.get("iscrowd", 0):
                a["person_id"] = keep(p)
        return out

    train_rest = [relabel(r, lambda p: mapping[p]) for r in rest]
    val_gallery = [relabel(r, lambda p: p if p in held else unlabeled) for r in gallery]

    # Per held-out id: (frame index, first box) of every gallery frame showing it.
    seen: Dict[int, List[Tuple[int, list]]] = {}
    for fi, r in enumerate(val_gallery):
        first = {}
        for a in r["annotations"]:
            p = int(a.get("person_id", -1))
            if p in held and not a.get("iscrowd", 0):
                first.setdefault(p, a["bbox"])
        for p, box in first.items():
            seen.setdefault(p, []).append((fi, box))
    val_query = []
    for pid in sorted(seen):
        frames = seen[pid]
        if len(frames) < 2:
            continue
        cams = [val_gallery[fi].get("camera_id", ("no camera", fi)) for fi, _ in frames]
        others = [sum(c != cam for c in cams) for cam in cams]
        j = max(range(len(frames)), key=lambda j: (others[j], _area(frames[j][1]), -frames[j][0]))
        fi, box = frames[j]
        val_query.append(_query(val_gallery[fi], box, pid))
    return train_rest, val_query, val_gallery
