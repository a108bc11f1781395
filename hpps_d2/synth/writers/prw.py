"""
PRW-like campus surveillance: six fixed cameras, labeled and unlabeled people, query crops.

Files (the real PRW layout): ``frames/c<cam>s<seq>_<frame6>.jpg`` (c1-c5 480x270, c6 360x288, as
the real c6 differs from c1-c5; times the ``prw.frame_scale`` lever),
``annotations/<frame>.jpg.mat`` with an (N, 5) float64 ``[pid, x, y, w, h]`` array named
``box_new`` (most files), ``anno_file`` (some) or ``anno_previous`` (a few),
``frame_{train,test}.mat`` (``img_index_{train,test}``), ``ID_train.mat`` (``ID_train``),
``ID_test.mat`` (``ID_test2``), ``query_info.txt`` (CRLF) and ``query_box/<pid>_<frame>.jpg``.

Each camera has a static background and its own colour look. Every identity walks through 2-4
cameras and is drawn in many frames; pids are 1-based with gaps, -2 marks unlabeled bystanders.
Train and test identities are disjoint; test frames also hold labeled identities that are never
queried. Queries: one per query identity per camera where it appears (its most visible
occurrence), so every query has matches in other frames and other cameras. Quirks written: a few
boxes with negative coordinates (people cut by the left border) and one train frame that labels
one pid twice.

Frame size (``--size prw.frame_scale=s``, ours): every scene is laid out and rendered at the
sizes above, then resized by ``s`` (``cv2.INTER_AREA``) before the camera look, blur, noise and
JPEG are applied at the new size, so people, occluders and background keep their proportions
and the camera keeps its per-pixel character; boxes are scaled by ``s``.

Validation arrangement (ours): the train identities that
:func:`hpps_d2.data.holdout.select_holdout` holds out (the rule the ``prw_val_*`` splits apply
to the loaded train split; ranks only, so raw pids select the same people) appear only in their
own train frames, ``round(train_frames * held / train_ids)`` of them (at least 2) spread evenly
through the split, with each other and bystanders; the other frames never show them. Carving the
validation split then removes exactly those frames. A frame whose drawn camera no identity of
its group visits is moved to the next camera of the group (cyclically, by frame index).
``prw_train`` still holds every train frame.
"""

import os

import cv2
import numpy as np

from ...data.holdout import DEFAULT_FRACTION, DEFAULT_SEED, select_holdout
from ..backgrounds import make_background
from ..scenes import Scene
from ..styles import STYLES, camera_looks, finish
from .common import (
    cell_column,
    fill_scene,
    pick_balanced,
    savemat,
    split_counts,
    write_image,
    write_text,
)

__all__ = ["write"]

SUBDIR = "PRW"
CAMERA_SIZES = {
    1: (480, 270),
    2: (480, 270),
    3: (480, 270),
    4: (480, 270),
    5: (480, 270),
    6: (360, 288),
}
CAMERA_WEIGHTS = np.array([1.0, 1.0, 1.0, 1.0, 1.0, 0.6])
UNLABELED_PID = -2


def _varname(k: int) -> str:
    """``box_new`` in most files, ``anno_file`` in some, ``anno_previous`` in a few."""
    if k % 23 == 2:
        return "anno_previous"
    if k % 7 == 1:
        return "anno_file"
    return "box_new"


def _frame_size(cam: int, frame_scale: float):
    """(width, height) of camera ``cam``'s frames at ``frame_scale``."""
    w, h = CAMERA_SIZES[cam]
    return max(16, int(round(w * frame_scale))), max(16, int(round(h * frame_scale)))


class _Camera:
    def __init__(self, cfg, cam: int, look):
        rng = cfg.rng("prw", 98, cam)
        self.cam, self.look = cam, look
        self.width, self.height = CAMERA_SIZES[cam]  # layout and rendering size
        self.frame_scale = cfg.factor("prw", "frame_scale")
        self.out_size = _frame_size(cam, self.frame_scale)  # written size (width, height)
        self.background, self.horizon = make_background("campus", rng, self.height, self.width)
        self.ref_height = self.height * float(rng.uniform(0.45, 0.6))
        self.seq, self.frame, self.count = 1, int(rng.integers(100, 5000)), 0

    def next_name(self, rng) -> str:
        if self.count and self.count % 40 == 0:
            self.seq, self.frame = self.seq + 1, int(rng.integers(100, 5000))
        self.count += 1
        self.frame += int(rng.integers(25, 121))
        return f"c{self.cam}s{self.seq}_{self.frame:06d}"


def _spread(n_frames: int, n_marked: int):
    """Which of ``n_frames`` frames are marked: ``n_marked`` of them, evenly spread."""
    return [(f + 1) * n_marked // n_frames != f * n_marked // n_frames for f in range(n_frames)]


def _frames(cfg, bank, split: int, n_frames, ids, id_cams, bystanders, cameras, out, quirk, groups):
    """
    Render one split; returns list of (name, cam, boxes (N,5), occurrences, image); the last two
    are None for the train split (``split == 0``).

    Args:
        groups: (per-frame group index, per-group list of id indices): frame ``f`` shows only
            identities of group ``groups[0][f]``.
    """
    knobs, style = cfg.knobs, STYLES["prw"]
    sched = cfg.rng("prw", split, 10**6)
    cams = sched.choice(6, size=n_frames, p=CAMERA_WEIGHTS / CAMERA_WEIGHTS.sum()) + 1
    frame_group, members = groups
    visited = [sorted({c for i in m for c in id_cams[i]}) for m in members]
    counts, frames = {}, []
    for f in range(n_frames):
        group = members[frame_group[f]]
        c = int(cams[f])
        if c not in visited[frame_group[f]]:
            c = visited[frame_group[f]][f % len(visited[frame_group[f]])]
        cam = cameras[c]
        rng = cfg.rng("prw", split, f)
        name = cam.next_name(rng)
        cand = [i for i in group if cam.cam in id_cams[i]]
        n_lab = max(1, int(round(rng.integers(2, 6) * knobs.crowd)))
        chosen = pick_balanced(sched, cand, counts, n_lab)
        n_unl = int(rng.poisson(n_lab * knobs.unlabeled / max(1e-6, 1 - knobs.unlabeled)))
        n_unl = max(n_unl, int(not chosen))  # every frame shows somebody
        people = [(bank.get("prw", ids[i][1]), ids[i][0]) for i in chosen]
        people += [
            (bystanders[int(rng.integers(len(bystanders)))], UNLABELED_PID) for _ in range(n_unl)
        ]
        order = rng.permutation(len(people))
        people = [people[int(i)] for i in order]
        scene = Scene(cam.background, cam.horizon, cam.ref_height)
        heights = (0.14 * cam.height, 0.95 * cam.ref_height)
        if quirk["negative"](f) and people:
            identity, pid = people.pop(0)
            h = float(rng.uniform(*heights))
            scene.add_person(
                rng,
                identity,
                h,
                pid,
                foot=(0.06 * h, scene.foot_y(h)),
                jitter=knobs.appearance_jitter,
            )
        fill_scene(
            scene,
            rng,
            knobs,
            people,
            heights,
            max_overlap=0.45,
            distractor_mean=0.8,
            occluder_kinds=("bush", "bin", "barrier"),
        )
        img, placed = scene.render()
        if cam.frame_scale != 1.0:
            img = cv2.resize(img, cam.out_size, interpolation=cv2.INTER_AREA)
        img = finish(img, style, cam.look, rng, knobs.noise, knobs.blur)
        write_image(os.path.join(out, "frames", name + ".jpg"), img, style)
        keep = [p for p in placed if p.item.kind == "person" and p.visible >= 0.1] or [
            max((p for p in placed if p.item.kind == "person"), key=lambda p: p.visible)
        ]
        sx, sy = cam.out_size[0] / cam.width, cam.out_size[1] / cam.height
        rows = [
            [float(p.payload)]
            + [
                round(v * k + float(rng.uniform(-0.5, 0.5)), 2)
                for v, k in zip(p.fbox, (sx, sy, sx, sy))
            ]
            for p in keep
        ]
        # Only test frames' people and pixels are needed later (query crops): train frames keep
        # their rows only, so memory does not grow with the train split.
        rows = np.array(rows, np.float64)
        frames.append((name, cam.cam, rows, keep if split else None, img if split else None))
    return frames


def _write_annotations(out, frames, start: int, duplicate_quirk: bool):
    done = not duplicate_quirk
    for k, (name, _, rows, _, _) in enumerate(frames):
        pids = rows[:, 0]
        if not done and (pids > 0).any() and (pids == UNLABELED_PID).any():
            rows[np.flatnonzero(pids == UNLABELED_PID)[0], 0] = pids[pids > 0][0]
            done = True
        savemat(os.path.join(out, "annotations", name + ".jpg.mat"), {_varname(start + k): rows})


def _validation_counts(train, present):
    """
    Manifest entries of ``prw_val_{train,query,gallery}``, counted from the written rows (what
    the train loader will read: ``train`` rows are unchanged by it at the boxes it keeps), with
    the holdout rule applied to the identities present.
    """
    held = set(select_holdout(sorted(present), DEFAULT_FRACTION, DEFAULT_SEED))
    gallery = [f for f in train if held & {int(v) for v in f[2][:, 0] if v > 0}]
    rest = [f for f in train if not held & {int(v) for v in f[2][:, 0] if v > 0}]
    frames_of = {}
    for k, f in enumerate(gallery):
        for v in {int(v) for v in f[2][:, 0] if v in held}:
            frames_of.setdefault(v, []).append(k)
    n_queries = sum(1 for v in frames_of.values() if len(v) >= 2)
    splits = {
        "prw_val_train": split_counts(
            len(rest),
            sum(len(f[2]) for f in rest),
            len({int(v) for f in rest for v in f[2][:, 0] if v > 0}),
            ignore=0,
        ),
        "prw_val_query": split_counts(n_queries, None, n_queries, n_queries),
        "prw_val_gallery": split_counts(
            len(gallery), sum(len(f[2]) for f in gallery), len(frames_of), ignore=0
        ),
    }
    detail = {
        "fraction": DEFAULT_FRACTION,
        "seed": DEFAULT_SEED,
        "held_out": sorted(held),
        "gallery_frames": [f[0] for f in gallery],
    }
    return splits, detail


def write(root: str, cfg, bank) -> dict:
    """Write ``<root>/PRW``; returns the manifest entries of train, query and gallery."""
    out = os.path.join(root, SUBDIR)
    style = STYLES["prw"]
    n_tr, n_te = cfg.size("prw", "train_ids"), cfg.size("prw", "test_ids")
    n_q = min(cfg.size("prw", "query_ids"), n_te)
    rng = cfg.rng("prw", 97)
    raw = [int(v) + 1 for v in rng.permutation(int((n_tr + n_te) * 1.15) + 2)]
    train_ids = [(pid, k) for k, pid in enumerate(sorted(raw[:n_tr]))]
    test_ids = [(pid, n_tr + k) for k, pid in enumerate(sorted(raw[n_tr : n_tr + n_te]))]
    bystanders = bank.take("prw", n_tr + n_te, max(20, n_tr + n_te))
    looks = camera_looks(style, 6, cfg.rng("prw", 99), cfg.knobs.camera_shift)
    cameras = {c: _Camera(cfg, c, looks[c - 1]) for c in range(1, 7)}
    id_cams = {}
    for split, ids in ((0, train_ids), (1, test_ids)):
        r = cfg.rng("prw", 96, split)
        id_cams[split] = [
            set(int(c) + 1 for c in r.choice(6, int(r.integers(2, 5)), replace=False)) for _ in ids
        ]
    neg = {0: lambda f: f % 50 == 5, 1: lambda f: f % 50 == 7}
    # Validation arrangement (module docstring): group 1 = the held-out train identities.
    n_train_frames, n_test_frames = cfg.size("prw", "train_frames"), cfg.size("prw", "test_frames")
    held = set(select_holdout([pid for pid, _ in train_ids], DEFAULT_FRACTION, DEFAULT_SEED))
    held_idx = [i for i, (pid, _) in enumerate(train_ids) if pid in held]
    rest_idx = [i for i, (pid, _) in enumerate(train_ids) if pid not in held]
    n_val = min(max(2, int(round(n_train_frames * len(held_idx) / n_tr))), n_train_frames - 2)
    train_groups = ([int(v) for v in _spread(n_train_frames, n_val)], [rest_idx, held_idx])
    test_groups = ([0] * n_test_frames, [list(range(len(test_ids)))])
    train = _frames(
        cfg,
        bank,
        0,
        n_train_frames,
        train_ids,
        id_cams[0],
        bystanders,
        cameras,
        out,
        {"negative": neg[0]},
        train_groups,
    )
    test = _frames(
        cfg,
        bank,
        1,
        n_test_frames,
        test_ids,
        id_cams[1],
        bystanders,
        cameras,
        out,
        {"negative": neg[1]},
        test_groups,
    )
    _write_annotations(out, train, 0, duplicate_quirk=True)
    _write_annotations(out, test, len(train), duplicate_quirk=False)
    savemat(
        os.path.join(out, "frame_train.mat"),
        {"img_index_train": cell_column([f[0] for f in train])},
    )
    savemat(
        os.path.join(out, "frame_test.mat"), {"img_index_test": cell_column([f[0] for f in test])}
    )

    # Queries: per query id and camera, its most visible occurrence; the id must appear elsewhere.
    occ = {}
    for fi, (_, cam, rows, keep, _) in enumerate(test):
        for row, p in zip(rows, keep):
            if row[0] > 0:
                occ.setdefault(int(row[0]), []).append((cam, -p.visible, fi, row))
    query_pids = [pid for pid, _ in test_ids if len({o[2] for o in occ.get(pid, [])}) >= 2][:n_q]
    qrng = cfg.rng("prw", 95)
    lines = []
    for pid in query_pids:
        for cam in sorted({o[0] for o in occ[pid]}):
            _, _, fi, row = min(o for o in occ[pid] if o[0] == cam)
            name, img = test[fi][0], test[fi][4]
            box = [round(float(v) + float(qrng.uniform(-1, 1)), 2) for v in row[1:]]
            lines.append(f"{pid} " + " ".join(f"{v:g}" for v in box) + f" {name}")
            x0, y0 = max(0, int(box[0])), max(0, int(box[1]))
            x1, y1 = (
                min(img.shape[1], int(box[0] + box[2]) + 1),
                min(img.shape[0], int(box[1] + box[3]) + 1),
            )
            write_image(
                os.path.join(out, "query_box", f"{pid}_{name}.jpg"), img[y0:y1, x0:x1], style
            )
    write_text(os.path.join(out, "query_info.txt"), lines, newline="\r\n")
    savemat(
        os.path.join(out, "ID_train.mat"),
        {"ID_train": np.array([[p for p, _ in train_ids]], np.float64)},
    )
    savemat(os.path.join(out, "ID_test.mat"), {"ID_test2": np.array([query_pids], np.float64)})

    def labeled(frames):
        return {int(v) for f in frames for v in f[2][:, 0] if v > 0}

    val, val_detail = _validation_counts(train, labeled(train))
    splits = {
        "prw_train": split_counts(
            len(train), sum(len(f[2]) for f in train), len(labeled(train)), ignore=0
        ),
        **val,
        "prw_query": split_counts(len(lines), None, len(query_pids), len(lines)),
        "prw_gallery": split_counts(
            len(test), sum(len(f[2]) for f in test), len(labeled(test)), ignore=0
        ),
    }
    unl = {
        k: int(sum((f[2][:, 0] < 0).sum() for f in fr))
        for k, fr in (("train", train), ("test", test))
    }
    return {
        "splits": splits,
        "detail": {
            "unlabeled_boxes": unl,
            "cameras": {c: list(cameras[c].out_size) for c in CAMERA_SIZES},
            "frame_scale": cameras[1].frame_scale,
            "validation": {
                **val_detail,
                "planned_held_out": sorted(held),
                "planned_frames": n_val,
            },
        },
        "identities": {
            "train": [bank.get("prw", k).combo for _, k in train_ids],
            "test": [bank.get("prw", k).combo for _, k in test_ids],
            "bystanders": [i.combo for i in bystanders],
        },
    }
