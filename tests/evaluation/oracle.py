"""
Reference implementations of the evaluation protocols, written plainly from docs/datasets.md
sections 9 and 10: one query at a time, one gallery image at a time, with sklearn's
``average_precision_score``. They are deliberately plain (and slow): they check the vectorised
evaluators (tests/evaluation) and are the baseline of bench/bench_evaluator.py.

Choices the spec leaves open are made the way the production code documents them:
SeqNet's dedupe of a gallery image listed twice (``count_gt`` twice, scored once), the first box
of a pid labeled twice, queries with ``count_gt == 0`` skipped, and top-k ties ranked
pessimistically (non-matching detections first).
"""

import numpy as np
from sklearn.metrics import average_precision_score

TOPK = (1, 5, 10)


def iou(a, b) -> float:
    """IoU of two XYXY boxes, as the reference ``_compute_iou`` (0 for an empty union)."""
    x1, y1 = max(a[0], b[0]), max(a[1], b[1])
    x2, y2 = min(a[2], b[2]), min(a[3], b[3])
    inter = max(0.0, x2 - x1) * max(0.0, y2 - y1)
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def kept_detections(boxes, scores, features, det_thresh, cws):
    """{gallery index: (boxes, features)} for images with at least one kept detection."""
    dets = {}
    for i, (b, s, f) in enumerate(zip(boxes, scores, features)):
        s = np.asarray(s)
        keep = s >= det_thresh
        if keep.any():
            f = np.asarray(f)[keep]
            if cws:
                f = f * s[keep, None].astype(f.dtype)
            dets[i] = (np.asarray(b, dtype=np.float64)[keep], f)
    return dets


def score_query(query_feature, entries, dets):
    """
    Section 9 for one query.

    Args:
        entries: the gallery in order, ``(image index, target box or None)``.
        dets: from :func:`kept_detections`.

    Returns:
        dict(ap, hits, count_gt, count_tp), or None when ``count_gt == 0`` (skipped).
    """
    y_true, y_score = [], []
    count_gt = count_tp = 0
    scored = set()
    for image, gt in entries:
        if gt is not None:
            count_gt += 1  # before anything else
        if image not in dets:
            continue  # no kept detection: counted, not ranked
        if image in scored:
            continue  # SeqNet: a repeated image is scored once (after count_gt)
        scored.add(image)
        boxes, feats = dets[image]
        sim = feats.dot(query_feature)
        label = np.zeros(len(sim), dtype=np.int64)
        if gt is not None:
            w, h = gt[2] - gt[0], gt[3] - gt[1]
            thresh = min(0.5, w * h / ((w + 10) * (h + 10)))
            for j in np.argsort(sim)[::-1]:
                if iou(boxes[j], gt) >= thresh:
                    label[j] = 1
                    count_tp += 1
                    break
        y_true.extend(label.tolist())
        y_score.extend(sim.tolist())
    if count_gt == 0:
        return None
    y_true = np.asarray(y_true)
    y_score = np.asarray(y_score)
    recall = count_tp / count_gt
    ap = 0.0 if count_tp == 0 else average_precision_score(y_true, y_score) * recall
    order = np.lexsort((y_true, -y_score))  # by score, descending; non-matches first on ties
    hits = [bool(y_true[order][:k].any()) for k in TOPK]
    return {"ap": ap, "hits": hits, "count_gt": count_gt, "count_tp": count_tp}


def summarize(per_query):
    valid = [r for r in per_query if r is not None]
    if not valid:
        return {"mAP": 0.0, "top1": 0.0, "top5": 0.0, "top10": 0.0}
    out = {"mAP": float(np.mean([r["ap"] for r in valid]))}
    for j, k in enumerate(TOPK):
        out[f"top{k}"] = float(np.mean([r["hits"][j] for r in valid]))
    return out


def _image_index(gallery_records):
    return {r["image_id"]: i for i, r in enumerate(gallery_records)}


def cuhk_sysu(query_records, gallery_records, query_features, dets, size, queries=None):
    """Per-query results for one gallery size (-1: TestG50 list, then all others as negatives)."""
    index = _image_index(gallery_records)
    out = []
    for q in range(len(query_records)) if queries is None else queries:
        rec = query_records[q]
        gl = rec["gallery_lists"][50 if size == -1 else size]
        positives = {int(j): box for j, box in zip(gl["pos_index"], gl["pos_boxes"])}
        entries = [(int(img), positives.get(j)) for j, img in enumerate(gl["images"])]
        if size == -1:
            tested = {index.get(rec["image_id"])} | {int(img) for img in gl["images"]}
            entries += [(i, None) for i in range(len(gallery_records)) if i not in tested]
        out.append(score_query(query_features[q], entries, dets))
    return out


def pid_search(
    query_records, gallery_records, query_features, dets, ignore_cam_id=True, queries=None
):
    """PRW (both camera modes) and PoseTrack21 (``ignore_cam_id=True``)."""
    out = []
    for q in range(len(query_records)) if queries is None else queries:
        rec = query_records[q]
        pid = rec["query"]["person_id"]
        entries = []
        for i, g in enumerate(gallery_records):
            if g["image_id"] == rec["image_id"]:
                continue
            if not ignore_cam_id and g.get("camera_id") == rec.get("camera_id"):
                continue
            gt = None
            for a in g["annotations"]:
                if a["person_id"] == pid and not a.get("iscrowd", 0):
                    gt = a["bbox"]  # the first box of the pid
                    break
            entries.append((i, gt))
        out.append(score_query(query_features[q], entries, dets))
    return out


# ------------------------------------------------------------------------------------------- #
# Detection (section 9, "Detection metric")
# ------------------------------------------------------------------------------------------- #
def _clip_polygon(poly, box):
    """Sutherland-Hodgman: the polygon clipped by an axis-aligned box, one side at a time."""
    points = [(float(x), float(y)) for x, y in poly]
    x1, y1, x2, y2 = (float(v) for v in box)
    # (axis, bound, keep the side >= bound?)
    for axis, bound, keep_above in ((0, x1, True), (0, x2, False), (1, y1, True), (1, y2, False)):

        def inside(p, axis=axis, bound=bound, keep_above=keep_above):
            return p[axis] >= bound if keep_above else p[axis] <= bound

        clipped = []
        for k, cur in enumerate(points):
            prev = points[k - 1]
            if inside(cur) != inside(prev):
                t = (bound - prev[axis]) / (cur[axis] - prev[axis])
                cut = [prev[0] + t * (cur[0] - prev[0]), prev[1] + t * (cur[1] - prev[1])]
                cut[axis] = bound
                clipped.append(tuple(cut))
            if inside(cur):
                clipped.append(cur)
        points = clipped
        if not points:
            break
    return points


def _shoelace(points):
    s = 0.0
    for k in range(len(points)):
        xa, ya = points[k - 1]
        xb, yb = points[k]
        s += xa * yb - xb * ya
    return abs(s) / 2.0


def polygon_iou(poly, box) -> float:
    inter = _shoelace(_clip_polygon(poly, box))
    union = _shoelace([tuple(p) for p in poly]) + (box[2] - box[0]) * (box[3] - box[1]) - inter
    return inter / union if union > 0 else 0.0


def detection(
    gallery_records,
    boxes,
    scores,
    det_thresh=0.01,
    iou_thresh=0.5,
    labeled_only=False,
    ignore_iou_thresh=0.1,
):
    """Returns (ap, recall, count_gt, count_tp)."""
    y_true, y_score = [], []
    count_gt = count_tp = 0
    for rec, b, s in zip(gallery_records, boxes, scores):
        annos = [a for a in rec["annotations"] if not a.get("iscrowd", 0)]
        if labeled_only:
            annos = [a for a in annos if a["person_id"] >= 0]
            if not annos:
                continue
        gt = [a["bbox"] for a in annos]
        s = np.asarray(s)
        keep = s >= det_thresh
        det, sc = np.asarray(b)[keep], s[keep]
        if len(det) == 0:
            count_gt += len(gt)
            continue
        polygons = [np.asarray(p, dtype=np.float64) for p in rec.get("ignore_regions", [])]
        for a in rec["annotations"]:
            if a.get("iscrowd", 0):
                x1, y1, x2, y2 = a["bbox"]
                polygons.append(np.array([[x1, y1], [x2, y1], [x2, y2], [x1, y2]], dtype=float))
        ious = np.array([[iou(g, d) for d in det] for g in gt]).reshape(len(gt), len(det))
        tf = ious >= iou_thresh
        if len(gt):
            for j in range(len(det)):
                largest = np.argmax(ious[:, j])
                for i in range(len(gt)):
                    if i != largest:
                        tf[i, j] = False
            for i in range(len(gt)):
                largest = np.argmax(ious[i, :])
                for j in range(len(det)):
                    if j != largest:
                        tf[i, j] = False
        for j in range(len(det)):
            matched = bool(tf[:, j].any())
            ignored = any(polygon_iou(p, det[j]) > ignore_iou_thresh for p in polygons)
            if ignored and not matched:
                continue
            y_true.append(matched)
            y_score.append(sc[j])
        count_tp += int(tf.sum())
        count_gt += len(gt)
    recall = count_tp / count_gt if count_gt else 0.0
    ap = average_precision_score(y_true, y_score) * recall if count_tp else 0.0
    return ap, recall, count_gt, count_tp


# ------------------------------------------------------------------------------------------- #
# Crop re-ID (section 10, torchreid eval_market1501 with a stable sort)
# ------------------------------------------------------------------------------------------- #
def reid(distmat, q_pids, g_pids, q_cams, g_cams, ranks=(1, 5, 10)):
    """Returns (mAP, {k: cmc@k}, number of valid queries, per-query AP or None)."""
    aps, firsts, per_query = [], [], []
    for q in range(distmat.shape[0]):
        order = np.argsort(distmat[q], kind="stable")
        same = g_pids[order] == q_pids[q]
        junk = same & (g_cams[order] == q_cams[q])
        raw = same[~junk].astype(np.int64)
        if not raw.any():
            per_query.append(None)
            continue
        cmc = raw.cumsum()
        cmc[cmc > 1] = 1
        firsts.append(cmc)
        precision = raw.cumsum() / (np.arange(len(raw)) + 1.0)
        ap = float((precision * raw).sum() / raw.sum())
        aps.append(ap)
        per_query.append(ap)
    if not aps:
        return 0.0, {k: 0.0 for k in ranks}, 0, per_query
    cmc_at = {k: float(np.mean([c[min(k, len(c)) - 1] for c in firsts])) for k in ranks}
    return float(np.mean(aps)), cmc_at, len(aps), per_query
