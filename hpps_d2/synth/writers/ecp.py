"""
EuroCity-Persons-like wide street scenes, day split only:
``ECP/day/img/{train,val}/<city>/<city>_<NNNNN>.png`` and the label JSON beside them under
``labels`` (same path, ``.json``).

Frames keep ECP's 1920x1024 aspect ratio at 600x320. Children: ``pedestrian`` (tags
``occluded>10/40/80``, ``truncated>10/40/80`` from the exact visible and in-image fractions,
``sitting-lying`` for sitting people, ``behind-glass`` behind a window pane, ``depiction`` for a
person on a poster), ``rider`` with its ``bicycle`` child, and ``person-group-far-away`` for far
crowds. Boxes are the full extent clipped to the image, as ``x0, y0, x1, y1`` floats. ``orient``
is the walking direction in degrees (0 = to the right, 90 = away from the camera, -90 = towards it,
180 = to the left).
"""

import os


from ..backgrounds import make_background
from ..person import Pose, random_pose, render_person
from ..props import make_bicycle, make_crowd, make_glass, make_poster
from ..scenes import Scene, log_uniform
from ..styles import STYLES, camera_looks
from .common import fill_scene, shoot, split_counts, write_image, write_json, xywh_clip

__all__ = ["write", "IGNORE_TAGS"]

SUBDIR = "ECP"
WIDTH, HEIGHT = 600, 320
CITIES = {"train": ("amsterdam", "berlin", "milan", "zagreb"), "val": ("lyon", "prague")}
_ORIENT = {"right": 0.0, "back": 90.0, "front": -90.0, "left": 180.0}
#: Pedestrian tags that make a box an ignore region in the ECP benchmark.
IGNORE_TAGS = ("sitting-lying", "behind-glass", "depiction")


def _level(frac: float, name: str):
    for t in (80, 40, 10):
        if frac > t / 100.0:
            return [f"{name}>{t}"]
    return []


def _orient(rng, facing: str) -> float:
    a = _ORIENT[facing] + float(rng.normal(0, 8))
    return float(round((a + 180.0) % 360.0 - 180.0, 1))


def _child(identity, box, tags=(), orient=None, children=()):
    x, y, w, h = box
    c = {
        "identity": identity,
        "x0": round(x, 2),
        "y0": round(y, 2),
        "x1": round(x + w, 2),
        "y1": round(y + h, 2),
        "tags": list(tags),
        "children": list(children),
    }
    if orient is not None:
        c["orient"] = orient
    return c


def _frame(cfg, bank, rng, pool_n):
    style, knobs = STYLES["ecp"], cfg.knobs
    bg, horizon = make_background("street", rng, HEIGHT, WIDTH)
    scene = Scene(bg, horizon, ref_height=HEIGHT * float(rng.uniform(0.55, 0.8)))
    n = max(1, int(round(rng.uniform(2, 10) * knobs.crowd)))
    people = [(bank.get("ecp", int(rng.integers(pool_n))), "pedestrian") for _ in range(n)]
    items = fill_scene(
        scene,
        rng,
        knobs,
        people,
        (0.07 * HEIGHT, 0.95 * scene.ref_height),
        max_overlap=0.6,
        distractor_mean=1.2,
        sitting_prob=0.05,
        x_range=(-0.03, 1.03),
        occluder_kinds=("car", "bush", "barrier", "bin"),
    )
    extra = []
    if rng.random() < 0.35:  # a cyclist
        h = log_uniform(rng, 0.15 * HEIGHT, 0.7 * scene.ref_height)
        fx, fy = float(rng.uniform(0.05, 0.95)) * WIDTH, scene.foot_y(h)
        facing = "right" if rng.random() < 0.5 else "left"
        bike = make_bicycle(rng, 0.5 * h, facing == "right")
        who = bank.get("ecp", int(rng.integers(pool_n))).appearance()
        rider = render_person(
            who, Pose(facing=facing, sitting=True, light=float(rng.uniform(-1, 1))), h, rng
        )
        b_item = scene.add(bike, (fx, fy), "bicycle", track=True)
        r_item = scene.add(rider, (fx, fy - 0.23 * h), "rider", track=True, z=fy + 0.5)
        extra.append((r_item, b_item, facing))
    if rng.random() < 0.4:  # a far group
        ch, cw = float(rng.uniform(0.04, 0.08)) * HEIGHT, float(rng.uniform(0.08, 0.25)) * WIDTH
        crowd = [bank.get("ecp", int(rng.integers(pool_n))) for _ in range(6)]
        scene.add(
            make_crowd(rng, cw, ch, crowd),
            (float(rng.uniform(0, WIDTH)), horizon + ch * 1.2),
            "group",
            track=True,
        )
    glass = None
    if items and rng.random() < 0.1:  # one pedestrian behind a shop window
        it = items[int(rng.integers(len(items)))]
        x, y, w, h = it.fbox
        pane = make_glass(rng, w * 1.6 + 6, h * 1.2 + 6)
        glass = (x - w * 0.3 - 3, y - h * 0.1 - 3, w * 1.6 + 6, h * 1.2 + 6)
        scene.add(pane, (x + w / 2, y + h * 1.1 + 3), "glass", z=it.z + 0.1)
    if rng.random() < 0.15:  # a person on a poster
        ph = float(rng.uniform(0.2, 0.4)) * HEIGHT
        who = bank.get("ecp", int(rng.integers(pool_n))).appearance()
        sprite, inner = make_poster(rng, ph, who, random_pose(rng, facing="front"))
        scene.add(
            sprite,
            (float(rng.uniform(0.1, 0.9)) * WIDTH, horizon - 0.05 * HEIGHT),
            "poster",
            z=-1.0,
        )
        extra.append(("poster", sprite, inner))
    look = camera_looks(style, 1, rng, knobs.camera_shift)[0]
    img, placed = shoot(scene, style, look, rng, knobs)
    return img, _children(rng, scene, placed, extra, glass)


def _children(rng, scene, placed, extra, glass):
    by_item = {id(p.item): p for p in placed}
    children = []
    for p in placed:
        if p.vbox is None or p.item.kind not in ("person", "group"):
            continue
        box = xywh_clip(p.fbox, WIDTH, HEIGHT)
        if p.item.kind == "group":
            children.append(_child("person-group-far-away", box))
            continue
        tags = _level(p.occlusion, "occluded") + _level(p.truncation, "truncated")
        if p.item.sprite.meta["sitting"]:
            tags.append("sitting-lying")
        if glass is not None and _inside(p.fbox, glass):
            tags.append("behind-glass")
        children.append(_child("pedestrian", box, tags, _orient(rng, p.item.sprite.meta["facing"])))
    for e in extra:
        if e[0] == "poster":
            _, sprite, inner = e
            item = next(it for it in scene.items if it.sprite is sprite)
            b = (item.x + inner[0], item.y + inner[1], inner[2] - inner[0], inner[3] - inner[1])
            children.append(_child("pedestrian", xywh_clip(b, WIDTH, HEIGHT), ["depiction"], -90.0))
            continue
        r_item, b_item, facing = e
        rp, bp = by_item[id(r_item)], by_item[id(b_item)]
        if rp.vbox is None:
            continue
        bike = _child("bicycle", xywh_clip(bp.fbox, WIDTH, HEIGHT), orient=_orient(rng, facing))
        tags = _level(rp.occlusion, "occluded") + _level(rp.truncation, "truncated")
        children.append(_child("rider", xywh_clip(rp.fbox, WIDTH, HEIGHT), tags, children=[bike]))
    return [c for c in children if c["x1"] > c["x0"] and c["y1"] > c["y0"]]


def _inside(a, b) -> bool:
    return (
        a[0] >= b[0] and a[1] >= b[1] and a[0] + a[2] <= b[0] + b[2] and a[1] + a[3] <= b[1] + b[3]
    )


def write(root: str, cfg, bank) -> dict:
    """Write ``<root>/ECP/day``; returns the manifest entries of both splits."""
    out = os.path.join(root, SUBDIR, "day")
    style = STYLES["ecp"]
    pool_n = min(bank.pool_size(), 40000)
    splits, detail = {}, {}
    for s, split in enumerate(("train", "val")):
        cities = CITIES[split]
        counters = {c: 0 for c in cities}
        kinds = {
            "pedestrian": 0,
            "rider": 0,
            "person-group-far-away": 0,
            **{t: 0 for t in IGNORE_TAGS},
        }
        n_img = cfg.size("ecp", f"{split}_images")
        boxes, ignore = 0, 0
        for i in range(n_img):
            rng = cfg.rng("ecp", s, i)
            city = cities[i % len(cities)]
            counters[city] += int(rng.integers(1, 4))
            name = f"{city}_{counters[city]:05d}"
            img, children = _frame(cfg, bank, rng, pool_n)
            write_image(os.path.join(out, "img", split, city, name + style.ext), img, style)
            frame = {
                "identity": "frame",
                "imagewidth": WIDTH,
                "imageheight": HEIGHT,
                "children": children,
            }
            write_json(os.path.join(out, "labels", split, city, name + ".json"), frame)
            for c in children:
                kinds[c["identity"]] += 1
                for t in IGNORE_TAGS:
                    kinds[t] += int(t in c["tags"])
                person = c["identity"] == "pedestrian" and not set(IGNORE_TAGS) & set(c["tags"])
                boxes += int(person)
                ignore += int(not person)
        splits[f"ecp_day_{split}"] = split_counts(n_img, boxes, 0, ignore=ignore)
        detail[f"ecp_day_{split}"] = kinds
    return {"splits": splits, "detail": detail}
