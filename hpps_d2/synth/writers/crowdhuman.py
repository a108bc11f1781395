"""
CrowdHuman-like crowded scenes: ``CrowdHuman/Images/<ID>.jpg`` and ``annotation_{train,val}.odgt``.

Each image holds 8-22 people (times the ``crowd`` knob) of every size in a varied indoor/outdoor
setting, heavily overlapping, some cut by the image border (their ``fbox`` leaves the image),
plus distractors and occluders. ``fbox`` is the full body, ``vbox`` its visible pixels, ``hbox``
the head. Far crowds, reflections in windows and half of the mannequins are ``"mask"`` boxes with
``extra.ignore = 1``; people under 12 pixels are ``person`` boxes with ``extra.ignore = 1``.
People are unlabeled; their appearances come from the CrowdHuman identity pool.
"""

import json
import os


from ..backgrounds import make_background
from ..person import random_pose, render_person
from ..props import make_crowd, make_glass
from ..scenes import Scene
from ..styles import STYLES, camera_looks
from .common import fill_scene, shoot, split_counts, write_bytes, write_image, xywh_clip

__all__ = ["write"]

SUBDIR = "CrowdHuman"
_ASPECTS = (4 / 3, 3 / 2, 16 / 9, 3 / 4)
_HEX = "0123456789abcdef"


def _ibox(b):
    return [int(round(v)) for v in b]


def _image(cfg, bank, rng, pool_n):
    style, knobs = STYLES["crowdhuman"], cfg.knobs
    short = int(rng.integers(300, 401))
    aspect = _ASPECTS[int(rng.integers(len(_ASPECTS)))]
    W, H = (int(short * aspect), short) if aspect >= 1 else (short, int(short / aspect))
    bg, horizon = make_background("mixed", rng, H, W)
    scene = Scene(bg, horizon, ref_height=H * float(rng.uniform(0.8, 1.3)))
    n = max(1, int(round(rng.uniform(8, 22) * knobs.crowd)))
    people = [(bank.get("crowdhuman", int(rng.integers(pool_n))), None) for _ in range(n)]
    fill_scene(
        scene,
        rng,
        knobs,
        people,
        (0.05 * H, 0.95 * scene.ref_height),
        max_overlap=0.85,
        distractor_mean=1.5,
        sitting_prob=0.04,
        x_range=(-0.04, 1.04),
    )
    masks = []
    if rng.random() < 0.5:  # a far crowd: one ignore region
        ch, cw = float(rng.uniform(0.03, 0.07)) * H, float(rng.uniform(0.15, 0.4)) * W
        crowd = [bank.get("crowdhuman", int(rng.integers(pool_n))) for _ in range(8)]
        item = scene.add(
            make_crowd(rng, cw, ch, crowd),
            (float(rng.uniform(0, W)), horizon + ch),
            "crowd",
            track=True,
        )
        masks.append(item)
    if rng.random() < 0.25:  # a reflection in a window: a mirrored, faded person behind glass
        gh = float(rng.uniform(0.25, 0.45)) * H
        gx, gy = float(rng.uniform(0.1, 0.9)) * W, float(horizon)
        scene.add(make_glass(rng, gh * 0.8, gh), (gx, gy), "glass", z=-1.0)
        who = bank.get("crowdhuman", int(rng.integers(pool_n))).appearance()
        ref = render_person(who, random_pose(rng), gh * 0.8, rng)
        ref.image, ref.mask, ref.alpha = ref.image[:, ::-1].copy(), ref.mask[:, ::-1].copy(), 0.45
        ref.box = (
            ref.mask.shape[1] - ref.box[2],
            ref.box[1],
            ref.mask.shape[1] - ref.box[0],
            ref.box[3],
        )
        masks.append(scene.add(ref, (gx, gy - 0.05 * gh), "reflection", track=True, z=-0.5))
    look = camera_looks(style, 1, rng, knobs.camera_shift)[0]
    img, placed = shoot(scene, style, look, rng, knobs)
    gtboxes, n_boxes, n_ignore, k = [], 0, 0, 0
    for p in placed:
        kind = p.item.kind
        if p.vbox is None or p.visible < 0.03:
            continue
        if kind == "person":
            fbox = _ibox(p.fbox)
            ignore = int(fbox[3] < 12)
            head_hidden = p.vbox[1] > p.hbox[1] + p.hbox[3] / 2
            extra = {"box_id": k, "occ": int(p.occlusion > 0.1), "ignore": ignore}
            if rng.random() < 0.1:
                del extra["occ"]  # any key may be missing
            gtboxes.append(
                {
                    "fbox": fbox,
                    "tag": "person",
                    "hbox": _ibox(p.hbox),
                    "extra": extra,
                    "vbox": _ibox(p.vbox),
                    "head_attr": {"ignore": 0, "occ": int(head_hidden), "unsure": 0},
                }
            )
            valid = _valid(fbox, W, H)
            n_boxes += int(valid and not ignore)
            n_ignore += int(valid and ignore)
        elif (kind == "mannequin" and rng.random() < 0.5) or p.item in masks:
            box = _ibox(p.vbox if p.item.kind == "crowd" else p.fbox)
            gtboxes.append(
                {
                    "fbox": box,
                    "tag": "mask",
                    "hbox": box,
                    "extra": {"box_id": k, "ignore": 1},
                    "vbox": box,
                }
            )
            n_ignore += int(_valid(box, W, H))
        else:
            continue
        k += 1
    return img, gtboxes, n_boxes, n_ignore


def _valid(box, W, H) -> bool:
    """The loader keeps a box of positive size that still has positive size clipped to the image."""
    x, y, w, h = xywh_clip(box, W, H)
    return box[2] > 0 and box[3] > 0 and w > 0 and h > 0


def write(root: str, cfg, bank) -> dict:
    """Write ``<root>/CrowdHuman``; returns the manifest entries of both splits."""
    out = os.path.join(root, SUBDIR)
    style = STYLES["crowdhuman"]
    pool_n = min(bank.pool_size(), 40000)
    splits, seen = {}, set()
    for s, split in enumerate(("train", "val")):
        lines, boxes, ignore = [], 0, 0
        for i in range(cfg.size("crowdhuman", f"{split}_images")):
            rng = cfg.rng("crowdhuman", s, i)
            while True:
                digits = "".join(_HEX[v] for v in rng.integers(0, 16, 15))
                image_id = f"{int(rng.integers(100000, 400000))},{digits}"
                if image_id not in seen:
                    break
            seen.add(image_id)
            img, gtboxes, n, n_ign = _image(cfg, bank, rng, pool_n)
            write_image(os.path.join(out, "Images", image_id + style.ext), img, style)
            lines.append(json.dumps({"ID": image_id, "gtboxes": gtboxes}))
            boxes += n
            ignore += n_ign
        write_bytes(
            os.path.join(out, f"annotation_{split}.odgt"), "".join(x + "\n" for x in lines).encode()
        )
        splits[f"crowdhuman_{split}"] = split_counts(len(lines), boxes, 0, ignore=ignore)
    return {"splits": splits}
