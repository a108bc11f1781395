"""Pictures of dataset records and of the unified two-view inputs, for checking data by eye."""
from typing import List, Optional, Sequence

import numpy as np
from detectron2.structures import BoxMode
from detectron2.utils.visualizer import Visualizer

__all__ = ["draw_boxes", "draw_record", "draw_views", "draw_search_result", "side_by_side"]

_PERSON = (0.1, 0.9, 0.2)
_UNLABELED = (1.0, 0.85, 0.1)
_IGNORE = (0.55, 0.55, 0.55)


def _to_rgb(image: np.ndarray, image_format: str) -> np.ndarray:
    return image[:, :, ::-1] if image_format == "BGR" else image


def draw_boxes(
    image_rgb: np.ndarray,
    boxes: Sequence[Sequence[float]],
    labels: Sequence[str],
    colors: Sequence[tuple],
) -> np.ndarray:
    """Draw XYXY boxes with text labels; returns an (H, W, 3) uint8 RGB image."""
    vis = Visualizer(image_rgb)
    if len(boxes):
        vis.overlay_instances(boxes=np.asarray(boxes, dtype=np.float32).reshape(-1, 4), labels=list(labels), assigned_colors=list(colors))
    return vis.get_output().get_image()


def draw_record(record: dict, image: np.ndarray, image_format: str = "BGR") -> np.ndarray:
    """
    Draw a scene, crop or query record of :mod:`hpps_d2.data.datasets` on its image.

    Labeled persons are green with their id, unlabeled persons yellow ("?"), ignore regions grey
    ("ignore"); a query box is drawn as "query <id>". A crop record gets its id in the title box.
    """
    boxes, labels, colors = [], [], []
    for a in record.get("annotations", ()):
        boxes.append(BoxMode.convert(a["bbox"], a.get("bbox_mode", BoxMode.XYXY_ABS), BoxMode.XYXY_ABS))
        if a.get("iscrowd", 0):
            labels.append("ignore"), colors.append(_IGNORE)
        elif a["person_id"] < 0:
            labels.append("?"), colors.append(_UNLABELED)
        else:
            labels.append(str(a["person_id"])), colors.append(_PERSON)
    if "query" in record:
        boxes.append(record["query"]["bbox"])
        labels.append(f"query {record['query']['person_id']}")
        colors.append((0.2, 0.4, 1.0))
    if "person_id" in record and "annotations" not in record:
        h, w = image.shape[:2]
        boxes.append([0, 0, w, h])
        labels.append(f"id {record['person_id']} cam {record.get('camera_id', '?')}")
        colors.append(_PERSON if record["person_id"] >= 0 else _UNLABELED)
    return draw_boxes(_to_rgb(image, image_format), boxes, labels, colors)


def draw_views(mapped: dict, image_format: str = "BGR") -> List[np.ndarray]:
    """Draw each view of a :class:`~hpps_d2.data.hybrid_mapper.HybridDatasetMapper` output."""
    out = []
    for v in mapped["views"]:
        img = v["image"].permute(1, 2, 0).numpy()
        inst = v["instances"]
        boxes = inst.gt_boxes.tensor.tolist() + v["ignore_boxes"].tensor.tolist()
        labels = [f"id {p}" for p in inst.gt_pids.tolist()] + ["ignore"] * len(v["ignore_boxes"])
        colors = [_PERSON] * len(inst) + [_IGNORE] * len(v["ignore_boxes"])
        out.append(draw_boxes(_to_rgb(img, image_format), boxes, labels, colors))
    return out


def side_by_side(images: Sequence[np.ndarray], gap: int = 8, height: Optional[int] = None) -> np.ndarray:
    """Concatenate RGB images horizontally, padded to a common height (white gap between)."""
    import cv2

    if height is None:
        height = max(i.shape[0] for i in images)
    parts = []
    for img in images:
        scale = height / img.shape[0]
        img = cv2.resize(img, (max(1, int(round(img.shape[1] * scale))), height))
        parts += [img, np.full((height, gap, 3), 255, np.uint8)]
    return np.concatenate(parts[:-1], axis=1)


def draw_search_result(
    query_rgb: np.ndarray,
    query_box: Sequence[float],
    gallery: Sequence[tuple],
    height: int = 360,
) -> np.ndarray:
    """
    One picture of a search: the query crop, then each gallery image with its matched box.

    Args:
        query_rgb: (H, W, 3) RGB query image; query_box: XYXY.
        gallery: (rgb image, XYXY box, similarity, correct or None) per match, best first; a box
            is green when correct is True, red when False, yellow when unknown.
    """
    x1, y1, x2, y2 = (int(round(v)) for v in query_box)
    crop = np.ascontiguousarray(query_rgb[max(0, y1) : y2, max(0, x1) : x2])
    panels = [draw_boxes(crop, [[0, 0, crop.shape[1], crop.shape[0]]], ["query"], [(0.2, 0.4, 1.0)])]
    for rank, (img, box, sim, correct) in enumerate(gallery, 1):
        color = _UNLABELED if correct is None else (_PERSON if correct else (0.9, 0.1, 0.1))
        panels.append(draw_boxes(img, [box], [f"#{rank} {sim:.2f}"], [color]))
    return side_by_side(panels, height=height)
