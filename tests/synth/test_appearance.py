"""Appearance depends on identity: instances of one identity are closer in colour than others."""

import collections
import glob
import itertools
import os

import cv2
import numpy as np

from hpps_d2.synth.identity import IdentityBank
from hpps_d2.synth.person import random_pose, render_person


def _hist(img: np.ndarray, mask=None) -> np.ndarray:
    hsv = cv2.cvtColor(img, cv2.COLOR_BGR2HSV)
    h = cv2.calcHist([hsv], [0, 1, 2], mask, [8, 3, 3], [0, 180, 0, 256, 0, 256]).ravel()
    return h / max(h.sum(), 1e-6)


def _intra_inter(hists_by_id) -> tuple:
    intra, inter = [], []
    ids = sorted(hists_by_id)
    for pid in ids:
        intra += [np.abs(a - b).sum() for a, b in itertools.combinations(hists_by_id[pid], 2)]
    for p, q in itertools.combinations(ids, 2):
        inter += [np.abs(a - b).sum() for a in hists_by_id[p] for b in hists_by_id[q]]
    return float(np.mean(intra)), float(np.mean(inter))


def test_rendered_instances():
    bank, rng = IdentityBank(0), np.random.default_rng(0)
    hists = collections.defaultdict(list)
    for i in range(12):
        app = bank.get("msmt17", i).appearance()
        for _ in range(4):
            sp = render_person(app, random_pose(rng), float(rng.uniform(60, 140)), rng, jitter=0.06)
            hists[i].append(_hist(sp.image, sp.mask.astype(np.uint8)))
    intra, inter = _intra_inter(hists)
    assert intra < 0.7 * inter


def test_reid_crops_across_cameras(world):
    """Through camera looks, blur, noise and backgrounds, MSMT17 crops still cluster by identity."""
    root, _ = world
    hists = collections.defaultdict(list)
    for path in sorted(glob.glob(os.path.join(root, "msmt17", "MSMT17_V1", "train", "*", "*.jpg"))):
        img = cv2.imread(path)
        h, w = img.shape[:2]
        hists[path.split(os.sep)[-2]].append(_hist(img[h // 6 : 5 * h // 6, w // 4 : 3 * w // 4]))
    hists = {k: v for k, v in hists.items() if len(v) >= 2}
    assert len(hists) >= 3
    intra, inter = _intra_inter(hists)
    assert intra < 0.92 * inter
