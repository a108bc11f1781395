"""Pictures of dataset records and of the unified two-view inputs, for checking data by eye."""
from typing import List, Optional, Sequence

import numpy as np
from detectron2.structures import BoxMode
from detectron2.utils.visualizer import Visualizer

__all__ = [
    "LABELED_RGB",
    "UNLABELED_RGB",
    "IGNORE_RGB",
    "QUERY_RGB",
    "LEGEND",
    "add_legend",
    "draw_boxes",
    "draw_record",
    "draw_views",
    "draw_search_result",
    "side_by_side",
]

#: Box colours (RGB uint8) of a labeled person, an unlabeled person ("?"), an ignore region
#: (dashed and hatched) and a query box.
LABELED_RGB = (0, 200, 0)
UNLABELED_RGB = (255, 190, 0)
IGNORE_RGB = (255, 0, 255)
QUERY_RGB = (40, 100, 255)

#: What the legend strip under each picture names: (text, colour).
LEGEND = (
    ("labeled person (id)", LABELED_RGB),
    ("unlabeled person (?)", UNLABELED_RGB),
    ("ignore region", IGNORE_RGB),
)

# The same colours in 0..1, for detectron2's Visualizer (draw_search_result).
_PERSON = tuple(c / 255 for c in LABELED_RGB)
_UNLABELED = tuple(c / 255 for c in UNLABELED_RGB)

_FONT = 0  # cv2.FONT_HERSHEY_SIMPLEX
_FONT_SCALE = 0.4
_LINE = 16  # legend line height in pixels


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


def _dashed_rectangle(img: np.ndarray, box: Sequence[int], color: tuple, dash: int = 4) -> None:
    import cv2

    x1, y1, x2, y2 = box
    for x in range(x1, x2, 2 * dash):
        cv2.line(img, (x, y1), (min(x + dash - 1, x2), y1), color, 1)
        cv2.line(img, (x, y2), (min(x + dash - 1, x2), y2), color, 1)
    for y in range(y1, y2, 2 * dash):
        cv2.line(img, (x1, y), (x1, min(y + dash - 1, y2)), color, 1)
        cv2.line(img, (x2, y), (x2, min(y + dash - 1, y2)), color, 1)


def _hatch(img: np.ndarray, box: Sequence[int], color: tuple, step: int = 8) -> None:
    """Thin diagonal lines inside ``box``, at half opacity (the region stays visible)."""
    import cv2

    x1, y1, x2, y2 = box
    if x2 <= x1 or y2 <= y1:
        return
    region = np.ascontiguousarray(img[y1 + 1 : y2, x1 + 1 : x2])
    lines = region.copy()
    h, w = region.shape[:2]
    for d in range(-h, w, step):
        cv2.line(lines, (d, h), (d + h, 0), color, 1)
    img[y1 + 1 : y2, x1 + 1 : x2] = (region.astype(np.uint16) + lines) // 2


def _draw_kind_boxes(image_rgb: np.ndarray, boxes, labels, kinds) -> np.ndarray:
    """Boxes with a 2-px solid edge (labeled / unlabeled / query) or dashed + hatched (ignore)."""
    import cv2

    img = np.ascontiguousarray(image_rgb, dtype=np.uint8).copy()
    h, w = img.shape[:2]
    colour = {"labeled": LABELED_RGB, "unlabeled": UNLABELED_RGB, "ignore": IGNORE_RGB, "query": QUERY_RGB}
    for box, label, kind in zip(boxes, labels, kinds):
        x1, y1, x2, y2 = (int(round(v)) for v in box)
        x1, x2 = min(max(x1, 0), w - 1), min(max(x2, 0), w - 1)
        y1, y2 = min(max(y1, 0), h - 1), min(max(y2, 0), h - 1)
        c = colour[kind]
        if kind == "ignore":
            _hatch(img, (x1, y1, x2, y2), c)
            _dashed_rectangle(img, (x1, y1, x2, y2), c)
        else:
            cv2.rectangle(img, (x1, y1), (x2, y2), c, 2)
        if label:
            (tw, th), _ = cv2.getTextSize(label, _FONT, _FONT_SCALE, 1)
            ty = y1 - 3 if y1 - th - 4 >= 0 else min(y1 + th + 3, h - 1)
            cv2.rectangle(img, (x1, ty - th - 2), (x1 + tw + 2, ty + 2), (0, 0, 0), -1)
            cv2.putText(img, label, (x1 + 1, ty), _FONT, _FONT_SCALE, c, 1, cv2.LINE_AA)
    return img


def add_legend(image_rgb: np.ndarray, entries: Sequence[tuple] = LEGEND) -> np.ndarray:
    """
    Append a white legend strip under an (H, W, 3) uint8 RGB image: one line per ``(text, rgb)``
    entry, a swatch of the colour then the text. Returns an (H + 16 * len(entries) + 4, W', 3)
    image, W' >= W (the picture is padded with white when the legend is wider).
    """
    import cv2

    h, w = image_rgb.shape[:2]
    text_w = max(cv2.getTextSize(t, _FONT, _FONT_SCALE, 1)[0][0] for t, _ in entries)
    width = max(w, text_w + 30)
    out = np.full((h + _LINE * len(entries) + 4, width, 3), 255, np.uint8)
    out[:h, :w] = image_rgb
    for i, (text, rgb) in enumerate(entries):
        y = h + 4 + i * _LINE
        if rgb == IGNORE_RGB:
            _hatch(out, (4, y, 20, y + 11), rgb, step=4)
            _dashed_rectangle(out, (4, y, 20, y + 11), rgb, dash=2)
        else:
            cv2.rectangle(out, (4, y), (20, y + 11), rgb, 2)
        cv2.putText(out, text, (26, y + 10), _FONT, _FONT_SCALE, (0, 0, 0), 1, cv2.LINE_AA)
    return out


def draw_record(
    record: dict, image: np.ndarray, image_format: str = "BGR", legend: bool = True
) -> np.ndarray:
    """
    Draw a scene, crop or query record of :mod:`hpps_d2.data.datasets` on its image.

    Labeled persons are green with their id, unlabeled persons orange-yellow ("?"), ignore regions
    magenta, dashed and hatched ("ignore"); a query box is blue, "query <id>". A crop record gets
    its id in the title box. With ``legend``, a strip naming the colours (:data:`LEGEND`) is
    added below (:func:`add_legend`).

    Returns:
        (H', W', 3) uint8 RGB image; H' > H with the legend.
    """
    boxes, labels, kinds = [], [], []
    for a in record.get("annotations", ()):
        boxes.append(BoxMode.convert(a["bbox"], a.get("bbox_mode", BoxMode.XYXY_ABS), BoxMode.XYXY_ABS))
        if a.get("iscrowd", 0):
            labels.append("ignore"), kinds.append("ignore")
        elif a["person_id"] < 0:
            labels.append("?"), kinds.append("unlabeled")
        else:
            labels.append(str(a["person_id"])), kinds.append("labeled")
    if "query" in record:
        boxes.append(record["query"]["bbox"])
        labels.append(f"query {record['query']['person_id']}")
        kinds.append("query")
    if "person_id" in record and "annotations" not in record:
        h, w = image.shape[:2]
        boxes.append([0, 0, w, h])
        labels.append(f"id {record['person_id']} cam {record.get('camera_id', '?')}")
        kinds.append("labeled" if record["person_id"] >= 0 else "unlabeled")
    out = _draw_kind_boxes(_to_rgb(image, image_format), boxes, labels, kinds)
    if not legend:
        return out
    entries = LEGEND + ((("query", QUERY_RGB),) if "query" in record else ())
    return add_legend(out, entries)


def draw_views(mapped: dict, image_format: str = "BGR") -> List[np.ndarray]:
    """
    Draw each view of a :class:`~hpps_d2.data.hybrid_mapper.HybridDatasetMapper` output, in the
    colours of :func:`draw_record` (a negative unified id is an unlabeled person, "?"); no legend
    (add one under the row of views with :func:`add_legend`).
    """
    out = []
    for v in mapped["views"]:
        img = v["image"].permute(1, 2, 0).numpy()
        inst = v["instances"]
        pids = inst.gt_pids.tolist()
        boxes = inst.gt_boxes.tensor.tolist() + v["ignore_boxes"].tensor.tolist()
        labels = [f"id {p}" if p >= 0 else "?" for p in pids] + ["ignore"] * len(v["ignore_boxes"])
        kinds = ["labeled" if p >= 0 else "unlabeled" for p in pids] + ["ignore"] * len(v["ignore_boxes"])
        out.append(_draw_kind_boxes(_to_rgb(img, image_format), boxes, labels, kinds))
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
