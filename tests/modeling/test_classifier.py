"""ImageClassifier is torchvision's network behind the project's normalisation: its loss and logits
are torchvision's on the image normalised the torchvision way, in RGB and in BGR configs."""

import pytest
import torch
import torch.nn.functional as F
import torchvision
from detectron2.config import get_cfg
from detectron2.modeling import build_model

from hpps_d2.config import add_hpps_config

TV_MEAN = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
TV_STD = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """Tiny inputs: on shared cores two threads that wait for each other are much slower."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _cfg(arch, fmt):
    cfg = add_hpps_config(get_cfg())
    cfg.MODEL.META_ARCHITECTURE = "ImageClassifier"
    cfg.MODEL.DEVICE = "cpu"
    cfg.MODEL.CLASSIFIER.ARCH, cfg.MODEL.CLASSIFIER.NUM_CLASSES = arch, 5
    mean, std = [123.675, 116.28, 103.53], [58.395, 57.12, 57.375]
    step = 1 if fmt == "RGB" else -1
    cfg.INPUT.FORMAT, cfg.MODEL.PIXEL_MEAN, cfg.MODEL.PIXEL_STD = fmt, mean[::step], std[::step]
    return cfg


@pytest.mark.parametrize("arch", ["shufflenet_v2_x0_5", "resnet18"])
@pytest.mark.parametrize("fmt", ["RGB", "BGR"])
def test_loss_and_logits_are_torchvisions(arch, fmt):
    torch.manual_seed(0)
    model = build_model(_cfg(arch, fmt))
    assert isinstance(model.net, getattr(torchvision.models, type(model.net).__name__))
    rgb = torch.randint(0, 256, (2, 3, 64, 64), dtype=torch.uint8)
    images = rgb if fmt == "RGB" else rgb.flip(1)
    inputs = [{"image": images[i], "class_id": c} for i, c in enumerate((4, 1))]
    ref_x = (rgb.float() / 255 - TV_MEAN) / TV_STD
    model.eval()
    with torch.no_grad():
        logits = torch.stack([o["logits"] for o in model(inputs)])
        ref = model.net(ref_x)
    torch.testing.assert_close(logits, ref, rtol=1e-4, atol=1e-4)
    model.train()
    loss = model(inputs)["loss_cls"]
    model.net.train()
    ref_loss = F.cross_entropy(model.net(ref_x), torch.tensor([4, 1]))
    torch.testing.assert_close(loss, ref_loss, rtol=1e-4, atol=1e-4)


def test_bad_config_is_named():
    cfg = _cfg("resnet18", "RGB")
    cfg.MODEL.CLASSIFIER.ARCH = "vgg16"
    with pytest.raises(ValueError, match="MODEL.CLASSIFIER.ARCH"):
        build_model(cfg)
    cfg = _cfg("resnet18", "RGB")
    cfg.MODEL.CLASSIFIER.NUM_CLASSES = 0
    with pytest.raises(ValueError, match="NUM_CLASSES"):
        build_model(cfg)
