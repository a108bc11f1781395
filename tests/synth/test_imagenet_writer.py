"""The ImageNet stand-in: ImageNet's folder layout, counts from the files, and no person at all."""

import os
import re

import pytest
from PIL import Image

from hpps_d2.synth import categories, person, props
from hpps_d2.synth.config import WorldConfig
from hpps_d2.synth.writers import imagenet

WNID = re.compile(r"^n\d{8}$")
TRAIN_NAME, VAL_NAME = r"^{wnid}_\d+\.JPEG$", re.compile(r"^ILSVRC2012_val_(\d{8})\.JPEG$")


def _files(folder):
    return sorted(os.listdir(folder))


def test_layout_and_counts_from_the_files(world):
    root, manifest = world
    base = os.path.join(root, "imagenet")
    with open(os.path.join(base, "LOC_synset_mapping.txt"), encoding="utf-8") as f:
        lines = f.read().splitlines()
    wnids = [line.split(" ", 1)[0] for line in lines]
    assert wnids == sorted(wnids) and all(WNID.match(w) for w in wnids)
    assert all(len(line.split(" ", 1)[1]) > 0 for line in lines)
    detail = manifest["datasets"]["imagenet"]["detail"]
    assert detail["imagenet_classes"] == len(wnids) and 30 <= len(wnids) <= 60
    numbers = []
    for split in ("train", "val"):
        assert _files(os.path.join(base, split)) == wnids
        per_class = [len(_files(os.path.join(base, split, w))) for w in wnids]
        assert set(per_class) == {detail[f"imagenet_{split}_per_class"]}
        assert manifest["splits"][f"imagenet_{split}"]["images"] == sum(per_class)
        for w in wnids:
            for name in _files(os.path.join(base, split, w)):
                if split == "train":
                    assert re.match(TRAIN_NAME.format(wnid=w), name), name
                else:
                    numbers.append(int(VAL_NAME.match(name).group(1)))
    # val images are numbered 1..N over the split, as ILSVRC2012_val_00000001..00050000
    assert sorted(numbers) == list(range(1, len(numbers) + 1))
    some = os.path.join(base, "val", wnids[0], _files(os.path.join(base, "val", wnids[0]))[0])
    with Image.open(some) as im:
        assert im.format == "JPEG" and im.mode == "RGB"
        assert all(imagenet.IMAGE_SIDE[0] <= s <= imagenet.IMAGE_SIDE[1] for s in im.size)


def test_categories_need_colour_shape_and_texture():
    names = [c.name for c in categories.CATEGORIES]
    assert len(set(names)) == len(names)
    pairs = [("red car", "blue car"), ("red car", "red bin"), ("red/white stripes", "red/white checks")]
    for a, b in pairs:
        assert a in names and b in names


def test_no_person_is_ever_drawn(tmp_path, monkeypatch):
    """Every way the world draws a person (or a person-like figure) raises while the writer runs."""

    def forbidden(*args, **kwargs):
        raise AssertionError("the ImageNet stand-in drew a person or a person-like figure")

    drawers = [
        (person, "render_person"),
        (props, "render_person"),
        (props, "mannequin"),
        (props, "make_crowd"),
        (props, "make_poster"),
    ]
    originals = {id(getattr(m, n)) for m, n in drawers}
    # also where the stand-in's modules imported one of them by name
    drawers += [
        (m, n) for m in (categories, imagenet) for n, v in vars(m).items() if id(v) in originals
    ]
    for module, name in drawers:
        monkeypatch.setattr(module, name, forbidden)
    monkeypatch.setitem(props.DISTRACTORS, "mannequin", forbidden)
    words = ("person", "people", "mannequin", "crowd", "poster", "pedestrian", "human")
    for c in categories.CATEGORIES:
        assert not any(w in f"{c.name} {c.what}" for w in words), c
    # the self-check: the patch does catch a person drawn the world's way
    with pytest.raises(AssertionError, match="drew a person"):
        props.DISTRACTORS["mannequin"](None, 10.0)
    out = imagenet.write(str(tmp_path), WorldConfig(seed=3, scale=0.0), bank=None)
    assert out["splits"]["imagenet_train"]["images"] == 4 * len(categories.CATEGORIES)
