"""
Scene composition with exact ground truth.

A :class:`Scene` holds a background and a list of sprites placed by their ground anchor. Rendering
pastes them in depth order and keeps a label map of which item owns each pixel, so every tracked
item gets exact boxes: ``fbox`` (the full extent, also where it is hidden or outside the image),
``vbox`` (its visible pixels) and its visible, occluded and truncated fractions. Translucent items
(glass, reflections) tint the scene but hide nothing.

Placement helpers put people on the ground plane with perspective (smaller near the horizon),
add person-like distractors, and put occluders in front of people.
"""

import dataclasses
import math
from typing import Any, List, Optional, Sequence, Tuple

import numpy as np

from .identity import Identity
from .person import random_pose, render_person
from .props import DISTRACTORS, OCCLUDERS
from .sprite import Sprite

__all__ = ["Item", "Placed", "Scene"]

Box = Tuple[float, float, float, float]


@dataclasses.dataclass(eq=False)
class Item:
    """A sprite in a scene; ``x, y`` is the top-left of the sprite image in scene pixels."""

    sprite: Sprite
    x: int
    y: int
    z: float
    kind: str
    payload: Any = None
    track: bool = False

    @property
    def fbox(self) -> Box:
        """Full box ``(x, y, w, h)`` of the sprite's mask in scene pixels (may leave the image)."""
        b = self.sprite.box
        return (self.x + b[0], self.y + b[1], b[2] - b[0], b[3] - b[1])


@dataclasses.dataclass(eq=False)
class Placed:
    """Ground truth of one tracked item after rendering.

    Attributes:
        fbox: full box ``(x, y, w, h)``, may extend beyond the image.
        vbox: box of the visible pixels ``(x, y, w, h)``, or None when nothing is visible.
        hbox: head box ``(x, y, w, h)`` (persons), may extend beyond the image.
        visible: visible pixels / all mask pixels.
        occlusion: covered pixels / mask pixels inside the image.
        truncation: mask pixels outside the image / all mask pixels.
    """

    item: Item
    fbox: Box
    vbox: Optional[Box]
    hbox: Optional[Box]
    visible: float
    occlusion: float
    truncation: float

    @property
    def payload(self):
        return self.item.payload


class Scene:
    """
    Args:
        background: (H, W, 3) uint8 BGR.
        horizon: image row of the horizon.
        ref_height: height in pixels of a standing person whose feet touch the bottom row.
    """

    def __init__(self, background: np.ndarray, horizon: float, ref_height: float):
        self.image = background
        self.height, self.width = background.shape[:2]
        self.horizon = float(horizon)
        self.ref_height = float(ref_height)
        self.items: List[Item] = []

    # ----------------------------------------------------------------------------- placement
    def foot_y(self, person_height: float) -> float:
        """Feet row of a person of ``person_height`` pixels under the ground-plane perspective."""
        return self.horizon + person_height / self.ref_height * (self.height - self.horizon)

    def add(
        self,
        sprite: Sprite,
        foot: Tuple[float, float],
        kind: str,
        payload=None,
        track: bool = False,
        z: Optional[float] = None,
    ) -> Item:
        """Place ``sprite`` with its anchor at ``foot``; depth defaults to the feet row."""
        x = int(round(foot[0] - sprite.anchor[0]))
        y = int(round(foot[1] - sprite.anchor[1]))
        item = Item(sprite, x, y, float(foot[1] if z is None else z), kind, payload, track)
        self.items.append(item)
        return item

    def free_spot(
        self,
        rng: np.random.Generator,
        height: float,
        aspect: float = 0.4,
        max_overlap: float = 0.5,
        tries: int = 12,
        x_range=(0.0, 1.0),
    ) -> Tuple[float, float]:
        """Feet position for a person of ``height`` that overlaps tracked people the least.

        Overlap is intersection over the smaller box, against every tracked item placed so far;
        the first candidate under ``max_overlap`` wins, else the least-overlapping one.
        """
        fy = self.foot_y(height)
        w = aspect * height
        lo = x_range[0] * self.width + w / 2
        hi = max(lo + 1, x_range[1] * self.width - w / 2)
        best, best_ov = None, 2.0
        others = [it.fbox for it in self.items if it.track]
        for _ in range(tries):
            fx = float(rng.uniform(lo, hi))
            cand = (fx - w / 2, fy - height, w, height)
            ov = max((_overlap(cand, o) for o in others), default=0.0)
            if ov < best_ov:
                best, best_ov = (fx, fy), ov
            if ov <= max_overlap:
                break
        return best

    def add_person(
        self,
        rng,
        identity: Identity,
        height: float,
        payload=None,
        foot=None,
        jitter: float = 0.0,
        sitting_prob: float = 0.0,
        max_overlap: float = 0.5,
        x_range=(0.0, 1.0),
        pose=None,
    ) -> Item:
        """Render ``identity`` at ``height`` (scaled by its stature) and place it; tracked."""
        app = identity.appearance()
        h = height * app.body.stature
        sprite = render_person(app, pose or random_pose(rng, sitting_prob), h, rng, jitter)
        if foot is None:
            foot = self.free_spot(rng, h, max_overlap=max_overlap, x_range=x_range)
        return self.add(sprite, foot, "person", payload, track=True)

    def add_distractors(
        self, rng, mean: float, heights: Tuple[float, float], kinds=None
    ) -> List[Item]:
        """Poisson(``mean``) person-like distractors of person-like sizes on the ground."""
        kinds = kinds or tuple(DISTRACTORS)
        out = []
        for _ in range(int(rng.poisson(max(mean, 0.0)))):
            kind = kinds[int(rng.integers(len(kinds)))]
            h = float(rng.uniform(*heights))
            fy = self.foot_y(h) if kind != "tree" else self.foot_y(h * 0.7)
            sprite = DISTRACTORS[kind](rng, h)
            out.append(self.add(sprite, (float(rng.uniform(0, self.width)), fy), kind, track=True))
        return out

    def add_occluder(self, rng, person: Item, kinds: Sequence[str] = tuple(OCCLUDERS)) -> Item:
        """Put an occluder in front of ``person`` (covering its lower or side part)."""
        kind = kinds[int(rng.integers(len(kinds)))]
        make, lo, hi = OCCLUDERS[kind]
        ph = person.fbox[3]
        sprite = make(rng, max(4.0, ph * float(rng.uniform(lo, hi))))
        fx = (
            person.x
            + person.sprite.anchor[0]
            + rng.uniform(-0.6, 0.6) * max(sprite.mask.shape[1], 4) / 2
        )
        fy = person.y + person.sprite.anchor[1] + rng.uniform(0.5, 3.0)
        return self.add(sprite, (float(fx), float(fy)), kind, track=False)

    # ----------------------------------------------------------------------------- rendering
    def render(self) -> Tuple[np.ndarray, List[Placed]]:
        """Paste every item by depth and measure tracked ones.

        Returns:
            image: (H, W, 3) uint8 BGR.
            placed: ground truth of the tracked items, in the order they were added.
        """
        img = self.image.copy()
        H, W = self.height, self.width
        lab = np.full((H, W), -1, np.int32)
        order = sorted(range(len(self.items)), key=lambda i: (self.items[i].z, i))
        windows = {}
        for i in order:
            it = self.items[i]
            sp = it.sprite
            sh, sw = sp.mask.shape
            x0, y0 = max(it.x, 0), max(it.y, 0)
            x1, y1 = min(it.x + sw, W), min(it.y + sh, H)
            if x1 <= x0 or y1 <= y0:
                windows[i] = None
                continue
            win = (slice(y0, y1), slice(x0, x1))
            swin = (slice(y0 - it.y, y1 - it.y), slice(x0 - it.x, x1 - it.x))
            windows[i] = (win, swin)
            m = sp.mask[swin]
            src = sp.image[swin]
            region = img[win]
            if sp.alpha < 1.0:
                blend = sp.alpha * src.astype(np.float32) + (1 - sp.alpha) * region.astype(
                    np.float32
                )
                region[m] = blend.astype(np.uint8)[m]
            else:
                region[m] = src[m]
                lab[win][m] = i
        counts = np.bincount(lab.ravel() + 1, minlength=len(self.items) + 1)[1:]
        placed = []
        for i, it in enumerate(self.items):
            if it.track:
                placed.append(self._measure(i, it, windows.get(i), lab, counts[i]))
        return img, placed

    def _measure(self, i, it: Item, window, lab, visible_px) -> Placed:
        total = max(1, it.sprite.area)
        inside, vbox = 0, None
        if window is not None:
            win, swin = window
            inside = int(it.sprite.mask[swin].sum())
            if visible_px > 0:
                ys, xs = np.nonzero(lab[win] == i)
                x0, y0 = win[1].start, win[0].start
                vbox = (
                    float(x0 + xs.min()),
                    float(y0 + ys.min()),
                    float(xs.max() - xs.min() + 1),
                    float(ys.max() - ys.min() + 1),
                )
        hbox = None
        if it.sprite.head is not None:
            hx0, hy0, hx1, hy1 = it.sprite.head
            hbox = (it.x + hx0, it.y + hy0, hx1 - hx0, hy1 - hy0)
        return Placed(
            item=it,
            fbox=tuple(float(v) for v in it.fbox),
            vbox=vbox,
            hbox=hbox,
            visible=float(visible_px) / total,
            occlusion=1.0 - float(visible_px) / inside if inside else 1.0,
            truncation=1.0 - inside / total,
        )


def _overlap(a: Box, b: Box) -> float:
    """Intersection over the smaller of two ``(x, y, w, h)`` boxes."""
    iw = min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0])
    ih = min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1])
    if iw <= 0 or ih <= 0:
        return 0.0
    return iw * ih / max(1e-6, min(a[2] * a[3], b[2] * b[3]))


def log_uniform(rng: np.random.Generator, lo: float, hi: float) -> float:
    """A size drawn uniformly in log space between ``lo`` and ``hi``."""
    return float(math.exp(rng.uniform(math.log(lo), math.log(hi))))
