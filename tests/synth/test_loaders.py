"""The project's loaders read every synthetic split, with exactly the manifest's counts."""

import os

import cv2
import numpy as np
import pytest

from hpps_d2.data.datasets import ALL_SPLITS
from hpps_d2.data.datasets.stats import split_counts
from hpps_d2.data.image_io import read_image


def test_every_split_is_in_the_manifest(world):
    _, manifest = world
    assert sorted(s.name for s in ALL_SPLITS) == sorted(manifest["splits"])


@pytest.mark.parametrize("spec", ALL_SPLITS, ids=lambda s: s.name)
def test_loader_counts_equal_manifest(world, spec):
    root, manifest = world
    records = spec.loader(os.path.join(root, spec.subdir), spec.split)
    assert split_counts(records) == manifest["splits"][spec.name]


@pytest.mark.parametrize(
    "name", ["cuhk03_detected_train", "cuhk03_labeled_query", "luperson_30k", "luperson_nl_all", "prw_query"]
)
def test_pixels_are_readable(world, name):
    """Records whose pixels live in HDF5 (detected CUHK03) or LMDB (LUPerson) decode as images
    equal in size to what the world wrote; labeled CUHK03 comes from the extracted PNGs."""
    root, _ = world
    spec = next(s for s in ALL_SPLITS if s.name == name)
    records = spec.loader(os.path.join(root, spec.subdir), spec.split)
    for r in records[:3]:
        img = read_image(r)
        assert img.ndim == 3 and img.shape[2] == 3 and img.dtype == np.uint8 and img.size > 0
        if name == "cuhk03_labeled_query":
            assert "image_source" not in r and (img == cv2.imread(r["file_name"])).all()
        if name.startswith(("cuhk03_detected", "luperson")):
            assert "image_source" in r
