"""
Non-person objects: person-like distractors, occluders, vehicles, crowds, glass and posters.

Every maker has the signature ``make(rng, height) -> Sprite`` and is registered by name in
:data:`DISTRACTORS` (upright, person-sized objects that cause false positives) or
:data:`OCCLUDERS` (objects drawn in front of people). ``height`` is in pixels; widths follow
from the object's proportions.
"""

import math
from typing import Callable, Dict, List, Tuple

import cv2
import numpy as np

from .identity import Identity, mannequin_appearance
from .person import Pose, render_person
from .sprite import SHIFT, Sprite, pt

__all__ = [
    "DISTRACTORS",
    "OCCLUDERS",
    "make_bicycle",
    "make_crowd",
    "make_glass",
    "make_poster",
]

Maker = Callable[[np.random.Generator, float], Sprite]


def _canvas(h: float, w: float) -> Tuple[np.ndarray, np.ndarray]:
    h, w = int(math.ceil(h)) + 2, int(math.ceil(w)) + 2
    return np.zeros((h, w, 3), np.uint8), np.zeros((h, w), np.uint8)


def _fill_rect(img, mask, x0, y0, x1, y1, colour):
    cv2.rectangle(img, pt(x0, y0), pt(x1, y1), colour, -1, cv2.LINE_8, SHIFT)
    cv2.rectangle(mask, pt(x0, y0), pt(x1, y1), 1, -1, cv2.LINE_8, SHIFT)


def _fill_circle(img, mask, c, r, colour, thickness=-1):
    rr = max(1, int(r * (1 << SHIFT)))
    t = thickness if thickness < 0 else max(1, int(thickness))
    cv2.circle(img, pt(*c), rr, colour, t, cv2.LINE_8, SHIFT)
    cv2.circle(mask, pt(*c), rr, 1, t, cv2.LINE_8, SHIFT)


def _colour(rng, table) -> Tuple[int, int, int]:
    return tuple(int(v) for v in table[int(rng.integers(len(table)))])


def _shade(img: np.ndarray, strength: float = 0.25) -> np.ndarray:
    x = np.linspace(-1, 1, img.shape[1], dtype=np.float32)
    return np.clip(img * (1 + strength * x)[None, :, None], 0, 255).astype(np.uint8)


def mannequin(rng: np.random.Generator, height: float) -> Sprite:
    """A plastic person figure on a stand: the hardest false positive."""
    pose = Pose(
        facing=("front", "back", "left", "right")[int(rng.integers(4))],
        stride=0.0,
        arm_bend=float(rng.uniform(0, 0.3)),
        light=float(rng.uniform(-1, 1)),
    )
    return render_person(mannequin_appearance(rng), pose, height, rng)


def pole(rng: np.random.Generator, height: float, colour=None) -> Sprite:
    """A lamp post or bollard with a round head (``colour``: BGR of the post, default drawn)."""
    w = max(2.0, 0.06 * height)
    img, mask = _canvas(height, 4 * w)
    c = colour or _colour(rng, [(70, 70, 70), (40, 90, 40), (150, 150, 150), (30, 30, 30)])
    cx = img.shape[1] / 2
    _fill_rect(img, mask, cx - w / 2, 1.8 * w, cx + w / 2, height, c)
    _fill_circle(img, mask, (cx, 1.6 * w), 1.4 * w, _colour(rng, [(220, 230, 240), c]))
    _fill_rect(img, mask, cx - w, height - w, cx + w, height, c)
    return Sprite.from_drawing(_shade(img), mask > 0)


def sign(rng: np.random.Generator, height: float, colour=None) -> Sprite:
    """A sign on a pole; the panel sits where a torso would (``colour``: BGR of the panel)."""
    w = max(2.0, 0.04 * height)
    pw, ph = 0.35 * height, 0.3 * height
    img, mask = _canvas(height, pw + 2)
    cx = img.shape[1] / 2
    _fill_rect(img, mask, cx - w / 2, 0.1 * height, cx + w / 2, height, (90, 90, 90))
    panel = colour or _colour(rng, [(200, 120, 30), (40, 40, 200), (40, 160, 40), (30, 200, 230)])
    _fill_rect(img, mask, cx - pw / 2, 0.08 * height, cx + pw / 2, 0.08 * height + ph, panel)
    y = 0.08 * height + ph * 0.4
    cv2.rectangle(
        img,
        pt(cx - pw * 0.35, y),
        pt(cx + pw * 0.35, y + ph * 0.15),
        (235, 235, 235),
        -1,
        cv2.LINE_8,
        SHIFT,
    )
    return Sprite.from_drawing(_shade(img, 0.1), mask > 0)


def tree(rng: np.random.Generator, height: float) -> Sprite:
    """A young tree: a trunk and a round crown."""
    img, mask = _canvas(height, 0.55 * height)
    cx = img.shape[1] / 2
    _fill_rect(
        img, mask, cx - 0.03 * height, 0.35 * height, cx + 0.03 * height, height, (30, 60, 90)
    )
    for _ in range(4):
        c = (cx + rng.uniform(-0.1, 0.1) * height, rng.uniform(0.15, 0.3) * height)
        _fill_circle(
            img,
            mask,
            c,
            rng.uniform(0.1, 0.16) * height,
            _colour(rng, [(40, 110, 40), (30, 80, 30)]),
        )
    return Sprite.from_drawing(_shade(img), mask > 0)


def car(rng: np.random.Generator, height: float, colour=None) -> Sprite:
    """A car seen from the side (``height`` is the car height; ``colour``: BGR of the body)."""
    w = height * rng.uniform(2.0, 2.6)
    img, mask = _canvas(height, w)
    bodies = [(40, 40, 180), (200, 200, 200), (30, 30, 30), (150, 90, 30), (60, 60, 60)]
    body = colour or _colour(rng, bodies)
    _fill_rect(img, mask, 0, 0.4 * height, w, 0.85 * height, body)
    roof = [
        pt(0.2 * w, 0.4 * height),
        pt(0.32 * w, 0.05 * height),
        pt(0.72 * w, 0.05 * height),
        pt(0.85 * w, 0.4 * height),
    ]
    cv2.fillPoly(img, [np.array(roof, np.int32)], body, cv2.LINE_8, SHIFT)
    cv2.fillPoly(mask, [np.array(roof, np.int32)], 1, cv2.LINE_8, SHIFT)
    win = [
        pt(0.27 * w, 0.38 * height),
        pt(0.35 * w, 0.12 * height),
        pt(0.7 * w, 0.12 * height),
        pt(0.79 * w, 0.38 * height),
    ]
    cv2.fillPoly(img, [np.array(win, np.int32)], (90, 70, 60), cv2.LINE_8, SHIFT)
    for x in (0.2 * w, 0.8 * w):
        _fill_circle(img, mask, (x, 0.82 * height), 0.17 * height, (20, 20, 20))
    return Sprite.from_drawing(_shade(img, 0.15), mask > 0)


def bush(rng: np.random.Generator, height: float) -> Sprite:
    """A hedge or planter of overlapping leaf blobs."""
    w = height * rng.uniform(1.0, 2.2)
    img, mask = _canvas(height, w)
    for _ in range(int(6 + w / max(height, 1) * 4)):
        c = (rng.uniform(0.15, 0.85) * w, rng.uniform(0.35, 0.75) * height)
        _fill_circle(
            img,
            mask,
            c,
            rng.uniform(0.25, 0.35) * height,
            _colour(rng, [(40, 120, 50), (30, 90, 40), (60, 140, 70)]),
        )
    _fill_rect(img, mask, 0.1 * w, 0.7 * height, 0.9 * w, height, (70, 90, 110))
    return Sprite.from_drawing(img, mask > 0)


def barrier(rng: np.random.Generator, height: float, colour=None) -> Sprite:
    """A striped street barrier (``colour``: BGR of the stripes, default red)."""
    w = height * rng.uniform(1.5, 3.0)
    img, mask = _canvas(height, w)
    _fill_rect(img, mask, 0, 0.1 * height, w, 0.6 * height, (240, 240, 240))
    k = max(4.0, 0.25 * height)
    for x in np.arange(0, w, 2 * k):
        cv2.rectangle(
            img,
            pt(x, 0.1 * height),
            pt(x + k, 0.6 * height),
            colour or (30, 30, 200),
            -1,
            cv2.LINE_8,
            SHIFT,
        )
    for x in (0.1 * w, 0.9 * w):
        _fill_rect(
            img, mask, x - 0.04 * height, 0.6 * height, x + 0.04 * height, height, (80, 80, 80)
        )
    return Sprite.from_drawing(img, mask > 0)


def bin_(rng: np.random.Generator, height: float, colour=None) -> Sprite:
    """A waste bin or post box (``colour``: BGR of the body)."""
    img, mask = _canvas(height, 0.6 * height)
    c = colour or _colour(rng, [(40, 100, 40), (30, 30, 30), (30, 140, 220), (40, 40, 170)])
    _fill_rect(img, mask, 0, 0.08 * height, 0.6 * height, height, c)
    _fill_rect(img, mask, -0.02 * height, 0, 0.62 * height, 0.1 * height, (60, 60, 60))
    return Sprite.from_drawing(_shade(img), mask > 0)


#: Upright person-sized objects that cause false positives.
DISTRACTORS: Dict[str, Maker] = {"mannequin": mannequin, "pole": pole, "sign": sign, "tree": tree}
#: Objects drawn in front of people; the float is the object height relative to the person.
OCCLUDERS: Dict[str, Tuple[Maker, float, float]] = {
    "car": (car, 0.45, 0.75),
    "bush": (bush, 0.3, 0.6),
    "barrier": (barrier, 0.3, 0.55),
    "bin": (bin_, 0.3, 0.5),
}


def make_bicycle(
    rng: np.random.Generator, height: float, facing_right: bool, colour=None
) -> Sprite:
    """A bicycle of wheel-to-saddle ``height``; anchor at the ground below the saddle
    (``colour``: BGR of the frame, default drawn)."""
    r = 0.38 * height
    w = 4.3 * r
    img, mask = _canvas(height, w)
    col = colour or _colour(rng, [(30, 30, 30), (40, 40, 170), (160, 100, 30), (200, 200, 200)])
    back, front = (r + 1, height - r), (w - r - 1, height - r)
    if not facing_right:
        back, front = front, back
    t = max(1.0, 0.06 * r)
    for c in (back, front):
        _fill_circle(img, mask, c, r, (20, 20, 20), thickness=max(1, 0.15 * r))
    seat = (back[0] + 0.35 * (front[0] - back[0]), height - 1.9 * r)
    bar = (back[0] + 0.85 * (front[0] - back[0]), height - 2.0 * r)
    for a, b in (
        (back, seat),
        (seat, bar),
        (bar, front),
        (back, (seat[0], height - r)),
        ((seat[0], height - r), bar),
    ):
        cv2.line(img, pt(*a), pt(*b), col, max(1, int(2 * t)), cv2.LINE_8, SHIFT)
        cv2.line(mask, pt(*a), pt(*b), 1, max(1, int(2 * t)), cv2.LINE_8, SHIFT)
    return Sprite.from_drawing(img, mask > 0, anchor=(seat[0], float(height)))


def make_crowd(
    rng: np.random.Generator, width: float, height: float, appearances: List[Identity]
) -> Sprite:
    """A far-away crowd: overlapping tiny figures (heads over coloured bodies)."""
    img, mask = _canvas(height, width)
    n = max(4, int(width / max(2.0, 0.25 * height) * 2))
    for k in range(n):
        app = appearances[k % len(appearances)].appearance()
        x, s = rng.uniform(0, width), rng.uniform(0.6, 1.0) * height
        y0 = height - s
        _fill_rect(img, mask, x - 0.14 * s, y0 + 0.2 * s, x + 0.14 * s, y0 + 0.6 * s, app.upper)
        _fill_rect(img, mask, x - 0.11 * s, y0 + 0.6 * s, x + 0.11 * s, height, app.lower)
        _fill_circle(img, mask, (x, y0 + 0.1 * s), 0.1 * s, app.skin)
    return Sprite.from_drawing(img, mask > 0)


def make_glass(rng: np.random.Generator, width: float, height: float) -> Sprite:
    """A tinted window pane (drawn translucent: it occludes nothing)."""
    img, mask = _canvas(height, width)
    tint = _colour(rng, [(120, 110, 90), (140, 140, 120), (90, 100, 100)])
    _fill_rect(img, mask, 0, 0, width, height, tint)
    cv2.rectangle(
        img, (0, 0), (img.shape[1] - 1, img.shape[0] - 1), (60, 60, 60), max(1, int(0.02 * width))
    )
    return Sprite.from_drawing(img, mask > 0, alpha=float(rng.uniform(0.35, 0.5)))


def make_poster(
    rng: np.random.Generator, height: float, app, pose: Pose
) -> Tuple[Sprite, Tuple[int, int, int, int]]:
    """A poster showing a person (a depiction); returns the sprite and the depicted person's box."""
    w = 0.65 * height
    img, mask = _canvas(height, w)
    _fill_rect(
        img, mask, 0, 0, w, height, _colour(rng, [(230, 230, 230), (200, 220, 240), (60, 60, 60)])
    )
    p = render_person(app, pose, 0.85 * height, rng)
    x0 = int(round((img.shape[1] - p.image.shape[1]) / 2))
    y0 = int(round(0.92 * height - p.anchor[1]))
    ys, xs = np.nonzero(p.mask)
    ok = (ys + y0 >= 0) & (ys + y0 < img.shape[0]) & (xs + x0 >= 0) & (xs + x0 < img.shape[1])
    img[ys[ok] + y0, xs[ok] + x0] = p.image[ys[ok], xs[ok]]
    b = p.box
    inner = (
        max(0, b[0] + x0),
        max(0, b[1] + y0),
        min(img.shape[1], b[2] + x0),
        min(img.shape[0], b[3] + y0),
    )
    return Sprite.from_drawing(img, mask > 0), inner
