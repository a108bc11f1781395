"""
CUHK-SYSU-like street snaps and movie frames: ``Image/SSM/s<N>.jpg`` and the MATLAB annotations.

``annotation/Images.mat`` (``Img``: imname, nAppear, box(idlocate, ishard); ``idlocate`` is uint8
when all four values are below 256, uint16 otherwise), ``annotation/Person.mat``,
``annotation/pool.mat`` (test images), ``annotation/test/train_test/Train.mat`` ((n, 1) cell of
(1, 1) structs idname, nAppear, scene(imname, idlocate, ishard)) and ``TestG<k>.mat`` for each
standard k below the pool size (Query(imname, idlocate, ishard, idname), Gallery of exactly k
entries, positives first, negatives with empty (1, 0) float64 idlocate/ishard; every file lists
the same queries in the same order and each gallery extends the smaller one).

Quirks written: a query whose own image is in its gallery (same box), a gallery listing one
positive twice, and a zero-width box in one training image (the loaders drop it). Every struct
level holds >= 2 elements, as in the real files.
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
    struct_array,
    write_image,
)

__all__ = ["write", "GALLERY_SIZES"]

SUBDIR = "CUHK-SYSU"
GALLERY_SIZES = (50, 100, 500, 1000, 2000, 4000)


def _loc(box, dtype=None) -> np.ndarray:
    arr = np.array([box], np.int64)
    return arr.astype(dtype or (np.uint8 if arr.max() < 256 else np.uint16))


def _image(cfg, bank, rng, people, bystanders, style):
    knobs = cfg.knobs
    kind = "movie" if rng.random() < 0.3 else "snap"
    W = int(rng.integers(400, 561))
    H = int(W * 9 / 16) if kind == "movie" else int(rng.integers(300, 401))
    bg, horizon = make_background(kind, rng, H, W)
    scene = Scene(bg, horizon, ref_height=H * float(rng.uniform(0.7, 1.0)))
    n_unl = max(3 - len(people), int(rng.poisson(2.0 * knobs.unlabeled / 0.3 * knobs.crowd)))
    people = list(people) + [
        (bystanders[int(rng.integers(len(bystanders)))], None) for _ in range(n_unl)
    ]
    people = [people[int(i)] for i in rng.permutation(len(people))]
    fill_scene(
        scene,
        rng,
        knobs,
        people,
        (0.22 * H, 0.95 * scene.ref_height),
        max_overlap=0.4,
        distractor_mean=0.8,
        occluder_kinds=("car", "bush", "barrier", "bin"),
    )
    look = camera_looks(style, 1, rng, knobs.camera_shift)[0]
    img, placed = shoot(scene, style, look, rng, knobs)
    persons = sorted((p for p in placed if p.item.kind == "person"), key=lambda p: -p.visible)
    keep = [p for p in persons if p.visible >= 0.1]
    keep = keep if len(keep) >= 2 else persons[:2]
    boxes = []
    for p in keep:
        x0, y0 = max(0, int(round(p.fbox[0]))), max(0, int(round(p.fbox[1])))
        x1, y1 = (
            min(W, int(round(p.fbox[0] + p.fbox[2]))),
            min(H, int(round(p.fbox[1] + p.fbox[3]))),
        )
        boxes.append(
            ([x0, y0, max(1, x1 - x0), max(1, y1 - y0)], int(p.occlusion > 0.4), p.payload)
        )
    return img, boxes


def _render_split(cfg, bank, split, n_img, ids, bystanders, names, out, sizes):
    """Render images; ids is a list of (idname, identity); returns per image (name, boxes)."""
    style = STYLES["cuhk_sysu"]
    sched = cfg.rng("cuhk_sysu", split, 10**6)
    per_image = [[] for _ in range(n_img)]
    load = {}
    for idname, identity in ids:
        for i in pick_balanced(
            sched, range(n_img), load, int(sched.integers(sizes[0], sizes[1] + 1))
        ):
            per_image[i].append((identity, idname))
    result = []
    for i in range(n_img):
        rng = cfg.rng("cuhk_sysu", split, i)
        img, boxes = _image(cfg, bank, rng, per_image[i], bystanders, style)
        write_image(os.path.join(out, "Image", "SSM", names[i]), img, style)
        result.append((names[i], boxes))
    return result


def _occurrences(images):
    occ = {}
    for name, boxes in images:
        for box, hard, idname in boxes:
            if idname is not None:
                occ.setdefault(idname, []).append((name, box, hard))
    return occ


def _scene(entries):
    return struct_array(
        ("imname", "idlocate", "ishard"),
        [(np.array([n]), _loc(b, np.uint16), np.array([[h]], np.uint8)) for n, b, h in entries],
    )


def write(root: str, cfg, bank) -> dict:
    """Write ``<root>/CUHK-SYSU``; returns the manifest entries of train, query and gallery."""
    out = os.path.join(root, SUBDIR)
    n_tr_img, n_te_img = cfg.size("cuhk_sysu", "train_images"), cfg.size("cuhk_sysu", "test_images")
    n_tr, n_q = cfg.size("cuhk_sysu", "train_ids"), cfg.size("cuhk_sysu", "query_ids")
    rng = cfg.rng("cuhk_sysu", 97)
    numbers = [
        int(v) + 1 for v in rng.permutation(3 * (n_tr_img + n_te_img))[: n_tr_img + n_te_img]
    ]
    names = [f"s{v}.jpg" for v in numbers]
    pnum = [int(v) + 1 for v in rng.permutation(12 * (n_tr + n_q))[: n_tr + n_q]]
    train_ids = [(f"p{pnum[k]}", bank.get("cuhk_sysu", k)) for k in range(n_tr)]
    test_ids = [(f"p{pnum[n_tr + k]}", bank.get("cuhk_sysu", n_tr + k)) for k in range(n_q)]
    bystanders = bank.take("cuhk_sysu", n_tr + n_q, max(40, 2 * (n_tr + n_q)))
    train = _render_split(
        cfg, bank, 0, n_tr_img, train_ids, bystanders, names[:n_tr_img], out, (2, 5)
    )
    test = _render_split(
        cfg, bank, 1, n_te_img, test_ids, bystanders, names[n_tr_img:], out, (2, 4)
    )
    train_occ, test_occ = _occurrences(train), _occurrences(test)
    # Quirk: a zero-width box in the first training image (dropped by the loaders).
    zero = (train[0][1][0][0][0], train[0][1][0][0][1], 0, train[0][1][0][0][3])
    images = train + test
    img_rows = []
    for name, boxes in sorted(images, key=lambda t: int(t[0][1:-4])):
        locs = [(_loc(b), np.array([[h]], np.uint8)) for b, h, _ in boxes]
        if name == train[0][0]:
            locs.append((_loc(zero), np.array([[0]], np.uint8)))
        img_rows.append(
            (
                np.array([name]),
                np.array([[len(locs)]], np.uint8),
                struct_array(("idlocate", "ishard"), locs),
            )
        )
    ann = os.path.join(out, "annotation")
    savemat(
        os.path.join(ann, "Images.mat"),
        {"Img": struct_array(("imname", "nAppear", "box"), img_rows)},
    )
    train_rows = [
        (idname, train_occ[idname])
        for idname, _ in train_ids
        if len(train_occ.get(idname, [])) >= 2
    ]
    queries = []
    for idname, _ in test_ids:
        occ = test_occ.get(idname, [])
        if len(occ) >= 2:
            q = max(range(len(occ)), key=lambda i: (-occ[i][2], occ[i][1][3]))
            queries.append((idname, occ[q], [o for i, o in enumerate(occ) if i != q]))
    person_rows = [
        (np.array([i]), np.array([[len(s)]], np.uint8), _scene(s)) for i, s in train_rows
    ]
    person_rows += [
        (np.array([i]), np.array([[1 + len(p)]], np.uint8), _scene([q] + p)) for i, q, p in queries
    ]
    savemat(
        os.path.join(ann, "Person.mat"),
        {"Person": struct_array(("idname", "nAppear", "scene"), person_rows)},
    )
    pool = [name for name, _ in test]
    savemat(os.path.join(ann, "pool.mat"), {"pool": cell_column(pool)})
    cells = np.empty((len(train_rows), 1), dtype=object)
    for k, (idname, scene) in enumerate(train_rows):
        cells[k, 0] = struct_array(
            ("idname", "nAppear", "scene"),
            [(np.array([idname]), np.array([[len(scene)]], np.uint8), _scene(scene))],
            shape=(1, 1),
        )
    tt = os.path.join(ann, "test", "train_test")
    savemat(os.path.join(tt, "Train.mat"), {"Train": cells})
    _write_protocols(cfg, tt, queries, pool)

    def n_boxes(split):
        return sum(len(b) for _, b in split)

    splits = {
        "cuhk_sysu_train": split_counts(len(train), n_boxes(train), len(train_rows), ignore=0),
        "cuhk_sysu_query": split_counts(len(queries), None, len(queries), len(queries)),
        "cuhk_sysu_gallery": split_counts(len(test), n_boxes(test), len(queries), ignore=0),
    }
    sizes = [k for k in GALLERY_SIZES if k < len(pool)]
    return {
        "splits": splits,
        "detail": {"gallery_sizes": sizes, "zero_size_boxes": 1},
        "identities": {
            "train": [i.combo for _, i in train_ids],
            "test": [i.combo for _, i in test_ids],
            "bystanders": [i.combo for i in bystanders],
        },
    }


def _write_protocols(cfg, folder, queries, pool):
    """TestG<k>.mat for every standard k below the pool size; galleries are nested prefixes."""
    rng = cfg.rng("cuhk_sysu", 96)
    empty = (np.zeros((1, 0)), np.zeros((1, 0)))
    lists = []
    for qi, (idname, q, pos) in enumerate(queries):
        positives = [(n, b, h) for n, b, h in pos]
        if qi == 1:
            positives.append(q)  # quirk: the query image in its own gallery, same box
        if qi == 2 and positives:
            positives.insert(1, positives[0])  # quirk: one gallery entry listed twice
        own = {q[0]} | {n for n, _, _ in pos}
        negatives = [pool[int(i)] for i in rng.permutation(len(pool)) if pool[int(i)] not in own]
        lists.append((idname, q, positives, negatives))
    for k in (k for k in GALLERY_SIZES if k < len(pool)):
        rows = []
        for idname, q, positives, negatives in lists:
            gal = [
                (np.array([n]), _loc(b, np.uint16), np.array([[h]], np.uint8))
                for n, b, h in positives
            ]
            gal += [(np.array([n]),) + empty for n in negatives[: k - len(gal)]]
            query = struct_array(
                ("imname", "idlocate", "ishard", "idname"),
                [
                    (
                        np.array([q[0]]),
                        _loc(q[1], np.uint16),
                        np.array([[q[2]]], np.uint8),
                        np.array([idname]),
                    )
                ],
                shape=(1, 1),
            )
            rows.append((query, struct_array(("imname", "idlocate", "ishard"), gal[:k])))
        savemat(
            os.path.join(folder, f"TestG{k}.mat"),
            {f"TestG{k}": struct_array(("Query", "Gallery"), rows)},
        )
