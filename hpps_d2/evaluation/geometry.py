"""
Box and polygon geometry of the evaluators, vectorised with numpy.

Boxes are ``[x1, y1, x2, y2]`` in the continuous convention of every person-search evaluator
(docs/datasets.md section 0): the area is ``(x2 - x1) * (y2 - y1)``, no ``+1``. The IoU is computed
with exactly the arithmetic of the reference code, ``inter / (area_a + area_b - inter)``, so that a
threshold test gives the same answer; an empty union gives 0 instead of a division by zero.
"""

import numpy as np

__all__ = [
    "aligned_iou",
    "box_area",
    "pairwise_iou",
    "polygon_area",
    "polygon_box_intersection",
    "polygon_box_iou",
    "search_iou_threshold",
]


def box_area(boxes: np.ndarray) -> np.ndarray:
    """
    Args:
        boxes: (N, 4) XYXY.

    Returns:
        (N,) float64 areas (negative sizes are not clipped, as in the reference code).
    """
    b = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    return (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])


def aligned_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """
    IoU of ``a[k]`` with ``b[k]``.

    Args:
        a, b: (K, 4) XYXY boxes (broadcastable against each other).

    Returns:
        (K,) float64 IoU; 0 where the union is not positive.
    """
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    iw = np.maximum(0.0, np.minimum(a[..., 2], b[..., 2]) - np.maximum(a[..., 0], b[..., 0]))
    ih = np.maximum(0.0, np.minimum(a[..., 3], b[..., 3]) - np.maximum(a[..., 1], b[..., 1]))
    inter = iw * ih
    union = (a[..., 2] - a[..., 0]) * (a[..., 3] - a[..., 1])
    union = union + (b[..., 2] - b[..., 0]) * (b[..., 3] - b[..., 1]) - inter
    out = np.zeros(np.broadcast(inter, union).shape, dtype=np.float64)
    np.divide(inter, union, out=out, where=union > 0)
    return out


def pairwise_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """
    Args:
        a: (N, 4) XYXY; b: (M, 4) XYXY.

    Returns:
        (N, M) float64 IoU.
    """
    a = np.asarray(a, dtype=np.float64).reshape(-1, 4)
    b = np.asarray(b, dtype=np.float64).reshape(-1, 4)
    return aligned_iou(a[:, None, :], b[None, :, :])


def search_iou_threshold(gt_boxes: np.ndarray) -> np.ndarray:
    """
    The person-search match threshold of each target box, ``min(0.5, w*h / ((w+10)*(h+10)))``
    (docs/datasets.md section 9), which relaxes the 0.5 IoU for small persons.

    Args:
        gt_boxes: (T, 4) XYXY target boxes.

    Returns:
        (T,) float64 thresholds.
    """
    g = np.asarray(gt_boxes, dtype=np.float64).reshape(-1, 4)
    w = g[:, 2] - g[:, 0]
    h = g[:, 3] - g[:, 1]
    return np.minimum(0.5, (w * h) / ((w + 10) * (h + 10)))


def polygon_area(polygon: np.ndarray) -> float:
    """
    Area of a simple polygon by the shoelace formula (orientation ignored).

    Args:
        polygon: (V, 2) vertices ``[x, y]``, not repeated at the end.
    """
    p = np.asarray(polygon, dtype=np.float64).reshape(-1, 2)
    if len(p) < 3:
        return 0.0
    x, y = p[:, 0], p[:, 1]
    return float(abs(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1))) / 2.0)


def polygon_box_intersection(polygon: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """
    Exact area of ``polygon`` intersected with each axis-aligned box, for all boxes at once.

    For each vertical line ``x`` inside a box ``[x1, x2] x [y1, y2]``, the signed sum over polygon
    edges crossing ``x`` of ``clip(y_edge(x), y1, y2) - y1`` is the length of the polygon inside the
    box on that line. Integrating over ``x`` edge by edge gives the area: for each edge, the
    integrand is piecewise linear with breakpoints where the edge leaves ``[y1, y2]``, so a
    trapezoid sum over the (at most 3) pieces is exact. For a self-intersecting polygon the result
    is the winding-number-weighted area, not a repaired polygon's.

    Args:
        polygon: (V, 2) vertices of a simple polygon, V >= 3.
        boxes: (N, 4) XYXY.

    Returns:
        (N,) float64 intersection areas.
    """
    p = np.asarray(polygon, dtype=np.float64).reshape(-1, 2)
    b = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    if len(p) < 3 or len(b) == 0:
        return np.zeros(len(b), dtype=np.float64)
    xa, ya = p[:, 0], p[:, 1]
    xb, yb = np.roll(xa, -1), np.roll(ya, -1)
    moving = xb != xa  # vertical edges add nothing
    xa, ya, xb, yb = xa[moving], ya[moving], xb[moving], yb[moving]
    sign = np.sign(xb - xa)
    slope = (yb - ya) / (xb - xa)
    # (N, E): one row per box, one column per edge
    x1, y1, x2, y2 = (b[:, k : k + 1] for k in range(4))
    left = np.maximum(np.minimum(xa, xb), x1)
    right = np.minimum(np.maximum(xa, xb), x2)
    right = np.maximum(left, right)  # an edge outside the box's x-range gives an empty piece
    with np.errstate(divide="ignore", invalid="ignore"):
        cross_lo = np.where(slope != 0, xa + (y1 - ya) / slope, left)
        cross_hi = np.where(slope != 0, xa + (y2 - ya) / slope, left)
    points = np.stack(
        [left, np.clip(cross_lo, left, right), np.clip(cross_hi, left, right), right], axis=-1
    )
    points.sort(axis=-1)
    y = ya[:, None] + (points - xa[:, None]) * slope[:, None]
    f = np.clip(y, y1[..., None], y2[..., None]) - y1[..., None]
    pieces = np.diff(points, axis=-1) * (f[..., 1:] + f[..., :-1]) / 2.0
    return np.abs((pieces.sum(axis=-1) * sign).sum(axis=-1))


def polygon_box_iou(polygon: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """
    IoU of a polygon with each box: ``inter / (area(polygon) + area(box) - inter)``.

    Args:
        polygon: (V, 2) vertices; boxes: (N, 4) XYXY.

    Returns:
        (N,) float64; 0 where the union is not positive.
    """
    inter = polygon_box_intersection(polygon, boxes)
    union = polygon_area(polygon) + box_area(boxes) - inter
    out = np.zeros_like(inter)
    np.divide(inter, union, out=out, where=union > 0)
    return out
