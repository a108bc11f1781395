"""Helpers shared by the dataset writers: deterministic files, MATLAB structs, scene filling."""

import io
import json
import os
from typing import Iterable, List, Optional, Sequence, Tuple

import numpy as np
import scipy.io

from ..config import Knobs
from ..identity import Identity
from ..scenes import Item, Scene, log_uniform
from ..styles import Look, Style, encode_image, finish

__all__ = [
    "split_counts",
    "write_bytes",
    "write_text",
    "write_json",
    "write_image",
    "savemat",
    "cell_column",
    "struct_array",
    "fill_scene",
    "shoot",
    "xywh_clip",
    "pick_balanced",
]

_MAT_HEADER = b"MATLAB 5.0 MAT-file, Platform: GLNXA64, Created on: Mon Jan  1 00:00:00 2018"


def split_counts(
    images: int,
    boxes: Optional[int] = None,
    identities: int = 0,
    queries: Optional[int] = None,
    ignore: Optional[int] = None,
) -> dict:
    """One manifest entry, in the terms of ``hpps_d2.data.datasets.stats.split_counts``.

    Args:
        images: records the loader returns.
        boxes: person boxes of scene records after the loader's drop/clip rules (None for
            crop and query splits).
        identities: distinct labeled identities.
        queries: query records (person-search query splits only).
        ignore: ignore regions of scene records (None for crop and query splits).
    """
    return {
        "images": int(images),
        "boxes": boxes,
        "ignore": ignore,
        "identities": int(identities),
        "queries": queries,
    }


def write_bytes(path: str, data: bytes) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data)


def write_text(path: str, lines: Iterable[str], newline: str = "\n") -> None:
    """Write lines joined and terminated by ``newline`` (CRLF where a format has it)."""
    write_bytes(path, "".join(line + newline for line in lines).encode("utf-8"))


def write_json(path: str, obj, indent: Optional[int] = None) -> None:
    """JSON in the insertion order of ``obj`` (build dicts in a fixed order)."""
    write_bytes(path, json.dumps(obj, indent=indent, ensure_ascii=False).encode("utf-8"))


def write_image(path: str, img: np.ndarray, style: Style) -> None:
    write_bytes(path, encode_image(img, os.path.splitext(path)[1], style.quality))


def savemat(path: str, mdict: dict) -> None:
    """``scipy.io.savemat`` (v5) with a fixed header text instead of the creation time."""
    buf = io.BytesIO()
    scipy.io.savemat(buf, mdict, format="5", oned_as="column")
    data = bytearray(buf.getvalue())
    data[:116] = _MAT_HEADER.ljust(116, b" ")
    write_bytes(path, bytes(data))


def cell_column(values: Sequence) -> np.ndarray:
    """An (n, 1) MATLAB cell; strings become 1-element string arrays."""
    out = np.empty((len(values), 1), dtype=object)
    for i, v in enumerate(values):
        out[i, 0] = np.array([v]) if isinstance(v, str) else v
    return out


def struct_array(fields: Sequence[str], rows: List[tuple], shape=None) -> np.ndarray:
    """A MATLAB struct array (NumPy structured array with object fields), (1, n) by default."""
    arr = np.empty(shape or (1, len(rows)), dtype=[(f, object) for f in fields])
    for i, row in enumerate(rows):
        arr.flat[i] = tuple(row)
    return arr


def fill_scene(
    scene: Scene,
    rng: np.random.Generator,
    knobs: Knobs,
    people: Sequence[Tuple[Identity, object]],
    heights: Tuple[float, float],
    max_overlap: float = 0.5,
    distractor_mean: float = 1.0,
    occluder_kinds: Optional[Sequence[str]] = None,
    sitting_prob: float = 0.0,
    x_range=(0.0, 1.0),
) -> List[Item]:
    """Place ``people`` (identity, payload) at log-uniform heights, then occluders and distractors.

    Returns:
        list[Item]: the person items, in the order of ``people``.
    """
    items = []
    for identity, payload in people:
        h = log_uniform(rng, *heights)
        items.append(
            scene.add_person(
                rng,
                identity,
                h,
                payload,
                jitter=knobs.appearance_jitter,
                sitting_prob=sitting_prob,
                max_overlap=max_overlap,
                x_range=x_range,
            )
        )
    for it in items:
        if rng.random() < knobs.occlusion:
            kw = {"kinds": tuple(occluder_kinds)} if occluder_kinds else {}
            scene.add_occluder(rng, it, **kw)
    scene.add_distractors(rng, distractor_mean * knobs.distractors, heights)
    return items


def shoot(scene: Scene, style: Style, look: Look, rng: np.random.Generator, knobs: Knobs):
    """Render ``scene`` and pass it through the camera; returns ``(image, placed)``."""
    img, placed = scene.render()
    return finish(img, style, look, rng, knobs.noise, knobs.blur), placed


def xywh_clip(box, width: float, height: float) -> Tuple[float, float, float, float]:
    """Clip an ``(x, y, w, h)`` box to the image; the result may have zero size."""
    x0, y0 = min(max(box[0], 0.0), width), min(max(box[1], 0.0), height)
    x1, y1 = min(max(box[0] + box[2], 0.0), width), min(max(box[1] + box[3], 0.0), height)
    return x0, y0, x1 - x0, y1 - y0


def pick_balanced(
    rng: np.random.Generator, candidates: Sequence[int], counts: dict, k: int
) -> List[int]:
    """``k`` distinct candidates, favouring those seen least so far (weight ``1 / (1 + n)^2``);
    updates ``counts``."""
    cand = list(candidates)
    if not cand or k <= 0:
        return []
    w = np.array([1.0 / (1 + counts.get(c, 0)) ** 2 for c in cand])
    pick = rng.choice(len(cand), size=min(k, len(cand)), replace=False, p=w / w.sum())
    out = [cand[int(i)] for i in pick]
    for c in out:
        counts[c] = counts.get(c, 0) + 1
    return out
