"""
PRW-like campus surveillance: six fixed cameras, labeled and unlabeled people, query crops.

Files (the real PRW layout): ``frames/c<cam>s<seq>_<frame6>.jpg`` (c1-c5 480x270, c6 360x288, as
the real c6 differs from c1-c5), ``annotations/<frame>.jpg.mat`` with an (N, 5) float64
``[pid, x, y, w, h]`` array named ``box_new`` (most files), ``anno_file`` (some) or
``anno_previous`` (a few), ``frame_{train,test}.mat`` (``img_index_{train,test}``),
``ID_train.mat`` (``ID_train``), ``ID_test.mat`` (``ID_test2``), ``query_info.txt`` (CRLF) and
``query_box/<pid>_<frame>.jpg``.

Each camera has a static background and its own colour look. Every identity walks through 2-4
cameras and is drawn in many frames; pids are 1-based with gaps, -2 marks unlabeled bystanders.
Train and test identities are disjoint; test frames also hold labeled identities that are never
queried. Queries: one per query identity per camera where it appears (its most visible
occurrence), so every query has matches in other frames and other cameras. Quirks written: a few
boxes with negative coordinates (people cut by the left border) and one train frame that labels
one pid twice.
"""

import os

import numpy as np

from ..backgrounds import make_background
from ..scenes import Scene
from ..styles import STYLES, camera_looks
from .common import (
    cell_column,
    fill_scene,
    pick_balanced,
    savemat,
    shoot,
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


class _Camera:
    def __init__(self, cfg, cam: int, look):
        rng = cfg.rng("prw", 98, cam)
        self.cam, self.look = cam, look
        self.width, self.height = CAMERA_SIZES[cam]
        self.background, self.horizon = make_background("campus", rng, self.height, self.width)
        self.ref_height = self.height * float(rng.uniform(0.45, 0.6))
        self.seq, self.frame, self.count = 1, int(rng.integers(100, 5000)), 0

    def next_name(self, rng) -> str:
        if self.count and self.count % 40 == 0:
            self.seq, self.frame = self.seq + 1, int(rng.integers(100, 5000))
        self.count += 1
        self.frame += int(rng.integers(25, 121))
        return f"c{self.cam}s{self.seq}_{self.frame:06d}"


def _frames(cfg, bank, split: int, n_frames, ids, id_cams, bystanders, cameras, out, quirk):
    """Render one split; returns list of (name, cam, boxes (N,5), occurrences)."""
    knobs, style = cfg.knobs, STYLES["prw"]
    sched = cfg.rng("prw", split, 10**6)
    cams = sched.choice(6, size=n_frames, p=CAMERA_WEIGHTS / CAMERA_WEIGHTS.sum()) + 1
    counts, frames = {}, []
    for f in range(n_frames):
        cam = cameras[int(cams[f])]
        rng = cfg.rng("prw", split, f)
        name = cam.next_name(rng)
        cand = [i for i in range(len(ids)) if cam.cam in id_cams[i]]
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
        img, placed = shoot(scene, style, cam.look, rng, knobs)
        write_image(os.path.join(out, "frames", name + ".jpg"), img, style)
        keep = [p for p in placed if p.item.kind == "person" and p.visible >= 0.1] or [
            max((p for p in placed if p.item.kind == "person"), key=lambda p: p.visible)
        ]
        rows = [
            [float(p.payload)] + [round(v + float(rng.uniform(-0.5, 0.5)), 2) for v in p.fbox]
            for p in keep
        ]
        frames.append((name, cam.cam, np.array(rows, np.float64), keep, img))
    return frames


def _write_annotations(out, frames, start: int, duplicate_quirk: bool):
    done = not duplicate_quirk
    for k, (name, _, rows, _, _) in enumerate(frames):
        pids = rows[:, 0]
        if not done and (pids > 0).any() and (pids == UNLABELED_PID).any():
            rows[np.flatnonzero(pids == UNLABELED_PID)[0], 0] = pids[pids > 0][0]
            done = True
        savemat(os.path.join(out, "annotations", name + ".jpg.mat"), {_varname(start + k): rows})


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
    train = _frames(
        cfg,
        bank,
        0,
        cfg.size("prw", "train_frames"),
        train_ids,
        id_cams[0],
        bystanders,
        cameras,
        out,
        {"negative": neg[0]},
    )
    test = _frames(
        cfg,
        bank,
        1,
        cfg.size("prw", "test_frames"),
        test_ids,
        id_cams[1],
        bystanders,
        cameras,
        out,
        {"negative": neg[1]},
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

    splits = {
        "prw_train": split_counts(
            len(train), sum(len(f[2]) for f in train), len(labeled(train)), ignore=0
        ),
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
            "cameras": {c: list(CAMERA_SIZES[c]) for c in CAMERA_SIZES},
        },
        "identities": {
            "train": [bank.get("prw", k).combo for _, k in train_ids],
            "test": [bank.get("prw", k).combo for _, k in test_ids],
            "bystanders": [i.combo for i in bystanders],
        },
    }
