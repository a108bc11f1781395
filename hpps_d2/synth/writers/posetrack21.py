"""
PoseTrack21-like videos for person search: ``images/{train,val}/<video>/<frame6>.jpg`` and
``posetrack_person_search/{train,val,query}.json`` (COCO-like).

Each video is a panning or static shot of a sports/event scene with 3-6 tracked people walking
across it; some identities appear in two videos of their split. Far crowds in the stands are
polygon ignore regions (``ignore_regions_x/_y``). Every visible person is annotated with
``bbox`` [x, y, w, h], ``bbox_head``, 17 COCO ``keypoints``, ``person_id`` and ``track_id``;
there is no unlabeled marker. ``query.json`` holds one annotation per val identity seen in at
least two frames (its most visible one); its image is a val image. Train and val identities are
disjoint.
"""

import dataclasses
import os

import numpy as np

from ..backgrounds import make_background
from ..person import random_pose
from ..props import make_crowd
from ..scenes import Scene
from ..styles import STYLES, camera_looks
from .common import shoot, split_counts, write_image, write_json, xywh_clip

__all__ = ["write"]

SUBDIR = "PoseTrack21"
WIDTH, HEIGHT = 480, 270
KEYPOINTS = (
    "nose",
    "left_eye",
    "right_eye",
    "left_ear",
    "right_ear",
    "left_shoulder",
    "right_shoulder",
    "left_elbow",
    "right_elbow",
    "left_wrist",
    "right_wrist",
    "left_hip",
    "right_hip",
    "left_knee",
    "right_knee",
    "left_ankle",
    "right_ankle",
)
CATEGORY = {"id": 1, "name": "person", "supercategory": "person", "keypoints": list(KEYPOINTS)}
SPLITS = {"train": ("train", "_train"), "val": ("val", "_test")}


def _cast(cfg, rng, n_videos, first_pid, pool_start, bank):
    """Per video, a list of (person_id, identity); ~30% of appearances reuse an earlier identity."""
    casts, known, pid = [], [], first_pid
    for _ in range(n_videos):
        cast = []
        for _ in range(int(rng.integers(3, 7) * cfg.knobs.crowd) or 1):
            reuse = [k for k in known if k[0] not in {c[0] for c in cast}]
            if reuse and rng.random() < 0.3:
                cast.append(reuse[int(rng.integers(len(reuse)))])
            else:
                pid += int(rng.integers(1, 4))
                known.append((pid, bank.get("posetrack21", pool_start + len(known))))
                cast.append(known[-1])
        casts.append(cast)
    return casts, len(known)


def _video(cfg, rng, cast, n_frames, style):
    """Yields (image, annotations-without-ids, ignore polygons) per frame."""
    knobs = cfg.knobs
    bw = int(WIDTH * 1.3)
    bg, horizon = make_background("event", rng, HEIGHT, bw)
    ref = HEIGHT * float(rng.uniform(0.6, 0.85))
    pan = float(rng.uniform(0, bw - WIDTH)) if rng.random() < 0.5 else 0.0
    look = camera_looks(style, 1, rng, knobs.camera_shift)[0]
    crowd = None
    if rng.random() < 0.4:
        cw, ch = float(rng.uniform(60, 150)), float(rng.uniform(10, 20))
        crowd = (
            make_crowd(rng, cw, ch, [c[1] for c in cast]),
            float(rng.uniform(0, bw)),
            horizon - 2,
        )
    tracks = []
    for _, identity in cast:
        h = float(rng.uniform(0.35, 0.95)) * ref
        tracks.append(
            {
                "x": float(rng.uniform(0.1, 0.9)) * bw,
                "h": h,
                "vx": float(rng.normal(0, 0.01)) * bw,
                "vh": float(rng.normal(0, 0.01)) * h,
                "pose": random_pose(rng),
                "id": identity,
            }
        )
    for f in range(n_frames):
        x0 = int(round(pan * f / max(1, n_frames - 1)))
        scene = Scene(np.ascontiguousarray(bg[:, x0 : x0 + WIDTH]), horizon, ref)
        items = []
        for t in tracks:
            t["x"] += t["vx"]
            t["h"] = float(np.clip(t["h"] + t["vh"], 0.3 * ref, ref))
            if not 0.05 * bw < t["x"] < 0.95 * bw:
                t["vx"] = -t["vx"]
            pose = dataclasses.replace(t["pose"], phase=t["pose"].phase + 0.6 * f)
            items.append(
                scene.add_person(
                    rng,
                    t["id"],
                    t["h"],
                    foot=(t["x"] - x0, scene.foot_y(t["h"])),
                    pose=pose,
                    jitter=knobs.appearance_jitter * 0.5,
                )
            )
        polys = []
        if crowd is not None:
            sprite, cx, cy = crowd
            scene.add(sprite, (cx - x0, cy), "crowd", z=-1.0)
            a, b = cx - x0 - sprite.mask.shape[1] / 2, cy - sprite.mask.shape[0]
            poly = [(a, b), (a + sprite.mask.shape[1], b), (a + sprite.mask.shape[1], cy), (a, cy)]
            poly = [
                (round(float(np.clip(x, 0, WIDTH)), 2), round(float(np.clip(y, 0, HEIGHT)), 2))
                for x, y in poly
            ]
            if poly[1][0] - poly[0][0] > 1:
                polys.append(poly)
        scene.add_distractors(
            rng, 0.5 * knobs.distractors, (0.3 * ref, 0.9 * ref), kinds=("pole", "sign")
        )
        img, placed = shoot(scene, style, look, rng, knobs)
        yield img, [(k, p) for k, p in enumerate(placed) if p.item.kind == "person"], polys


def _annotation(p, k, ann_id, image_id, pid):
    bx = [round(v, 2) for v in xywh_clip(p.fbox, WIDTH, HEIGHT)]
    hb = [round(v, 2) for v in xywh_clip(p.hbox, WIDTH, HEIGHT)]
    it, kp = p.item, []
    for name in KEYPOINTS:
        x, y = it.sprite.joints[name]
        x, y = x + it.x, y + it.y
        v = int(0 <= x < WIDTH and 0 <= y < HEIGHT)
        kp += [round(x, 2) if v else 0.0, round(y, 2) if v else 0.0, v]
    return {
        "bbox": bx,
        "bbox_head": hb,
        "category_id": 1,
        "id": ann_id,
        "image_id": image_id,
        "keypoints": kp,
        "person_id": pid,
        "track_id": k,
    }


def _split(cfg, bank, s, split, out, pid_start, pool_start):
    style = STYLES["posetrack21"]
    folder, suffix = SPLITS[split]
    n_videos, n_frames = (
        cfg.size("posetrack21", f"{split}_videos"),
        cfg.size("posetrack21", "frames_per_video"),
    )
    casts, n_ids = _cast(
        cfg, cfg.rng("posetrack21", s, 10**6), n_videos, pid_start, pool_start, bank
    )
    images, annotations, visibility = [], [], {}
    for v, cast in enumerate(casts):
        vid = 1 + s * 500 + v * 3
        video = f"{vid:06d}_{('bonn', 'mpii', 'bonn_mpii')[v % 3]}{suffix}"
        rng = cfg.rng("posetrack21", s, v)
        for f, (img, persons, polys) in enumerate(_video(cfg, rng, cast, n_frames, style)):
            image_id = int(f"1{vid:06d}{f:04d}")
            rel = f"images/{folder}/{video}/{f:06d}.jpg"
            write_image(os.path.join(out, rel), img, style)
            anns = []
            for k, p in persons:
                box = xywh_clip(p.fbox, WIDTH, HEIGHT)
                if p.visible >= 0.1 and box[2] >= 2 and box[3] >= 2:
                    anns.append(
                        _annotation(
                            p, k, len(annotations) + len(anns) + 1 + s * 10**7, image_id, cast[k][0]
                        )
                    )
                    visibility[anns[-1]["id"]] = p.visible
            images.append(
                {
                    "file_name": rel,
                    "id": image_id,
                    "frame_id": image_id,
                    "vid_id": f"{vid:06d}",
                    "nframes": n_frames,
                    "is_labeled": True,
                    "has_labeled_person": bool(anns),
                    "ignore_regions_x": [[x for x, _ in q] for q in polys],
                    "ignore_regions_y": [[y for _, y in q] for q in polys],
                }
            )
            annotations += anns
    return images, annotations, visibility, n_ids


def write(root: str, cfg, bank) -> dict:
    """Write ``<root>/PoseTrack21``; returns the manifest entries of train, query and gallery."""
    out = os.path.join(root, SUBDIR)
    ps = os.path.join(out, "posetrack_person_search")
    tr_imgs, tr_anns, _, n_tr = _split(cfg, bank, 0, "train", out, 10, 0)
    va_imgs, va_anns, vis, n_va = _split(cfg, bank, 1, "val", out, 20000, 20000)
    for name, imgs, anns in (("train", tr_imgs, tr_anns), ("val", va_imgs, va_anns)):
        write_json(
            os.path.join(ps, f"{name}.json"),
            {"images": imgs, "annotations": anns, "categories": [CATEGORY]},
        )
    by_pid = {}
    for a in va_anns:
        by_pid.setdefault(a["person_id"], []).append(a)
    queries = []
    for pid in sorted(by_pid):
        anns = by_pid[pid]
        if len({a["image_id"] for a in anns}) >= 2:
            queries.append(
                max(
                    anns,
                    key=lambda a: (round(vis[a["id"]], 2), -abs(anns.index(a) - len(anns) / 2)),
                )
            )
    q_ids = {a["image_id"] for a in queries}
    write_json(
        os.path.join(ps, "query.json"),
        {
            "images": [i for i in va_imgs if i["id"] in q_ids],
            "annotations": queries,
            "categories": [CATEGORY],
        },
    )

    def n_pids(anns):
        return len({a["person_id"] for a in anns})

    splits = {
        "posetrack21_train": split_counts(len(tr_imgs), len(tr_anns), n_pids(tr_anns), ignore=0),
        "posetrack21_query": split_counts(len(queries), None, n_pids(queries), len(queries)),
        "posetrack21_gallery": split_counts(len(va_imgs), len(va_anns), n_pids(va_anns), ignore=0),
    }
    return {
        "splits": splits,
        "detail": {
            "images_without_person": sum(not i["has_labeled_person"] for i in tr_imgs + va_imgs)
        },
        "identities": {
            "train": [bank.get("posetrack21", i).combo for i in range(n_tr)],
            "val": [bank.get("posetrack21", 20000 + i).combo for i in range(n_va)],
        },
    }
