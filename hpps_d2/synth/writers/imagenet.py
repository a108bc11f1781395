"""
ImageNet-like classification images (the stand-in for ImageNet pre-training), in ImageNet's
on-disk layout after torchvision's preparation::

    imagenet/LOC_synset_mapping.txt                        "<wnid> <name>" per line, wnid order
    imagenet/train/<wnid>/<wnid>_<k>.JPEG                  k = 0, 1, ... per class
    imagenet/val/<wnid>/ILSVRC2012_val_<8 digits>.JPEG     numbered 1..N over the whole split

torchvision's ``ImageNet`` reads ``<root>/<split>`` with ``ImageFolder`` (torchvision
datasets/imagenet.py L78-79 ``split_folder``), and its val preparation moves every
``ILSVRC2012_val_*.JPEG`` into the folder of its wnid (L189-222, ``parse_val_archive``);
``LOC_synset_mapping.txt`` is the synset list of the ImageNet LOC challenge files (Kaggle
release), one ``wnid name`` line per class in wnid order. The val images are numbered in a
shuffled class order, as the real ones are.

The categories (person-free objects, textures and empty scenes) are
:data:`~hpps_d2.synth.categories.CATEGORIES`. Image sizes vary per image (96-128 px a side, like
ImageNet's varied sizes, small enough for the CPU); the camera is one look per image around an
"imagenet" style of ours (no source of the world is more generic), with the world's noise and blur
knobs.
"""

import os

from ..categories import CATEGORIES, draw
from ..styles import Style, camera_looks, finish, with_light
from .common import split_counts, write_image, write_text

__all__ = ["write", "SUBDIR", "STYLE", "IMAGE_SIDE"]

SUBDIR = "imagenet"
#: Camera of the stand-in (ours): JPEG like ImageNet, mild noise and blur, wide look spread.
STYLE = Style(("mixed",), ".JPEG", 90, 2.5, 0.5, (1.0, 1.0, 1.0), 1.0, 1.0, 1.0)
#: Range of the image height and width in pixels (ours: about ImageNet's object scale at 1/4).
IMAGE_SIDE = (96, 128)
_SPLITS = (("train", "train_per_class"), ("val", "val_per_class"))


def _image(cfg, split: int, c: int, k: int):
    rng = cfg.rng("imagenet", split, c, k)
    h, w = (int(v) for v in rng.integers(IMAGE_SIDE[0], IMAGE_SIDE[1] + 1, 2))
    img = draw(CATEGORIES[c], rng, h, w)
    (look,) = camera_looks(STYLE, 1, rng, cfg.knobs.camera_shift)
    gains = tuple(float(g) for g in rng.uniform(0.9, 1.1, 3))
    look = with_light(look, gains, float(rng.uniform(0.7, 1.2)))
    return finish(img, STYLE, look, rng, cfg.knobs.noise, cfg.knobs.blur)


def write(root: str, cfg, bank) -> dict:
    """Write ``<root>/imagenet``; returns the manifest entries of ``imagenet_{train,val}``."""
    del bank  # no people
    out = os.path.join(root, SUBDIR)
    write_text(
        os.path.join(out, "LOC_synset_mapping.txt"), [f"{c.wnid} {c.name}" for c in CATEGORIES]
    )
    splits, per_class = {}, {}
    for s, (split, key) in enumerate(_SPLITS):
        n = cfg.size("imagenet", key)
        jobs = [(c, k) for c in range(len(CATEGORIES)) for k in range(n)]
        if split == "val":  # val numbers follow a shuffled order, as ImageNet's do
            order = cfg.rng("imagenet", 9).permutation(len(jobs))
            jobs = [jobs[i] for i in order]
        for number, (c, k) in enumerate(jobs, start=1):
            wnid = CATEGORIES[c].wnid
            name = f"{wnid}_{k}.JPEG" if split == "train" else f"ILSVRC2012_val_{number:08d}.JPEG"
            write_image(os.path.join(out, split, wnid, name), _image(cfg, s, c, k), STYLE)
        splits[f"imagenet_{split}"] = split_counts(len(jobs))
        per_class[split] = n
    return {
        "splits": splits,
        "detail": {
            "imagenet_classes": len(CATEGORIES),
            "imagenet_train_per_class": per_class["train"],
            "imagenet_val_per_class": per_class["val"],
        },
    }
