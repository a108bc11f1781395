"""
Object and texture categories of the ImageNet stand-in: person-free things the world already draws.

A :class:`Category` is a WordNet-style id (``wnid``), a name, and a drawing rule; :func:`draw`
composes one example: a background of :mod:`.backgrounds`, the category's object (a maker of
:mod:`.props`, in one colour), texture patch (a pattern of :func:`.paint.pattern_mask` in two
colours) or nothing (scene categories), at a random scale, position and rotation. The camera
(light, white balance, blur, sensor noise) is applied by the writer (:func:`.styles.finish`).

The categories are ours (nothing in the paper or the world defines them): they need colour
("red car" vs "blue car"), shape ("red car" vs "red bin") and texture ("red/white stripes" vs
"red/white checks") to be told apart, like ImageNet's fine-grained classes. No category draws a
person or a person-like figure: never a mannequin, a crowd, a poster of a person or anything of
:mod:`.person` (tests/synth/test_imagenet_writer.py checks it).

The ids ``n99xxxxxx`` are beyond every WordNet 3.0 noun offset (all below 16,000,000), so they can
never be mistaken for a real ImageNet class.
"""

import dataclasses
import math
from typing import Callable, List, Optional, Tuple

import cv2
import numpy as np

from .backgrounds import make_background
from .paint import pattern_mask
from .props import bin_, barrier, bush, car, make_bicycle, pole, sign, tree
from .sprite import Sprite

__all__ = ["CATEGORIES", "COLOURS", "Category", "draw"]

#: Named BGR colours of the coloured categories.
COLOURS = {
    "red": (40, 40, 200),
    "blue": (170, 60, 30),
    "green": (50, 150, 40),
    "yellow": (40, 205, 230),
    "white": (225, 225, 225),
    "black": (35, 35, 35),
}
#: Background families an object or texture is drawn on (every one person-free).
BACKGROUND_KINDS = ("street", "campus", "mixed", "snap", "corridor", "plaza", "event", "movie")


@dataclasses.dataclass(frozen=True)
class Category:
    """
    Attributes:
        wnid: WordNet-style id, ``n99`` + 6 digits; the folder name of the category.
        name: human name, the text of ``LOC_synset_mapping.txt``.
        kind: ``"object"`` (a :mod:`.props` maker), ``"texture"`` or ``"scene"`` (background only).
        what: the maker name, the pattern name or the background family.
        colours: BGR colours: one (object; None = the maker's own), two (texture), none (scene).
    """

    wnid: str
    name: str
    kind: str
    what: str
    colours: Tuple[Optional[Tuple[int, int, int]], ...] = ()


def _bicycle(rng, height, colour=None):
    return make_bicycle(rng, height, bool(rng.random() < 0.5), colour)


#: Object makers: name -> (maker(rng, height, colour) -> Sprite, colour names; None = own colours).
_OBJECTS = {
    "car": (car, ("red", "blue", "white", "yellow", "black")),
    "bin": (bin_, ("red", "blue", "green", "yellow")),
    "sign": (sign, ("red", "blue", "green", "yellow")),
    "pole": (pole, ("red", "green", "white", "black")),
    "barrier": (barrier, ("red", "blue", "green", "black")),
    "bicycle": (_bicycle, ("red", "blue", "white", "black")),
    "bush": (lambda rng, h, colour=None: bush(rng, h), (None,)),
    "tree": (lambda rng, h, colour=None: tree(rng, h), (None,)),
}
_TEXTURES = ("stripes", "checks", "dots", "two_tone")
_TEXTURE_COLOURS = (("red", "white"), ("blue", "yellow"), ("green", "black"))
_SCENES = ("street", "campus", "corridor", "event")


def _categories() -> List[Category]:
    out = []
    for what, (_, colours) in _OBJECTS.items():
        for c in colours:
            name = what if c is None else f"{c} {what}"
            out.append(Category("", name, "object", what, (COLOURS[c] if c else None,)))
    for what in _TEXTURES:
        for a, b in _TEXTURE_COLOURS:
            out.append(Category("", f"{a}/{b} {what}", "texture", what, (COLOURS[a], COLOURS[b])))
    for what in _SCENES:
        out.append(Category("", f"empty {what}", "scene", what))
    return [dataclasses.replace(c, wnid=f"n99{k:06d}") for k, c in enumerate(out)]


#: Every category, in wnid order (the class index of a category is its position here).
CATEGORIES: Tuple[Category, ...] = tuple(_categories())


def _fit(sprite: Sprite, size: int, rng: np.random.Generator) -> Sprite:
    """The sprite resized so that its longer side is 35-90% of ``size``."""
    h, w = sprite.mask.shape
    target = rng.uniform(0.35, 0.9) * size
    s = target / max(h, w)
    nw, nh = max(2, int(round(w * s))), max(2, int(round(h * s)))
    img = cv2.resize(sprite.image, (nw, nh), interpolation=cv2.INTER_AREA)
    mask = cv2.resize(sprite.mask.astype(np.uint8), (nw, nh), interpolation=cv2.INTER_NEAREST)
    return Sprite.from_drawing(img, mask > 0)


def _texture(category: Category, rng: np.random.Generator, size: int) -> Sprite:
    """A rotated square patch of the pattern in the category's two colours."""
    side = int(round(rng.uniform(0.45, 0.85) * size))
    period = float(rng.uniform(0.06, 0.14) * side)
    pat = pattern_mask(category.what, (side, side), period, 0.0, side * rng.uniform(0.3, 0.7), 0.0)
    a, b = (np.asarray(c, np.float32) for c in category.colours)
    img = np.where(np.asarray(pat)[:, :, None], b, a).astype(np.uint8)
    angle = float(rng.uniform(-45, 45))
    m = cv2.getRotationMatrix2D((side / 2, side / 2), angle, 1.0)
    rad = math.radians(angle)
    out = int(math.ceil(side * (abs(math.cos(rad)) + abs(math.sin(rad)))))
    m[:, 2] += (out - side) / 2
    img = cv2.warpAffine(img, m, (out, out), flags=cv2.INTER_NEAREST)
    mask = cv2.warpAffine(np.ones((side, side), np.uint8), m, (out, out), flags=cv2.INTER_NEAREST)
    return Sprite.from_drawing(img, mask > 0)


def _paste(canvas: np.ndarray, sprite: Sprite, rng: np.random.Generator) -> None:
    """Paste ``sprite`` at a random position with at least 70% of it inside the canvas."""
    H, W = canvas.shape[:2]
    h, w = sprite.mask.shape
    x0 = int(rng.integers(-int(0.15 * w), max(1, W - int(0.85 * w))))
    y0 = int(rng.integers(-int(0.15 * h), max(1, H - int(0.85 * h))))
    ys, xs = np.nonzero(sprite.mask)
    ok = (ys + y0 >= 0) & (ys + y0 < H) & (xs + x0 >= 0) & (xs + x0 < W)
    canvas[ys[ok] + y0, xs[ok] + x0] = sprite.image[ys[ok], xs[ok]]


def draw(category: Category, rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """
    One example of ``category`` before the camera.

    Returns:
        (height, width, 3) uint8 BGR.
    """
    if category.kind == "scene":
        img, _ = make_background(category.what, rng, height, width)
        return img
    kind = BACKGROUND_KINDS[int(rng.integers(len(BACKGROUND_KINDS)))]
    img, _ = make_background(kind, rng, height, width)
    size = min(height, width)
    if category.kind == "texture":
        sprite = _texture(category, rng, size)
    else:
        maker: Callable = _OBJECTS[category.what][0]
        sprite = _fit(maker(rng, float(size), category.colours[0]), size, rng)
        if rng.random() < 0.5:
            sprite = Sprite.from_drawing(sprite.image[:, ::-1].copy(), sprite.mask[:, ::-1].copy())
    _paste(img, sprite, rng)
    return img
