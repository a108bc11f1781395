"""
Background generators, one texture family per source, registered in :data:`BACKGROUNDS`.

Each generator is ``make(rng, height, width) -> (image, horizon)``: a (height, width, 3) uint8 BGR
image and the image row of the horizon (people stand below it, smaller as they get closer to it).
"""

from typing import Callable, Dict, Tuple

import cv2
import numpy as np

__all__ = ["BACKGROUNDS", "make_background"]

Generator = Callable[[np.random.Generator, int, int], Tuple[np.ndarray, float]]


def _pick(rng, table):
    return np.array(table[int(rng.integers(len(table)))], np.float32)


def _lowfreq(rng, h, w, amp, cells=12):
    g = rng.normal(0, amp, (max(2, h // cells), max(2, w // cells), 1)).astype(np.float32)
    return cv2.resize(g, (w, h), interpolation=cv2.INTER_LINEAR)[:, :, None]


def _rect(img, x0, y0, x1, y1, c):
    cv2.rectangle(img, (int(x0), int(y0)), (int(x1), int(y1)), tuple(float(v) for v in c), -1)


def _windows(rng, img, x0, y0, x1, y1, colour, cell):
    for yy in np.arange(y0 + cell * 0.3, y1 - cell * 0.6, cell):
        for xx in np.arange(x0 + cell * 0.3, x1 - cell * 0.6, cell):
            _rect(img, xx, yy, xx + cell * 0.55, yy + cell * 0.6, colour * rng.uniform(0.8, 1.1))


def _facades(rng, img, y1, palette, win):
    w = img.shape[1]
    x = -rng.uniform(0, 40)
    while x < w:
        bw = rng.uniform(0.15, 0.4) * w
        top = rng.uniform(0.0, 0.5) * y1
        c = _pick(rng, palette) * rng.uniform(0.85, 1.1)
        _rect(img, x, top, x + bw, y1, c)
        _windows(rng, img, x, top, x + bw, y1, _pick(rng, win), rng.uniform(14, 26))
        x += bw


def _ground(img, horizon, colour, lines, rng, spacing):
    h, w = img.shape[:2]
    _rect(img, 0, horizon, w, h, colour)
    for y in np.arange(horizon + 2, h, spacing):
        cv2.line(img, (0, int(y)), (w, int(y)), tuple(float(v) for v in lines), 1)
        spacing *= 1.25
    cx = w * rng.uniform(0.3, 0.7)
    for x in np.linspace(-w, 2 * w, 14):
        cv2.line(img, (int(cx), int(horizon)), (int(x), h), tuple(float(v) for v in lines), 1)


def street(rng, h, w):
    """EuroCity-like: sky, tall facades with window grids, sidewalk and dark road."""
    horizon = h * rng.uniform(0.42, 0.55)
    img = np.zeros((h, w, 3), np.float32)
    img[:] = _pick(rng, [(235, 215, 190), (210, 205, 200), (240, 225, 200)])
    _facades(
        rng,
        img,
        horizon,
        [(150, 170, 190), (110, 130, 160), (180, 190, 200), (90, 100, 120)],
        [(90, 80, 70), (140, 120, 100)],
    )
    _ground(img, horizon, _pick(rng, [(150, 150, 155), (170, 165, 160)]), (120, 120, 125), rng, 6)
    road = horizon + (h - horizon) * rng.uniform(0.45, 0.7)
    _rect(img, 0, road, w, h, (75, 75, 80))
    for x in np.arange(rng.uniform(0, 60), w, 90):
        _rect(img, x, road + (h - road) * 0.5, x + 40, road + (h - road) * 0.5 + 3, (220, 220, 220))
    return img + _lowfreq(rng, h, w, 6), horizon


def campus(rng, h, w):
    """PRW-like: reddish brick paving, lawns and light campus buildings with columns."""
    horizon = h * rng.uniform(0.3, 0.45)
    img = np.zeros((h, w, 3), np.float32)
    img[:] = (200, 190, 175)
    _rect(img, 0, 0, w, horizon, _pick(rng, [(215, 215, 210), (200, 205, 215)]))
    for x in np.arange(rng.uniform(0, 30), w, rng.uniform(30, 55)):
        _rect(img, x, horizon * 0.15, x + 8, horizon, (170, 170, 170))
    _ground(
        img,
        horizon,
        _pick(rng, [(95, 110, 160), (120, 125, 150), (110, 115, 125)]),
        (80, 85, 110),
        rng,
        5,
    )
    for _ in range(int(rng.integers(1, 3))):
        x0, y0 = rng.uniform(0, w), horizon + rng.uniform(0.05, 0.5) * (h - horizon)
        _rect(img, x0, y0, x0 + rng.uniform(0.1, 0.3) * w, y0 + rng.uniform(10, 40), (60, 130, 70))
    return img + _lowfreq(rng, h, w, 8, cells=6), horizon


def mixed(rng, h, w):
    """CrowdHuman-like: anything from malls and stations to squares, in varied palettes."""
    horizon = h * rng.uniform(0.3, 0.6)
    img = np.zeros((h, w, 3), np.float32)
    img[:] = rng.uniform(60, 230, 3)
    for _ in range(int(rng.integers(4, 12))):
        x0, y0 = rng.uniform(-0.2, 1) * w, rng.uniform(-0.2, 0.9) * horizon
        _rect(
            img,
            x0,
            y0,
            x0 + rng.uniform(0.05, 0.5) * w,
            y0 + rng.uniform(0.1, 0.7) * h,
            rng.uniform(30, 250, 3),
        )
    _ground(img, horizon, rng.uniform(60, 200, 3), rng.uniform(40, 220, 3), rng, rng.uniform(4, 10))
    return img + _lowfreq(rng, h, w, 14, cells=8), horizon


def snap(rng, h, w):
    """CUHK-SYSU street snaps: bright shop fronts, signboards, pavement."""
    horizon = h * rng.uniform(0.35, 0.5)
    img = np.zeros((h, w, 3), np.float32)
    img[:] = _pick(rng, [(230, 200, 170), (215, 215, 215), (250, 235, 210)])
    _facades(
        rng,
        img,
        horizon,
        [(60, 80, 200), (200, 150, 60), (60, 180, 220), (200, 200, 200), (120, 60, 160)],
        [(40, 40, 40), (220, 220, 200)],
    )
    for _ in range(int(rng.integers(2, 6))):
        x0 = rng.uniform(0, w)
        _rect(
            img,
            x0,
            horizon * rng.uniform(0.1, 0.6),
            x0 + rng.uniform(30, 90),
            horizon * rng.uniform(0.65, 0.8),
            rng.uniform(0, 255, 3),
        )
    _ground(img, horizon, _pick(rng, [(160, 165, 170), (130, 140, 150)]), (100, 100, 110), rng, 7)
    return img + _lowfreq(rng, h, w, 10), horizon


def movie(rng, h, w):
    """CUHK-SYSU movie frames: dim interiors, a coloured key light and letterbox bars."""
    horizon = h * rng.uniform(0.4, 0.6)
    img = np.zeros((h, w, 3), np.float32)
    img[:] = rng.uniform(20, 90, 3)
    for _ in range(int(rng.integers(2, 6))):
        x0 = rng.uniform(0, w)
        _rect(
            img,
            x0,
            rng.uniform(0, horizon),
            x0 + rng.uniform(20, 120),
            horizon,
            rng.uniform(10, 120, 3),
        )
    _rect(img, 0, horizon, w, h, rng.uniform(20, 80, 3))
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    cx, cy = rng.uniform(0, w), rng.uniform(0, h)
    light = np.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / (2 * (0.5 * w) ** 2))
    img += light[:, :, None] * rng.uniform(30, 90, 3)
    bar = int(h * 0.07)
    img[:bar] = 0
    img[h - bar :] = 0
    return img, horizon


def event(rng, h, w):
    """PoseTrack-like: a sports field or hall floor with court lines and packed stands."""
    horizon = h * rng.uniform(0.25, 0.4)
    img = np.zeros((h, w, 3), np.float32)
    stands = rng.uniform(40, 120, 3)
    img[: int(horizon)] = stands
    dots = rng.uniform(0, 255, (int(horizon) // 3 + 1, w // 3 + 1, 3)).astype(np.float32)
    img[: int(horizon)] = 0.6 * img[: int(horizon)] + 0.4 * cv2.resize(
        dots, (w, int(horizon)), interpolation=cv2.INTER_NEAREST
    )
    floor = _pick(rng, [(60, 140, 60), (80, 130, 190), (110, 110, 120), (140, 90, 50)])
    _rect(img, 0, horizon, w, h, floor)
    for _ in range(4):
        y = rng.uniform(horizon, h)
        cv2.line(img, (0, int(y)), (w, int(y + rng.uniform(-20, 20))), (235, 235, 235), 2)
    return img + _lowfreq(rng, h, w, 5), horizon


def corridor(rng, h, w):
    """CUHK03-like: campus corridors, beige walls, grey floor, doors."""
    horizon = h * rng.uniform(0.55, 0.7)
    img = np.zeros((h, w, 3), np.float32)
    img[:] = _pick(rng, [(170, 190, 200), (150, 160, 165), (190, 200, 205)])
    for x in np.arange(rng.uniform(-20, 20), w, rng.uniform(40, 80)):
        _rect(
            img,
            x,
            h * 0.15,
            x + rng.uniform(12, 25),
            horizon,
            _pick(rng, [(60, 80, 110), (120, 120, 120)]),
        )
    _rect(img, 0, horizon, w, h, _pick(rng, [(120, 120, 125), (100, 110, 110)]))
    return img + _lowfreq(rng, h, w, 6), horizon


def plaza(rng, h, w):
    """MSMT17-like: a campus plaza in muted colours, indoors or out."""
    img, horizon = campus(rng, h, w) if rng.random() < 0.6 else corridor(rng, h, w)
    return 0.7 * img + 0.3 * np.float32(rng.uniform(80, 160)), horizon


def video(rng, h, w):
    """LUPerson-like street videos from many cities: any street at any time."""
    kind = (street, snap, mixed)[int(rng.integers(3))]
    img, horizon = kind(rng, h, w)
    return img * rng.uniform(0.6, 1.2), horizon


BACKGROUNDS: Dict[str, Generator] = {
    "street": street,
    "campus": campus,
    "mixed": mixed,
    "snap": snap,
    "movie": movie,
    "event": event,
    "corridor": corridor,
    "plaza": plaza,
    "video": video,
}


def make_background(kind: str, rng: np.random.Generator, height: int, width: int):
    """Run the generator ``kind`` and return ``(uint8 image (height, width, 3), horizon row)``."""
    img, horizon = BACKGROUNDS[kind](rng, int(height), int(width))
    return np.clip(img, 0, 255).astype(np.uint8), float(horizon)
