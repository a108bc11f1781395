"""
Per-source visual style and per-camera looks.

A :class:`Style` fixes what makes one source recognisable (background family, white balance,
gamma, saturation, sensor noise, blur, file format). A :class:`Look` is one camera's colour
transform around its source's style; multi-camera sources (PRW, MSMT17, CUHK03) draw one look
per camera, so the same identity changes colour from camera to camera. :func:`finish` turns a
composed scene into what that camera records.
"""

import dataclasses
from typing import Dict, List, Tuple

import cv2
import numpy as np

__all__ = [
    "Look",
    "Style",
    "STYLES",
    "camera_looks",
    "encode_image",
    "finish",
    "with_light",
    "TIME_OF_DAY",
]


@dataclasses.dataclass(frozen=True)
class Style:
    """
    Attributes:
        background: key of :data:`~.backgrounds.BACKGROUNDS` (tuple: one drawn per image).
        ext: file extension written (``.jpg`` or ``.png``).
        quality: JPEG quality.
        noise: sensor noise std (0-255 scale) at knob ``noise = 1``.
        blur: Gaussian blur sigma (pixels) at knob ``blur = 1``.
        wb: white-balance gains (B, G, R).
        gamma: tone curve exponent.
        saturation: colour saturation factor.
        shift: strength of per-camera/per-image look variation at knob ``camera_shift = 1``.
        motion_blur: horizontal motion blur length in pixels (video sources).
    """

    background: Tuple[str, ...]
    ext: str
    quality: int
    noise: float
    blur: float
    wb: Tuple[float, float, float]
    gamma: float
    saturation: float
    shift: float
    motion_blur: float = 0.0


STYLES: Dict[str, Style] = {
    "crowdhuman": Style(("mixed",), ".jpg", 88, 3.0, 0.5, (1.0, 1.0, 1.0), 1.0, 1.15, 0.6),
    "ecp": Style(("street",), ".png", 0, 1.5, 0.7, (0.88, 1.0, 1.1), 0.9, 0.9, 0.3),
    "msmt17": Style(("plaza",), ".jpg", 90, 4.0, 0.9, (1.06, 1.0, 0.94), 1.1, 0.8, 1.0),
    "cuhk03": Style(("corridor",), ".png", 0, 2.5, 1.1, (0.95, 1.0, 1.05), 1.0, 0.7, 1.2),
    "luperson": Style(("video",), ".jpg", 75, 3.0, 0.8, (1.0, 1.0, 1.0), 1.0, 1.0, 1.0),
    "prw": Style(("campus",), ".jpg", 85, 3.5, 0.8, (1.0, 1.03, 0.97), 1.05, 0.85, 1.0),
    "cuhk_sysu": Style(("snap", "movie"), ".jpg", 92, 2.0, 0.4, (1.0, 1.0, 1.0), 0.95, 1.2, 0.5),
    "posetrack21": Style(("event",), ".jpg", 80, 2.5, 0.9, (1.05, 1.0, 0.95), 1.0, 1.0, 0.6, 4.0),
}


@dataclasses.dataclass(frozen=True)
class Look:
    """One camera's colour transform: ``out = 255 * (gain * x / 255 + offset) ** gamma``,
    then saturation around the grey value."""

    gain: Tuple[float, float, float]
    offset: Tuple[float, float, float]
    gamma: float
    saturation: float

    def lut(self) -> np.ndarray:
        """(1, 256, 3) uint8 lookup table for ``cv2.LUT``."""
        x = np.arange(256, dtype=np.float32)[:, None] / 255.0
        y = np.clip(
            x * np.asarray(self.gain, np.float32) + np.asarray(self.offset, np.float32), 0, 1
        )
        return np.clip(255.0 * y**self.gamma + 0.5, 0, 255).astype(np.uint8)[None]


#: MSMT17 time-of-day lighting: (B, G, R) gain and brightness.
TIME_OF_DAY = {
    "morning": ((1.08, 1.0, 0.92), 0.9),
    "noon": ((1.0, 1.0, 1.0), 1.12),
    "afternoon": ((0.9, 0.98, 1.1), 0.97),
}


def camera_looks(style: Style, n: int, rng: np.random.Generator, shift: float = 1.0) -> List[Look]:
    """``n`` looks spread around ``style``; ``shift`` scales the spread (knob ``camera_shift``)."""
    s = style.shift * shift
    looks = []
    for _ in range(n):
        gain = np.asarray(style.wb) * np.exp(rng.normal(0, 0.1 * s, 3))
        looks.append(
            Look(
                gain=tuple(float(v) for v in gain * np.exp(rng.normal(0, 0.08 * s))),
                offset=tuple(float(v) for v in rng.normal(0, 0.03 * s, 3)),
                gamma=float(style.gamma * np.exp(rng.normal(0, 0.12 * s))),
                saturation=float(style.saturation * np.exp(rng.normal(0, 0.15 * s))),
            )
        )
    return looks


def with_light(look: Look, gain: Tuple[float, float, float], brightness: float) -> Look:
    """``look`` under extra lighting (e.g. :data:`TIME_OF_DAY`)."""
    g = tuple(float(a * b * brightness) for a, b in zip(look.gain, gain))
    return dataclasses.replace(look, gain=g)


_NOISE_TILE = np.random.default_rng(12345).standard_normal((560, 800, 3)).astype(np.float32)


def _noise(rng: np.random.Generator, shape) -> np.ndarray:
    h, w = shape[:2]
    th, tw = _NOISE_TILE.shape[:2]
    if h <= th and w <= tw:
        y, x = int(rng.integers(0, th - h + 1)), int(rng.integers(0, tw - w + 1))
        tile = _NOISE_TILE[y : y + h, x : x + w]
        return tile if rng.random() < 0.5 else tile[::-1, ::-1]
    return rng.standard_normal((h, w, 3)).astype(np.float32)


def finish(
    img: np.ndarray,
    style: Style,
    look: Look,
    rng: np.random.Generator,
    noise: float = 1.0,
    blur: float = 1.0,
) -> np.ndarray:
    """
    Apply a camera look, optics blur and sensor noise.

    Args:
        img: (H, W, 3) uint8 BGR composed scene.
        noise, blur: difficulty knobs multiplying the style's noise std and blur sigma.

    Returns:
        (H, W, 3) uint8 BGR.
    """
    out = cv2.LUT(img, look.lut())
    if abs(look.saturation - 1.0) > 1e-3:
        grey = cv2.cvtColor(cv2.cvtColor(out, cv2.COLOR_BGR2GRAY), cv2.COLOR_GRAY2BGR)
        out = cv2.addWeighted(out, look.saturation, grey, 1.0 - look.saturation, 0.0)
    sigma = style.blur * blur * float(rng.uniform(0.7, 1.3))
    if sigma > 0.2:
        out = cv2.GaussianBlur(out, (0, 0), sigma)
    if style.motion_blur > 0 and blur > 0:
        k = int(round(style.motion_blur * blur * rng.uniform(0, 1)))
        if k >= 2:
            out = cv2.blur(out, (k, 1))
    std = style.noise * noise
    if std > 0:
        out = np.clip(out.astype(np.float32) + std * _noise(rng, out.shape), 0, 255).astype(
            np.uint8
        )
    return out


def encode_image(img: np.ndarray, ext: str, quality: int = 90) -> bytes:
    """Encode a BGR image with fixed encoder parameters (deterministic bytes)."""
    if ext == ".png":
        params = [cv2.IMWRITE_PNG_COMPRESSION, 3]
    else:
        params = [
            cv2.IMWRITE_JPEG_QUALITY,
            int(quality),
            cv2.IMWRITE_JPEG_OPTIMIZE,
            0,
            cv2.IMWRITE_JPEG_PROGRESSIVE,
            0,
        ]
    ok, buf = cv2.imencode(ext, img, params)
    if not ok:
        raise RuntimeError(f"cv2 could not encode a {img.shape} image as {ext}")
    return buf.tobytes()
