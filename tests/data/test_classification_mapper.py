"""The classification mappers against torchvision's own transforms on the same image file."""

import numpy as np
import pytest
import torch
from detectron2.config import get_cfg
from PIL import Image
from torchvision import transforms as T

from hpps_d2.config import add_hpps_config
from hpps_d2.data.classification_mapper import ClassificationTestMapper, ClassificationTrainMapper


@pytest.fixture
def record(tmp_path):
    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, (101, 123, 3)).astype(np.uint8)
    path = tmp_path / "x.png"
    Image.fromarray(img).save(path)
    return {"file_name": str(path), "image_id": "n1/x", "class_id": 3, "height": 101, "width": 123}


def _cfg(fmt="RGB"):
    cfg = add_hpps_config(get_cfg())
    c = cfg.INPUT.CLASSIFICATION
    c.TRAIN_CROP_SIZE, c.TEST_RESIZE_SIZE, c.TEST_CROP_SIZE = 64, 72, 60
    c.CROP_SCALE, c.CROP_RATIO = (0.3, 1.0), (0.75, 4.0 / 3.0)
    cfg.INPUT.FORMAT = fmt
    return cfg


def _tensor(record):
    return T.PILToTensor()(Image.open(record["file_name"]).convert("RGB"))


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_train_crop_is_torchvisions_random_resized_crop(record, seed):
    np.random.seed(seed)  # what SeededMapDataset does before mapping a sample
    out = ClassificationTrainMapper(_cfg())(record)
    # torchvision's own transforms, given the torch seed the mapper draws from np.random
    np.random.seed(seed)
    torch.manual_seed(int(np.random.randint(2**31)))
    crop = T.RandomResizedCrop(64, scale=(0.3, 1.0), ratio=(0.75, 4.0 / 3.0), antialias=True)
    ref = crop(_tensor(record))
    if np.random.rand() < 0.5:
        ref = ref.flip(-1)
    assert out["image"].dtype == torch.uint8 and out["image"].shape == (3, 64, 64)
    assert torch.equal(out["image"], ref) and out["class_id"] == 3


def test_eval_is_resize_then_center_crop(record):
    out = ClassificationTestMapper(_cfg())(record)
    ref = T.Compose([T.Resize(72, antialias=True), T.CenterCrop(60)])(_tensor(record))
    assert torch.equal(out["image"], ref)
    # BGR configs get the same pixels in the other channel order
    bgr = ClassificationTestMapper(_cfg("BGR"))(record)
    assert torch.equal(bgr["image"], ref.flip(0))
