"""
Painting helpers for procedural people: sub-pixel cv2 primitives on a part-label image, the
upper-body patterns, and the colouring of a part-label image into BGR pixels.

Part labels: :data:`BG`, :data:`SKIN`, :data:`HAIR`, :data:`UPPER`, :data:`LOWER`, :data:`SHOES`,
:data:`ACC` (accessory).
"""

import math

import cv2
import numpy as np

from .sprite import SHIFT, pt

__all__ = [
    "BG",
    "SKIN",
    "HAIR",
    "UPPER",
    "LOWER",
    "SHOES",
    "ACC",
    "line",
    "disk",
    "poly",
    "ellipse",
    "polar",
    "pattern_mask",
    "colourise",
]

BG, SKIN, HAIR, UPPER, LOWER, SHOES, ACC = range(7)


def line(lab, a, b, value, width):
    cv2.line(lab, pt(*a), pt(*b), int(value), max(1, int(round(width))), cv2.LINE_8, SHIFT)


def disk(lab, c, r, value):
    cv2.circle(lab, pt(*c), max(1, int(round(r * (1 << SHIFT)))), int(value), -1, cv2.LINE_8, SHIFT)


def poly(lab, pts, value):
    arr = np.array([pt(*p) for p in pts], dtype=np.int32)
    cv2.fillPoly(lab, [arr], int(value), cv2.LINE_8, SHIFT)


def ellipse(lab, c, axes, value):
    s = 1 << SHIFT
    ax = (max(1, int(axes[0] * s)), max(1, int(axes[1] * s)))
    cv2.ellipse(lab, pt(*c), ax, 0, 0, 360, int(value), -1, cv2.LINE_8, SHIFT)


def polar(origin, length, theta):
    """Point at ``length`` from ``origin`` at angle ``theta`` from the downward vertical (+x)."""
    return origin[0] + length * math.sin(theta), origin[1] + length * math.cos(theta)


def pattern_mask(pattern: str, shape, period: float, top: float, mid: float, cx: float):
    h, w = shape
    yy = (np.arange(h, dtype=np.float32) - top)[:, None]
    xx = (np.arange(w, dtype=np.float32) - cx)[None, :]
    if pattern == "stripes":
        return np.broadcast_to((np.floor(yy / period) % 2) == 1, shape)
    if pattern == "checks":
        return (np.floor(yy / period) + np.floor(xx / period)) % 2 == 1
    if pattern == "dots":
        p = period * 1.4
        dy, dx = (yy % p) - p / 2, (xx % p) - p / 2
        return dy * dy + dx * dx < (0.3 * p) ** 2
    if pattern == "two_tone":
        return np.broadcast_to(yy > (mid - top), shape)
    return None


def colourise(lab, app, pose, rng, jitter, H, cx, sh_y, hip_y) -> np.ndarray:
    lut = np.zeros((7, 3), np.float32)
    lut[SKIN], lut[HAIR], lut[UPPER] = app.skin, app.hair, app.upper
    lut[LOWER], lut[SHOES], lut[ACC] = app.lower, app.shoes, app.accessory_colour
    second = np.asarray(app.upper2, np.float32)
    if jitter > 0:
        gain = 1.0 + rng.normal(0.0, jitter, 3).astype(np.float32)
        lut = lut * gain * (1.0 + rng.normal(0.0, jitter / 2, (7, 1)).astype(np.float32))
        second = second * gain
    img = lut[lab]
    pat = pattern_mask(app.pattern, lab.shape, max(2.0, 0.045 * H), sh_y, (sh_y + hip_y) / 2, cx)
    if pat is not None:
        sel = (lab == UPPER) & pat
        img[sel] = second
    x = (np.arange(lab.shape[1], dtype=np.float32) - cx) / max(1.0, 0.35 * H)
    shade = np.clip(1.0 + 0.22 * pose.light * x, 0.7, 1.25)
    img *= shade[None, :, None]
    return np.clip(img, 0, 255).astype(np.uint8)
