"""
Turning a re-ID crop into a scene (paper, "Data unification"; Tab. 4).

Re-ID crops lack the context of a scene, so each is placed on a canvas and the person's box on that
canvas becomes its detection annotation. Two operations are registered in
:data:`REID_CANVAS_REGISTRY` and chosen by ``cfg.HPPS.UNIFY.REID_CANVAS``:

* ``expand_resize`` (the paper's): the crop at a random place on a canvas whose height is a random
  ratio ``r ~ U[EXPAND_RATIO]`` of the crop's, the whole canvas then resized to the fixed canvas
  size ``(H, W)``. The person ends up ``H / r`` tall, so its scale varies, which the paper credits
  for scale-invariant re-ID features (the multi-scale matching problem). Implemented as the
  equivalent "resize the crop by ``H / (r h)``, paste it on an ``H x W`` canvas" (the background is
  one colour, so only the interpolation at the crop's border differs).
* ``random_paste``: the crop pasted at its own size at a random place on an ``H x W`` canvas (a
  crop larger than the canvas is first shrunk to fit, keeping its aspect ratio).

Scale at the model input (ours): the canvas IS the model input of its views. By default
(``HPPS.UNIFY.CANVAS_SIZE = ()``) ``(H, W)`` is drawn per canvas as the size detectron2's
``ResizeShortestEdge(INPUT.MIN_SIZE_TRAIN, INPUT.MAX_SIZE_TRAIN, INPUT.MIN_SIZE_TRAIN_SAMPLING)``
gives a frame of aspect ``HPPS.UNIFY.CANVAS_ASPECT`` (900 x 1200 for configs/pretrain.yaml,
256 x 341 for the 256 px synthetic configs), and the mapper does not resize canvases again
(:func:`hpps_d2.data.hybrid_mapper.build_view_augmentation` with ``canvas=True``; its view crop
keeps the person's whole box and does not rescale). So at the model input an expand_resize person is
``H / r`` pixels tall (120-320 px at the 900 px input with the default ratios, i.e. 2/15 to 16/45
of the input's shorter side for any input size) and a random_paste person keeps the crop's height.

Both return the canvas and the person's box on it; randomness comes from ``np.random`` (seeded per
data-loader worker by detectron2).
"""
from typing import Callable, Sequence, Tuple, Union

import cv2
import numpy as np
from detectron2.data import transforms as T
from detectron2.utils.registry import Registry

from .image_io import check_pixel_statistics

__all__ = [
    "REID_CANVAS_REGISTRY",
    "ExpandResize",
    "RandomPaste",
    "InputCanvasSize",
    "build_canvas_size",
    "build_reid_canvas",
    "canvas_fill",
]

REID_CANVAS_REGISTRY = Registry("REID_CANVAS")
REID_CANVAS_REGISTRY.__doc__ = """
Registry of re-ID canvas operations. Each entry is a function ``f(cfg) -> op`` named as the
paper names the operation; ``op(crop)`` takes an (h, w, 3) uint8 crop and returns
``(canvas (H, W, 3) uint8, box [x1, y1, x2, y2] float)``, the canvas at model-input scale (the
mapper does not resize it again).
"""

#: Canvas background per ``cfg.HPPS.UNIFY.CANVAS_FILL``.
_FILLS = {
    "pixel_mean": lambda cfg: tuple(float(v) for v in cfg.MODEL.PIXEL_MEAN),
    "black": lambda cfg: (0.0, 0.0, 0.0),
}


def canvas_fill(cfg) -> Tuple[float, float, float]:
    """The canvas background colour, in the channel order of ``cfg.INPUT.FORMAT``: for
    ``"pixel_mean"``, ``MODEL.PIXEL_MEAN`` as given, which the model applies channel by channel to
    images in that order (so the fill is zero after normalisation). ImageNet's mean written in the
    other order is refused (:func:`hpps_d2.data.image_io.check_pixel_statistics`)."""
    name = cfg.HPPS.UNIFY.CANVAS_FILL
    if name not in _FILLS:
        raise ValueError(f"HPPS.UNIFY.CANVAS_FILL must be one of {sorted(_FILLS)}, got {name!r}")
    if name == "pixel_mean":
        check_pixel_statistics(
            cfg.INPUT.FORMAT, cfg.MODEL.PIXEL_MEAN, cfg.MODEL.PIXEL_STD, "HPPS.UNIFY.CANVAS_FILL"
        )
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


class InputCanvasSize:
    """
    Draws the canvas size ``(H, W)`` a scene frame of aspect ``aspect`` (width / height) gets at the
    model input: detectron2's ``ResizeShortestEdge(min_sizes, max_size, sampling)`` applied to it
    (shorter side drawn from ``min_sizes``, longer side capped at ``max_size``; detectron2 v0.6
    data/transforms/augmentation_impl.py ``ResizeShortestEdge.get_transform`` /
    ``get_output_shape``).

    Args:
        min_sizes, max_size, sampling: ``INPUT.MIN_SIZE_TRAIN``, ``MAX_SIZE_TRAIN``,
            ``MIN_SIZE_TRAIN_SAMPLING``.
        aspect: width / height of the canvas frame, > 0.
    """

    _REF_HEIGHT = 3000  # a reference frame of the right aspect; only its shape is used

    def __init__(self, min_sizes, max_size: int, sampling: str, aspect: float):
        if not aspect > 0:
            raise ValueError(f"HPPS.UNIFY.CANVAS_ASPECT must be > 0 (width / height), got {aspect}")
        self.resize = T.ResizeShortestEdge(min_sizes, max_size, sampling)
        width = max(1, int(round(self._REF_HEIGHT * aspect)))
        self.frame = np.empty((self._REF_HEIGHT, width, 0), np.uint8)

    def __call__(self) -> Tuple[int, int]:
        t = self.resize.get_transform(self.frame)
        if isinstance(t, T.NoOpTransform):  # a drawn size of 0 means "no resize" in detectron2
            return self.frame.shape[:2]
        return int(t.new_h), int(t.new_w)

    def __repr__(self) -> str:
        aspect = self.frame.shape[1] / self.frame.shape[0]
        return f"InputCanvasSize({self.resize}, aspect {aspect:.4g})"


CanvasSize = Union[Sequence[int], Callable[[], Tuple[int, int]]]


def _size_fn(canvas_size: CanvasSize) -> Callable[[], Tuple[int, int]]:
    if callable(canvas_size):
        return canvas_size
    h, w = (int(v) for v in canvas_size)
    if h < 1 or w < 1:
        raise ValueError(f"canvas size must be (height, width) >= 1, got {tuple(canvas_size)}")
    return lambda: (h, w)


class ExpandResize:
    """
    Args:
        canvas_size: ``(H, W)`` of the output, or a callable drawing it per call
            (:class:`InputCanvasSize`).
        ratio_range: (r_min, r_max), r_min >= 1: canvas height / crop height before the resize,
            drawn uniformly; the person ends up ``H / r`` tall. A crop too wide for that (aspect
            w / h > r W / H, never the case for re-ID crops) is fitted to the width instead.
        fill: background colour (3 values, image channel order).

    ``op(crop (h, w, 3) uint8) -> (canvas (H, W, 3) uint8, box [x1, y1, x2, y2] float)``.
    """

    def __init__(
        self, canvas_size: CanvasSize, ratio_range: Sequence[float], fill: Sequence[float]
    ):
        self.size = _size_fn(canvas_size)
        self.r_min, self.r_max = (float(v) for v in ratio_range)
        if not 1.0 <= self.r_min <= self.r_max:
            raise ValueError(f"expand ratio range must satisfy 1 <= r_min <= r_max, got {ratio_range}")
        self.fill = fill

    def __call__(self, crop: np.ndarray) -> Tuple[np.ndarray, list]:
        _check_crop(crop)
        out_h, out_w = self.size()
        h, w = crop.shape[:2]
        r = np.random.uniform(self.r_min, self.r_max)
        scale = min(out_h / (r * h), out_w / w)
        ph = min(out_h, max(1, int(round(h * scale))))
        pw = min(out_w, max(1, int(round(w * scale))))
        y0 = np.random.randint(0, out_h - ph + 1)
        x0 = np.random.randint(0, out_w - pw + 1)
        canvas = _blank(out_h, out_w, self.fill)
        canvas[y0 : y0 + ph, x0 : x0 + pw] = _resize(crop, ph, pw)
        return canvas, [float(x0), float(y0), float(x0 + pw), float(y0 + ph)]


class RandomPaste:
    """
    Args:
        canvas_size: ``(H, W)`` of the canvas, or a callable drawing it per call. A crop larger
            than the canvas is first shrunk to fit, keeping its aspect ratio.
        fill: background colour (3 values, image channel order).
    """

    def __init__(self, canvas_size: CanvasSize, fill: Sequence[float]):
        self.size = _size_fn(canvas_size)
        self.fill = fill

    def __call__(self, crop: np.ndarray) -> Tuple[np.ndarray, list]:
        _check_crop(crop)
        out_h, out_w = self.size()
        h, w = crop.shape[:2]
        scale = min(1.0, out_h / h, out_w / w)
        if scale < 1.0:
            h, w = max(1, int(h * scale)), max(1, int(w * scale))
            crop = _resize(crop, h, w)
        y0 = np.random.randint(0, out_h - h + 1)
        x0 = np.random.randint(0, out_w - w + 1)
        canvas = _blank(out_h, out_w, self.fill)
        canvas[y0 : y0 + h, x0 : x0 + w] = crop
        return canvas, [float(x0), float(y0), float(x0 + w), float(y0 + h)]


def build_canvas_size(cfg) -> CanvasSize:
    """
    ``HPPS.UNIFY.CANVAS_SIZE`` if given, else the model-input size of a ``CANVAS_ASPECT`` frame
    (:class:`InputCanvasSize` from ``cfg.INPUT``'s training sizes).
    """
    u = cfg.HPPS.UNIFY
    if len(u.CANVAS_SIZE) == 0:
        i = cfg.INPUT
        return InputCanvasSize(
            i.MIN_SIZE_TRAIN, i.MAX_SIZE_TRAIN, i.MIN_SIZE_TRAIN_SAMPLING, u.CANVAS_ASPECT
        )
    if len(u.CANVAS_SIZE) != 2:
        raise ValueError(
            f"HPPS.UNIFY.CANVAS_SIZE must be () or (height, width), got {tuple(u.CANVAS_SIZE)}"
        )
    return tuple(int(v) for v in u.CANVAS_SIZE)


@REID_CANVAS_REGISTRY.register()
def expand_resize(cfg) -> ExpandResize:
    return ExpandResize(build_canvas_size(cfg), cfg.HPPS.UNIFY.EXPAND_RATIO, canvas_fill(cfg))


@REID_CANVAS_REGISTRY.register()
def random_paste(cfg) -> RandomPaste:
    return RandomPaste(build_canvas_size(cfg), canvas_fill(cfg))


def build_reid_canvas(cfg):
    """The canvas operation named by ``cfg.HPPS.UNIFY.REID_CANVAS``."""
    return REID_CANVAS_REGISTRY.get(cfg.HPPS.UNIFY.REID_CANVAS)(cfg)
