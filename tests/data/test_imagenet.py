"""The ImageNet loader against torchvision's own ImageFolder on a hand-built folder."""

import os

import numpy as np
import pytest
import torchvision
from PIL import Image

from hpps_d2.data.datasets.common import DatasetFormatError, DatasetNotFoundError
from hpps_d2.data.datasets.imagenet import SPLITS, class_names, load_imagenet

WNIDS = ("n01440764", "n02102040", "n09999999")  # unsorted on disk: created in another order
SIZES = {
    "n01440764": [(30, 20), (17, 40)],
    "n02102040": [(25, 25)],
    "n09999999": [(8, 50), (9, 9), (12, 7)],
}


def _write(root, split, wnid, k, wh, ext=".JPEG"):
    folder = os.path.join(root, split, wnid)
    os.makedirs(folder, exist_ok=True)
    name = f"{wnid}_{k}{ext}" if split == "train" else f"ILSVRC2012_val_{k:08d}{ext}"
    Image.fromarray(np.full((wh[1], wh[0], 3), 40 * k, np.uint8)).save(os.path.join(folder, name))


@pytest.fixture
def imagenet(tmp_path):
    root = str(tmp_path / "imagenet")
    for split in ("train", "val"):
        for wnid in reversed(WNIDS):
            for k, wh in enumerate(SIZES[wnid], start=1):
                _write(root, split, wnid, k, wh)
    with open(os.path.join(root, "LOC_synset_mapping.txt"), "w") as f:
        f.write("n01440764 tench, Tinca tinca\nn02102040 English springer\nn09999999 stand-in\n")
    return root


@pytest.mark.parametrize("split", ["train", "val"])
def test_records_match_torchvision_image_folder(imagenet, split):
    records = load_imagenet(imagenet, split)
    reference = torchvision.datasets.ImageFolder(os.path.join(imagenet, split))
    assert [(r["file_name"], r["class_id"]) for r in records] == reference.samples
    for r in records:
        with Image.open(r["file_name"]) as im:
            assert (r["width"], r["height"]) == im.size
        wnid, stem = r["image_id"].split("/")
        assert reference.class_to_idx[wnid] == r["class_id"]
        assert r["file_name"].endswith(stem + ".JPEG")
    assert class_names(imagenet) == ["tench, Tinca tinca", "English springer", "stand-in"]


def test_missing_class_in_val_keeps_the_indices_of_the_mapping(imagenet):
    import shutil

    shutil.rmtree(os.path.join(imagenet, "val", "n02102040"))
    ids = {r["image_id"].split("/")[0]: r["class_id"] for r in load_imagenet(imagenet, "val")}
    assert ids == {"n01440764": 0, "n09999999": 2}


def test_bad_layouts_are_named(imagenet, tmp_path):
    with pytest.raises(DatasetNotFoundError, match="imagenet.*HPPS_DATASETS"):
        load_imagenet(str(tmp_path / "nothing" / "imagenet"), "train")
    os.rename(os.path.join(imagenet, "val"), os.path.join(imagenet, "elsewhere"))
    with pytest.raises(DatasetNotFoundError, match=r"val"):
        load_imagenet(imagenet, "val")
    os.makedirs(os.path.join(imagenet, "train", "n00000001"))
    with pytest.raises(DatasetFormatError, match=r"n00000001.*LOC_synset_mapping.txt"):
        load_imagenet(imagenet, "train")
    with open(os.path.join(imagenet, "LOC_synset_mapping.txt"), "a") as f:
        f.write("n00000001 empty class\n")
    with pytest.raises(DatasetFormatError, match=r"n00000001: class folder without images"):
        load_imagenet(imagenet, "train")
    with open(os.path.join(imagenet, "LOC_synset_mapping.txt"), "a") as f:
        f.write("broken-line\n")
    with pytest.raises(DatasetFormatError, match=r"LOC_synset_mapping.txt, line 5"):
        load_imagenet(imagenet, "train")


def test_without_mapping_the_folders_are_the_classes(imagenet):
    os.remove(os.path.join(imagenet, "LOC_synset_mapping.txt"))
    records = load_imagenet(imagenet, "train")
    assert sorted({r["class_id"] for r in records}) == [0, 1, 2]
    assert class_names(imagenet) == sorted(WNIDS)


def test_registered_splits():
    assert [(s.name, s.task, s.role, s.subdir) for s in SPLITS] == [
        ("imagenet_train", "classification", "train", "imagenet"),
        ("imagenet_val", "classification", "val", "imagenet"),
    ]
    from detectron2.data import DatasetCatalog

    names = set(DatasetCatalog.list())
    assert {"imagenet_train", "imagenet_val", "synth_imagenet_train", "synth_imagenet_val"} <= names
