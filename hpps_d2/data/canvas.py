"""
Turning a re-ID crop into a scene (paper, "Data unification"; Tab. 4).

Re-ID crops lack the context of a scene, so each is placed on a canvas and the person's box on that
canvas becomes its detection annotation. Two operations are registered in
:data:`REID_CANVAS_REGISTRY` and chosen by ``cfg.HPPS.UNIFY.REID_CANVAS``:

* ``expand_resize`` (the paper's): a canvas whose size is a random ratio ``r`` of the crop's, the
  crop at a random place on it, the whole canvas then resized to the fixed ``CANVAS_SIZE``. The
  person ends up ``1/r`` of the canvas height tall, so its scale varies, which the paper credits for
  scale-invariant re-ID features (the multi-scale matching problem).
* ``random_paste``: the crop pasted at its own size at a random place on a fixed-size canvas.

Both return the canvas and the person's box on it; randomness comes from ``np.random`` (seeded per
data-loader worker by detectron2).
"""
from typing import Sequence, Tuple

import cv2
import numpy as np
from detectron2.utils.registry import Registry

__all__ = ["REID_CANVAS_REGISTRY", "ExpandResize", "RandomPaste", "build_reid_canvas", "canvas_fill"]

REID_CANVAS_REGISTRY = Registry("REID_CANVAS")
REID_CANVAS_REGISTRY.__doc__ = """
Registry of re-ID canvas operations. Each entry is a function ``f(cfg) -> op`` named as the
paper names the operation; ``op(crop)`` takes an (H, W, 3) uint8 crop and returns
``(canvas (H', W', 3) uint8, box [x1, y1, x2, y2] float)``.
"""

#: Canvas background per ``cfg.HPPS.UNIFY.CANVAS_FILL``.
_FILLS = {
    "pixel_mean": lambda cfg: tuple(float(v) for v in cfg.MODEL.PIXEL_MEAN),
    "black": lambda cfg: (0.0, 0.0, 0.0),
}


def canvas_fill(cfg) -> Tuple[float, float, float]:
    """The canvas background colour, in the channel order of ``cfg.INPUT.FORMAT``."""
    name = cfg.HPPS.UNIFY.CANVAS_FILL
    if name not in _FILLS:
        raise ValueError(f"HPPS.UNIFY.CANVAS_FILL must be one of {sorted(_FILLS)}, got {name!r}")
    return _FILLS[name](cfg)


def _resize(img: np.ndarray, height: int, width: int) -> np.ndarray:
    shrink = height * width < img.shape[0] * img.shape[1]
    return cv2.resize(img, (width, height), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)


def _blank(height: int, width: int, fill: Sequence[float]) -> np.ndarray:
    canvas = np.empty((height, width, 3), dtype=np.uint8)
    canvas[...] = np.clip(np.round(np.asarray(fill, dtype=np.float32)), 0, 255).astype(np.uint8)
    return canvas


def _check_crop(crop: np.ndarray) -> None:
    if crop.ndim != 3 or crop.shape[2] != 3 or crop.shape[0] < 1 or crop.shape[1] < 1:
        raise ValueError(f"a re-ID crop must be (H, W, 3) with H, W >= 1, got shape {crop.shape}")


class ExpandResize:
    """
    Args:
        canvas_size: (height, width) of the output.
        ratio_range: (r_min, r_max), r_min >= 1: canvas height / crop height, drawn uniformly.
        fill: background colour (3 values, image channel order).
    """

    def __init__(self, canvas_size: Sequence[int], ratio_range: Sequence[float], fill: Sequence[float]):
        self.out_h, self.out_w = (int(v) for v in canvas_size)
        self.r_min, self.r_max = (float(v) for v in ratio_range)
        if not 1.0 <= self.r_min <= self.r_max:
            raise ValueError(f"expand ratio range must satisfy 1 <= r_min <= r_max, got {ratio_range}")
        self.fill = fill

    def __call__(self, crop: np.ndarray) -> Tuple[np.ndarray, list]:
        _check_crop(crop)
        h, w = crop.shape[:2]
        r = np.random.uniform(self.r_min, self.r_max)
        canvas_h = max(h, int(round(r * h)))
        canvas_w = max(w, int(round(canvas_h * self.out_w / self.out_h)))
        y0 = np.random.randint(0, canvas_h - h + 1)
        x0 = np.random.randint(0, canvas_w - w + 1)
        canvas = _blank(canvas_h, canvas_w, self.fill)
        canvas[y0 : y0 + h, x0 : x0 + w] = crop
        sy, sx = self.out_h / canvas_h, self.out_w / canvas_w
        box = [x0 * sx, y0 * sy, (x0 + w) * sx, (y0 + h) * sy]
        return _resize(canvas, self.out_h, self.out_w), box


class RandomPaste:
    """
    Args:
        canvas_size: (height, width) of the canvas. A crop larger than the canvas is first shrunk to
            fit, keeping its aspect ratio.
        fill: background colour (3 values, image channel order).
    """

    def __init__(self, canvas_size: Sequence[int], fill: Sequence[float]):
        self.out_h, self.out_w = (int(v) for v in canvas_size)
        self.fill = fill

    def __call__(self, crop: np.ndarray) -> Tuple[np.ndarray, list]:
        _check_crop(crop)
        h, w = crop.shape[:2]
        scale = min(1.0, self.out_h / h, self.out_w / w)
        if scale < 1.0:
            h, w = max(1, int(h * scale)), max(1, int(w * scale))
            crop = _resize(crop, h, w)
        y0 = np.random.randint(0, self.out_h - h + 1)
        x0 = np.random.randint(0, self.out_w - w + 1)
        canvas = _blank(self.out_h, self.out_w, self.fill)
        canvas[y0 : y0 + h, x0 : x0 + w] = crop
        return canvas, [float(x0), float(y0), float(x0 + w), float(y0 + h)]


@REID_CANVAS_REGISTRY.register()
def expand_resize(cfg) -> ExpandResize:
    u = cfg.HPPS.UNIFY
    return ExpandResize(u.CANVAS_SIZE, u.EXPAND_RATIO, canvas_fill(cfg))


@REID_CANVAS_REGISTRY.register()
def random_paste(cfg) -> RandomPaste:
    return RandomPaste(cfg.HPPS.UNIFY.CANVAS_SIZE, canvas_fill(cfg))


def build_reid_canvas(cfg):
    """The canvas operation named by ``cfg.HPPS.UNIFY.REID_CANVAS``."""
    return REID_CANVAS_REGISTRY.get(cfg.HPPS.UNIFY.REID_CANVAS)(cfg)
