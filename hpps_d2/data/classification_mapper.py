"""
Dataset mappers of classification records (ImageNet and its stand-in,
:mod:`hpps_d2.data.datasets.imagenet`), torchvision's ImageNet recipe.

Training (torchvision references/classification/presets.py L20-22, ``ClassificationPresetTrain``):
``RandomResizedCrop(crop_size)`` then ``RandomHorizontalFlip(hflip_prob)``. The crop parameters
come from torchvision's own ``RandomResizedCrop.get_params`` (torchvision/transforms/transforms.py
L929), run on a torch generator seeded from ``np.random``, so a sample's crop is a function of the
per-sample seed that :class:`~hpps_d2.data.build.SeededMapDataset` sets (resumable, any number of
workers), not of the global torch RNG.

Evaluation (presets.py L49-60, ``ClassificationPresetEval``): ``Resize(resize_size)`` of the
shorter side, then ``CenterCrop(crop_size)``.

Both resize with bilinear interpolation and antialiasing (torchvision's default for PIL images) on
the uint8 tensor. The output image stays uint8-valued 0-255 in ``cfg.INPUT.FORMAT`` order; the
model normalises it (``MODEL.PIXEL_MEAN`` / ``PIXEL_STD``), as the person-search models do.
"""

import numpy as np
import torch
import torchvision.transforms.functional as TF
from torchvision.transforms import InterpolationMode, RandomResizedCrop

from .image_io import read_image

__all__ = [
    "ClassificationTrainMapper",
    "ClassificationTestMapper",
    "build_classification_test_loader",
]


def _image_tensor(record: dict, fmt: str) -> torch.Tensor:
    """(3, H, W) uint8 image of ``record`` in channel order ``fmt``."""
    img = read_image(record, fmt)
    return torch.from_numpy(np.ascontiguousarray(img.transpose(2, 0, 1)))


def _output(record: dict, image: torch.Tensor) -> dict:
    return {"image": image, "class_id": int(record["class_id"]), "image_id": record["image_id"]}


class ClassificationTrainMapper:
    """record -> ``{"image": (3, S, S) uint8 tensor, "class_id": int, "image_id": str}``, S =
    ``INPUT.CLASSIFICATION.TRAIN_CROP_SIZE``."""

    def __init__(self, cfg):
        c = cfg.INPUT.CLASSIFICATION
        self.format = cfg.INPUT.FORMAT
        self.size = int(c.TRAIN_CROP_SIZE)
        self.scale = tuple(float(v) for v in c.CROP_SCALE)
        self.ratio = tuple(float(v) for v in c.CROP_RATIO)
        self.hflip_prob = float(c.HFLIP_PROB)

    def __call__(self, record: dict) -> dict:
        image = _image_tensor(record, self.format)
        g = torch.Generator().manual_seed(int(np.random.randint(2**31)))
        with torch.random.fork_rng(devices=[]):
            torch.random.set_rng_state(g.get_state())
            i, j, h, w = RandomResizedCrop.get_params(image, list(self.scale), list(self.ratio))
        image = TF.resized_crop(
            image, i, j, h, w, [self.size, self.size], InterpolationMode.BILINEAR, antialias=True
        )
        if np.random.rand() < self.hflip_prob:
            image = image.flip(-1)
        return _output(record, image)


class ClassificationTestMapper:
    """record -> ``{"image": (3, S, S) uint8 tensor, "class_id", "image_id"}``: shorter side
    resized to ``TEST_RESIZE_SIZE``, centre crop S = ``TEST_CROP_SIZE``."""

    def __init__(self, cfg):
        c = cfg.INPUT.CLASSIFICATION
        self.format = cfg.INPUT.FORMAT
        self.resize, self.crop = int(c.TEST_RESIZE_SIZE), int(c.TEST_CROP_SIZE)

    def __call__(self, record: dict) -> dict:
        image = _image_tensor(record, self.format)
        image = TF.resize(image, [self.resize], InterpolationMode.BILINEAR, antialias=True)
        return _output(record, TF.center_crop(image, [self.crop, self.crop]))


def _as_list(batch):
    return batch


def build_classification_test_loader(cfg, records):
    """Batches (lists of :class:`ClassificationTestMapper` outputs) of ``records``, each record
    once over all ranks (detectron2's ``InferenceSampler``), ``TEST_BATCH_SIZE`` per batch."""
    from detectron2.data.common import DatasetFromList, MapDataset
    from detectron2.data.samplers import InferenceSampler

    dataset = MapDataset(DatasetFromList(records, copy=False), ClassificationTestMapper(cfg))
    return torch.utils.data.DataLoader(
        dataset,
        batch_size=int(cfg.INPUT.CLASSIFICATION.TEST_BATCH_SIZE),
        sampler=InferenceSampler(len(dataset)),
        num_workers=cfg.DATALOADER.NUM_WORKERS,
        collate_fn=_as_list,
    )
