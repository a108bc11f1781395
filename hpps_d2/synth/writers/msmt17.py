"""
MSMT17-like re-ID crops: ``msmt17/MSMT17_V1/{train,test}/<pid4>/<PPPP_NNN_CC_DDDDtod_FFFF_K>.jpg``
and ``list_{train,val,query,gallery}.txt`` (``<rel/path> <pid>``, pid 0-based within its split).

15 cameras (12 outdoor plaza, 3 indoor corridor), each with its own colour look, under three
times of day. A training identity is seen by 2-5 cameras, 1-4 crops each; about 8% of its crops
go to ``list_val``. A test identity is seen by 2-4 cameras with 2-4 crops each; one crop per
camera is its query, the rest its gallery, so every query has same- and cross-camera matches.
"""

import os

from ..crops import cut, render_context
from ..styles import STYLES, TIME_OF_DAY, camera_looks, with_light
from .common import split_counts, write_image, write_text

__all__ = ["write"]

SUBDIR = os.path.join("msmt17", "MSMT17_V1")
NUM_CAMERAS = 15
DATES = ("0113", "0114", "0302", "0303")


def _shoot_id(cfg, rng, identity, pid, cams, per_cam, looks, neighbours):
    """Crops of one identity: list of (file name, camera, image)."""
    style = STYLES["msmt17"]
    out, nnn = [], 0
    for cam in cams:
        for _ in range(per_cam(rng)):
            tod = tuple(TIME_OF_DAY)[int(rng.integers(3))]
            look = with_light(looks[cam], *TIME_OF_DAY[tod])
            bg = "corridor" if cam >= 12 else "campus"
            shot = render_context(
                rng, identity, style, look, float(rng.uniform(80, 120)), cfg.knobs, neighbours, bg
            )
            crop = cut(shot, rng, margin=(0.03, 0.12), jitter=0.03)
            date = DATES[int(rng.integers(len(DATES)))]
            frame, k = int(rng.integers(10000)), int(rng.random() < 0.1)
            name = f"{pid:04d}_{nnn:03d}_{cam + 1:02d}_{date}{tod}_{frame:04d}_{k}.jpg"
            out.append((name, cam, crop))
            nnn += 1
    return out


def write(root: str, cfg, bank) -> dict:
    """Write ``<root>/msmt17/MSMT17_V1``; returns the manifest entries of train, query, gallery."""
    out = os.path.join(root, SUBDIR)
    style = STYLES["msmt17"]
    looks = camera_looks(style, NUM_CAMERAS, cfg.rng("msmt17", 99), cfg.knobs.camera_shift)
    n_train, n_test = cfg.size("msmt17", "train_ids"), cfg.size("msmt17", "test_ids")
    neighbours = bank.take("msmt17", n_train + n_test, 40)
    lists = {"train": [], "val": [], "query": [], "gallery": []}
    for pid in range(n_train):
        rng = cfg.rng("msmt17", 0, pid)
        cams = sorted(
            int(c) for c in rng.choice(NUM_CAMERAS, int(rng.integers(2, 6)), replace=False)
        )
        shots = _shoot_id(
            cfg,
            rng,
            bank.get("msmt17", pid),
            pid,
            cams,
            lambda r: int(r.integers(1, 5)),
            looks,
            neighbours,
        )
        for k, (name, _, crop) in enumerate(shots):
            rel = f"{pid:04d}/{name}"
            write_image(os.path.join(out, "train", rel), crop, style)
            to_val = k > 0 and rng.random() < 0.08
            lists["val" if to_val else "train"].append(f"{rel} {pid}")
    for pid in range(n_test):
        rng = cfg.rng("msmt17", 1, pid)
        cams = sorted(
            int(c) for c in rng.choice(NUM_CAMERAS, int(rng.integers(2, 5)), replace=False)
        )
        shots = _shoot_id(
            cfg,
            rng,
            bank.get("msmt17", n_train + pid),
            pid,
            cams,
            lambda r: int(r.integers(2, 5)),
            looks,
            neighbours,
        )
        query_of = {}
        for k, (_, cam, _) in enumerate(shots):
            query_of.setdefault(cam, [])
            query_of[cam].append(k)
        queries = {ks[int(rng.integers(len(ks)))] for ks in query_of.values()}
        for k, (name, _, crop) in enumerate(shots):
            rel = f"{pid:04d}/{name}"
            write_image(os.path.join(out, "test", rel), crop, style)
            lists["query" if k in queries else "gallery"].append(f"{rel} {pid}")
    for key, lines in lists.items():
        write_text(os.path.join(out, f"list_{key}.txt"), sorted(lines))

    def ids(lines):
        return len({line.rsplit(" ", 1)[1] for line in lines})

    splits = {
        "msmt17_train": split_counts(len(lists["train"]), None, ids(lists["train"])),
        "msmt17_query": split_counts(len(lists["query"]), None, ids(lists["query"])),
        "msmt17_gallery": split_counts(len(lists["gallery"]), None, ids(lists["gallery"])),
    }
    return {
        "splits": splits,
        "detail": {"msmt17_val_images": len(lists["val"])},
        "identities": {
            "train": [bank.get("msmt17", i).combo for i in range(n_train)],
            "test": [bank.get("msmt17", n_train + i).combo for i in range(n_test)],
        },
    }
