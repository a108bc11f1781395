"""
Augmentations of the two views, as detectron2 ``Augmentation`` s.

* Photometric (SimSiam-style): :class:`ColorJitter`, :class:`RandomGrayscale`,
  :class:`GaussianBlur`. They change pixel values only, so boxes pass through untouched
  (``ColorTransform``). Each takes the image channel order (``"BGR"`` or ``"RGB"``) because
  grayscale weights depend on it.
* Geometric: :class:`RandomCropKeepBoxes`, a crop that never cuts the given boxes (used on re-ID
  canvases, whose only person must survive the view).
"""
import cv2
import numpy as np
from detectron2.data import transforms as T

__all__ = ["ColorJitter", "RandomGrayscale", "GaussianBlur", "RandomCropKeepBoxes"]

# ITU-R 601 luma weights, in RGB order.
_LUMA_RGB = np.array([0.299, 0.587, 0.114], dtype=np.float32)


def _luma(img: np.ndarray, image_format: str) -> np.ndarray:
    """(H, W, 3) float32 -> (H, W, 1) float32 luma."""
    w = _LUMA_RGB if image_format == "RGB" else _LUMA_RGB[::-1]
    return (img @ w)[..., None]


def _check_format(image_format: str) -> str:
    if image_format not in ("BGR", "RGB"):
        raise ValueError(f"image_format must be 'BGR' or 'RGB', got {image_format!r}")
    return image_format


class ColorJitter(T.Augmentation):
    """
    torchvision-style colour jitter: brightness, contrast, saturation and hue factors drawn
    uniformly, applied in a random order.

    Args:
        brightness, contrast, saturation: factor drawn from [max(0, 1 - v), 1 + v].
        hue: shift drawn from [-hue, hue], as a fraction of the hue circle (<= 0.5).
        image_format: channel order of the images.
    """

    def __init__(self, brightness=0.4, contrast=0.4, saturation=0.4, hue=0.1, image_format="BGR"):
        super().__init__()
        assert 0 <= hue <= 0.5, hue
        self.brightness, self.contrast, self.saturation, self.hue = brightness, contrast, saturation, hue
        self.image_format = _check_format(image_format)

    def get_transform(self, image):
        def factor(v):
            return np.random.uniform(max(0.0, 1.0 - v), 1.0 + v)

        ops = [
            (_brightness, factor(self.brightness)),
            (_contrast, factor(self.contrast)),
            (_saturation, factor(self.saturation)),
            (_hue, np.random.uniform(-self.hue, self.hue)),
        ]
        plan = [ops[i] for i in np.random.permutation(len(ops))]
        fmt = self.image_format

        def apply(img: np.ndarray) -> np.ndarray:
            out = img.astype(np.float32)
            for op, f in plan:
                out = np.clip(op(out, f, fmt), 0, 255)
            return out.astype(np.uint8)

        return T.ColorTransform(apply)


# Each adjustment maps a float32 (H, W, 3) image in [0, 255] and a factor to a new float32 image.
def _brightness(img, f, fmt):
    return img * f


def _contrast(img, f, fmt):
    mean = _luma(img, fmt).mean()
    return (img - mean) * f + mean


def _saturation(img, f, fmt):
    gray = _luma(img, fmt)
    return (img - gray) * f + gray


def _hue(img, shift, fmt):
    if int(round(shift * 180)) == 0:  # OpenCV hue has 180 steps; the HSV round trip is lossy
        return img
    return _shift_hue(img.astype(np.uint8), shift, fmt).astype(np.float32)


def _shift_hue(img: np.ndarray, shift: float, image_format: str) -> np.ndarray:
    """Rotate the hue of a uint8 image by ``shift`` of the hue circle."""
    to_hsv, from_hsv = (
        (cv2.COLOR_RGB2HSV, cv2.COLOR_HSV2RGB)
        if image_format == "RGB"
        else (cv2.COLOR_BGR2HSV, cv2.COLOR_HSV2BGR)
    )
    hsv = cv2.cvtColor(np.ascontiguousarray(img), to_hsv)
    # OpenCV's 8-bit hue is in [0, 180).
    hsv[..., 0] = ((hsv[..., 0].astype(np.int32) + int(round(shift * 180))) % 180).astype(np.uint8)
    return cv2.cvtColor(hsv, from_hsv)


class RandomGrayscale(T.Augmentation):
    """Replace all three channels by the luma with probability ``prob``."""

    def __init__(self, prob=0.2, image_format="BGR"):
        super().__init__()
        self.prob = prob
        self.image_format = _check_format(image_format)

    def get_transform(self, image):
        if np.random.uniform() >= self.prob:
            return T.NoOpTransform()
        fmt = self.image_format

        def apply(img: np.ndarray) -> np.ndarray:
            gray = np.clip(_luma(img.astype(np.float32), fmt), 0, 255).astype(np.uint8)
            return np.repeat(gray, 3, axis=2)

        return T.ColorTransform(apply)


class GaussianBlur(T.Augmentation):
    """Gaussian blur with sigma drawn uniformly from ``sigma`` (pixels), with probability ``prob``."""

    def __init__(self, prob=0.5, sigma=(0.1, 2.0)):
        super().__init__()
        self.prob = prob
        self.sigma = sigma

    def get_transform(self, image):
        if np.random.uniform() >= self.prob:
            return T.NoOpTransform()
        s = float(np.random.uniform(*self.sigma))
        return T.ColorTransform(lambda img: cv2.GaussianBlur(img, (0, 0), s))


class RandomCropKeepBoxes(T.Augmentation):
    """
    A random crop whose window contains every given box whole; no resize.

    The window size is drawn as detectron2's ``RandomCrop(crop_type, crop_size)`` draws it
    (detectron2 v0.6 data/transforms/augmentation_impl.py L354-413), grown where needed to the
    union of the boxes (clamped to the image), and its position is drawn uniformly among the
    integer positions that keep that union inside. detectron2 constrains a crop by one instance
    too, but only keeps that instance's centre (``gen_crop_transform_with_instance``, v0.6
    data/detection_utils.py L534-561); keeping the whole box is ours, so that a re-ID canvas's
    only person is never cut (it would turn into an ignore region and leave the view empty).

    Reads ``boxes`` (N, 4) float XYXY from the ``AugInput`` (``None`` or N = 0: a plain
    ``RandomCrop``).
    """

    def __init__(self, crop_type: str, crop_size):
        super().__init__()
        self.crop = T.RandomCrop(crop_type, crop_size)

    def get_transform(self, image, boxes):
        h, w = image.shape[:2]
        ch, cw = self.crop.get_crop_size((h, w))
        if boxes is None or len(boxes) == 0:
            x0, y0 = np.random.randint(w - cw + 1), np.random.randint(h - ch + 1)
            return T.CropTransform(x0, y0, cw, ch)
        b = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
        # the union of the boxes, in whole pixels inside the image
        ux1 = int(np.clip(np.floor(b[:, 0].min()), 0, w))
        uy1 = int(np.clip(np.floor(b[:, 1].min()), 0, h))
        ux2 = int(np.clip(np.ceil(b[:, 2].max()), 0, w))
        uy2 = int(np.clip(np.ceil(b[:, 3].max()), 0, h))
        ch, cw = min(h, max(ch, uy2 - uy1)), min(w, max(cw, ux2 - ux1))
        y0 = np.random.randint(max(0, uy2 - ch), min(uy1, h - ch) + 1)
        x0 = np.random.randint(max(0, ux2 - cw), min(ux1, w - cw) + 1)
        return T.CropTransform(x0, y0, cw, ch)

    def __repr__(self) -> str:
        return f"RandomCropKeepBoxes({self.crop.crop_type}, {tuple(self.crop.crop_size)})"
