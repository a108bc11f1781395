"""
Random person-search worlds built in memory: gallery/query records in the project's schema
(hpps_d2/data/datasets/__init__.py) and fake model outputs (detections, scores, embeddings).

Used by the tests (small worlds, many seeds) and by bench/bench_evaluator.py (full-size worlds).
Persons are drawn from identity prototypes, detections are jittered ground truth plus false
positives, and the quirks of the real protocol files are injected on purpose: gallery lists with a
repeated image, the query image inside its own list, pids labeled twice in one frame, empty frames,
frames without detections.
"""

from dataclasses import dataclass
from typing import List

import numpy as np

__all__ = ["World", "make_world"]


@dataclass
class World:
    gallery: List[dict]  # scene records
    queries: List[dict]  # query records (CUHK-SYSU lists, PRW camera_id)
    boxes: List[np.ndarray]  # per gallery image, (N_i, 4) detections
    scores: List[np.ndarray]  # (N_i,)
    features: List[np.ndarray]  # (N_i, D), L2-normalised
    query_features: np.ndarray  # (Q, D), L2-normalised


def _normalize(x):
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


def _random_boxes(rng, n, width, height):
    w = rng.uniform(8, 60, n)
    h = rng.uniform(16, 120, n)
    x = rng.uniform(0, width - 60, n)
    y = rng.uniform(0, height - 120, n)
    return np.stack([x, y, x + w, y + h], axis=1)


def make_world(
    seed: int = 0,
    num_images: int = 70,
    num_pids: int = 12,
    num_queries: int = 15,
    dim: int = 8,
    cameras: int = 3,
    max_persons: int = 5,
    false_positives: float = 2.0,
    list_sizes=(10, 50),
    noise: float = 0.6,
    dtype=np.float64,
    quirks: bool = True,
) -> World:
    """
    Args:
        num_images: gallery images; num_pids: labeled identities; num_queries: queries.
        max_persons: persons per image are drawn in ``[0, max_persons]``.
        false_positives: mean number of false-positive detections per image.
        list_sizes: CUHK-SYSU-style protocol list sizes written into every query record.
        noise: embedding noise (larger = harder search).
        quirks: inject the protocol quirks listed in the module docstring.
    """
    rng = np.random.default_rng(seed)
    width, height = 400.0, 300.0
    protos = _normalize(rng.standard_normal((num_pids, dim)))
    gallery, boxes, scores, features = [], [], [], []
    for i in range(num_images):
        n = int(rng.integers(0, max_persons + 1))
        gt = _random_boxes(rng, n, width, height)
        pids = rng.integers(0, num_pids, n)
        pids[rng.random(n) < 0.25] = -1
        if quirks and n >= 2 and rng.random() < 0.1:
            pids[1] = pids[0] = max(pids[0], 0)  # a pid labeled twice in one frame
        annos = [
            {
                "bbox": b.tolist(),
                "bbox_mode": 0,
                "category_id": 0,
                "person_id": int(p),
                "iscrowd": 0,
            }
            for b, p in zip(gt, pids)
        ]
        if quirks and rng.random() < 0.05:  # a crowd box: an ignore region, never a target
            crowd = _random_boxes(rng, 1, width, height)[0].tolist()
            annos.append(
                {"bbox": crowd, "bbox_mode": 0, "category_id": 0, "person_id": -1, "iscrowd": 1}
            )
        regions = []
        if quirks and rng.random() < 0.3:  # PoseTrack21-style ignore polygons (star-shaped)
            for _ in range(int(rng.integers(1, 3))):
                angles = np.sort(rng.uniform(0, 2 * np.pi, int(rng.integers(3, 9))))
                radii = rng.uniform(10, 80, len(angles))
                cx, cy = rng.uniform(0, width), rng.uniform(0, height)
                regions.append(
                    np.c_[cx + radii * np.cos(angles), cy + radii * np.sin(angles)].tolist()
                )
        gallery.append(
            {
                "file_name": f"g{i}.jpg",
                "image_id": f"g{i}.jpg",
                "height": int(height),
                "width": int(width),
                "annotations": annos,
                "camera_id": int(rng.integers(1, cameras + 1)),
                "ignore_regions": regions,
            }
        )
        found = rng.random(n) < 0.85
        det = gt[found] + rng.normal(0, 3, (int(found.sum()), 4))
        feat = np.where(pids[found, None] >= 0, protos[np.maximum(pids[found], 0)], 0.0)
        feat = feat + noise * rng.standard_normal(feat.shape)
        nfp = int(rng.poisson(false_positives))
        det = np.concatenate([det, _random_boxes(rng, nfp, width, height)])
        feat = np.concatenate([feat, rng.standard_normal((nfp, dim))])
        if quirks and rng.random() < 0.1:
            det, feat = det[:0], feat[:0]  # a frame without any detection
        boxes.append(det)
        scores.append(rng.uniform(0, 1, len(det)))
        features.append(_normalize(feat).astype(dtype).reshape(len(det), dim))
    labeled = [
        (i, a) for i, r in enumerate(gallery) for a in r["annotations"] if a["person_id"] >= 0
    ]
    queries, qfeat = [], []
    for q in range(num_queries):
        i, a = labeled[int(rng.integers(len(labeled)))] if labeled else (0, None)
        pid = a["person_id"] if a else 0
        box = a["bbox"] if a else [0.0, 0.0, 10.0, 20.0]
        record = {
            "file_name": gallery[i]["file_name"],
            "image_id": gallery[i]["image_id"],
            "height": int(height),
            "width": int(width),
            "query": {"bbox": list(box), "person_id": int(pid)},
            "camera_id": gallery[i]["camera_id"],
            "gallery_lists": {},
        }
        for k in list_sizes:
            record["gallery_lists"][k] = _protocol_list(rng, gallery, i, pid, k, quirks)
        queries.append(record)
        qfeat.append(protos[pid] + noise * rng.standard_normal(dim))
    query_features = _normalize(np.asarray(qfeat).reshape(-1, dim)).astype(dtype)
    return World(gallery, queries, boxes, scores, features, query_features)


def _protocol_list(rng, gallery, query_image, pid, k, quirks):
    """A TestG-style list: positives first (the pid's first box), then negatives, k entries."""

    def first_box(i):
        return next(a["bbox"] for a in gallery[i]["annotations"] if a["person_id"] == pid)

    shows = [any(a["person_id"] == pid for a in r["annotations"]) for r in gallery]
    pos_images = [i for i in range(len(gallery)) if shows[i] and i != query_image]
    pos_images = pos_images[: max(1, k // 2)]
    negatives = [i for i in range(len(gallery)) if i not in pos_images and i != query_image]
    chosen = rng.permutation(negatives)[: max(0, k - len(pos_images))]
    images = pos_images + [int(i) for i in chosen]
    pos_index = list(range(len(pos_images)))
    pos_boxes = [first_box(i) for i in pos_images]
    if quirks and len(images) > len(pos_images) and rng.random() < 0.3:
        images[-1] = query_image  # the query image inside its own list (TestG100 q493, q2132)
        if rng.random() < 0.5:  # ... as a positive at its own box (q2132)
            pos_index.append(len(images) - 1)
            pos_boxes.append(first_box(query_image))
    if quirks and pos_index and rng.random() < 0.3:
        # a positive image listed twice, same box (TestG100 q1250) or another box
        j = pos_index[0]
        box = np.asarray(pos_boxes[0], dtype=np.float64)
        if rng.random() < 0.5:
            box = box + rng.normal(0, 8, 4)
        images.append(images[j])
        pos_index.append(len(images) - 1)
        pos_boxes.append(box.tolist())
    if quirks and images and rng.random() < 0.2:
        images.append(images[int(rng.integers(len(images)))])  # a repeat listed as negative
    return {
        "images": np.asarray(images, dtype=np.int32),
        "pos_index": np.asarray(pos_index, dtype=np.int32),
        "pos_boxes": np.asarray(pos_boxes, dtype=np.float32).reshape(-1, 4),
    }
