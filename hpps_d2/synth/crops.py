"""
Re-ID crops: a person photographed by one camera and cut out by a (hand-drawn or detected) box.

:func:`render_context` draws the person in a small patch of its camera's world (background, an
occasional neighbour at the side, an occasional occluder in front), then applies the camera look,
blur and noise. :func:`cut` takes a crop around the person's box with a margin and a jitter, so a
"labeled" crop (tight) and a "detected" crop (jittered) can come from the same shot, as in CUHK03.
"""

from typing import List, Optional, Tuple

import cv2
import numpy as np

from .backgrounds import make_background
from .config import Knobs
from .identity import Identity
from .person import random_pose, render_person
from .scenes import Scene
from .styles import Look, Style, finish

__all__ = ["Shot", "render_context", "cut"]

Box = Tuple[float, float, float, float]


class Shot:
    """A rendered context patch. Attributes: image (H, W, 3) uint8 BGR; box (x, y, w, h) of the
    person's full body in it."""

    def __init__(self, image: np.ndarray, box: Box):
        self.image, self.box = image, box


def render_context(
    rng: np.random.Generator,
    identity: Identity,
    style: Style,
    look: Look,
    person_height: float,
    knobs: Knobs,
    neighbours: Optional[List[Identity]] = None,
    bg_kind: Optional[str] = None,
) -> Shot:
    """
    Render one shot of ``identity`` about ``person_height`` pixels tall.

    Args:
        neighbours: identities that may stand beside the person (cut by the crop border).
        bg_kind: background family; defaults to the style's first one.
    """
    h = float(person_height)
    H, W = int(h * 1.35) + 4, int(h * 1.15) + 4
    bg, _ = make_background(bg_kind or style.background[0], rng, H, W)
    ground = H - 0.12 * h
    scene = Scene(bg, horizon=ground - h, ref_height=h)
    app = identity.appearance()
    sprite = render_person(
        app, random_pose(rng), h * float(rng.uniform(0.92, 1.05)), rng, knobs.appearance_jitter
    )
    if neighbours and rng.random() < 0.3:
        other = neighbours[int(rng.integers(len(neighbours)))].appearance()
        side = 1 if rng.random() < 0.5 else -1
        nb = render_person(
            other, random_pose(rng), h * float(rng.uniform(0.85, 1.1)), rng, knobs.appearance_jitter
        )
        z = ground + (2.0 if rng.random() < 0.4 else -2.0)
        scene.add(nb, (W / 2 + side * h * float(rng.uniform(0.32, 0.5)), ground), "person", z=z)
    item = scene.add(sprite, (W / 2 + float(rng.normal(0, 0.03 * h)), ground), "person", track=True)
    if rng.random() < knobs.occlusion * 0.5:
        scene.add_occluder(rng, item)
    img, placed = scene.render()
    img = finish(img, style, look, rng, knobs.noise, knobs.blur)
    return Shot(img, placed[0].fbox)


def cut(
    shot: Shot,
    rng: np.random.Generator,
    margin: Tuple[float, float] = (0.03, 0.1),
    jitter: float = 0.0,
    size: Optional[Tuple[int, int]] = None,
) -> np.ndarray:
    """
    Cut a crop around the shot's person.

    Args:
        margin: range of the relative margin added on each side.
        jitter: std of the relative shift/rescale of the box (a detector's error).
        size: ``(height, width)`` to resize to, or None to keep the cut size.

    Returns:
        (h, w, 3) uint8 BGR.
    """
    x, y, w, h = shot.box
    mx, my = w * rng.uniform(*margin), h * rng.uniform(*margin) * 0.5
    x0, y0, x1, y1 = x - mx, y - my, x + w + mx, y + h + my
    if jitter > 0:
        dx, dy = rng.normal(0, jitter, 2) * (x1 - x0, y1 - y0)
        s = float(np.exp(rng.normal(0, jitter)))
        cx, cy = (x0 + x1) / 2 + dx, (y0 + y1) / 2 + dy
        hw, hh = (x1 - x0) * s / 2, (y1 - y0) * s / 2
        x0, y0, x1, y1 = cx - hw, cy - hh, cx + hw, cy + hh
    Hs, Ws = shot.image.shape[:2]
    x0, y0 = int(np.clip(round(x0), 0, Ws - 2)), int(np.clip(round(y0), 0, Hs - 2))
    x1, y1 = int(np.clip(round(x1), x0 + 2, Ws)), int(np.clip(round(y1), y0 + 2, Hs))
    crop = shot.image[y0:y1, x0:x1]
    if size is not None:
        crop = cv2.resize(crop, (int(size[1]), int(size[0])), interpolation=cv2.INTER_AREA)
    return np.ascontiguousarray(crop)
