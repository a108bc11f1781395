"""The ImageNet stand-in enters person search by the path of real ImageNet weights: a trained
ImageClassifier -> tools/export_classifier.py (a torchvision state dict) -> tools/convert_weights.py
--src torchvision -> MODEL.WEIGHTS of the synthetic fine-tuning configs. The reference is
torchvision's own module, the classifier's ``net``, on the same image FILE read the torchvision way
(PIL -> ToTensor -> Normalize, references/classification/presets.py L11-12, L35-37)."""

import importlib.util
from pathlib import Path

import numpy as np
import pytest
import torch
import torchvision
from detectron2.checkpoint import DetectionCheckpointer
from detectron2.config import get_cfg
from detectron2.modeling import build_model
from PIL import Image
from torchvision import transforms

from hpps_d2.checkpoint import IncompatibleWeightsError
from hpps_d2.checkpoint.classifier import classifier_to_torchvision
from hpps_d2.checkpoint.init import load_init_weights
from hpps_d2.config import add_hpps_config
from hpps_d2.evaluation.test_mapper import PersonSearchTestMapper

REPO = Path(__file__).resolve().parents[2]
TV_MEAN, TV_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)  # written out on purpose
H, W = 64, 96  # divisible by 32, used as the test size: no resize, no padding
#: classifier config -> (fine-tuning config, arch)
PAIRS = {
    "synth/generic_pretrain_shufflenet.yaml": (
        "synth/finetune_prw_shufflenet.yaml",
        "shufflenet_v2_x0_5",
    ),
    "synth/generic_pretrain_r18.yaml": ("synth/finetune_prw_r18.yaml", "resnet18"),
}
K = 7


def _tool(name):
    spec = importlib.util.spec_from_file_location(name, REPO / "tools" / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _cfg(config, *opts):
    cfg = add_hpps_config(get_cfg())
    cfg.merge_from_file(str(REPO / "configs" / config))
    cfg.merge_from_list(["MODEL.DEVICE", "cpu", *opts])
    return cfg


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def image_file(tmp_path_factory):
    """A PNG (lossless) whose three channels differ (a channel swap cannot go unnoticed)."""
    y, x = np.mgrid[0:H, 0:W]
    noise = np.random.default_rng(1).integers(0, 256, (H, W))
    rgb = np.stack([255 * x / (W - 1), 30 + 180 * y / (H - 1), noise], -1).astype(np.uint8)
    path = tmp_path_factory.mktemp("img") / "rgb.png"
    Image.fromarray(rgb).save(path)
    return path


def _trained_classifier(config):
    """An ImageClassifier whose weights and BN statistics are all non-trivial (as if trained)."""
    torch.manual_seed(0)
    model = build_model(_cfg(config, "MODEL.CLASSIFIER.NUM_CLASSES", str(K)))
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for p in model.parameters():
            p.mul_(torch.empty_like(p).uniform_(0.5, 1.5, generator=g))
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.bias.normal_(0.0, 0.1, generator=g)
                m.running_mean.normal_(0.0, 0.1, generator=g)
                m.running_var.uniform_(0.5, 1.5, generator=g)
    return model.eval()


def _tv_c4(net, x):
    """torchvision's own forward to stride 16 (ResNet layer3 / ShuffleNetV2 stage3)."""
    if isinstance(net, torchvision.models.ShuffleNetV2):
        return net.stage3(net.stage2(net.maxpool(net.conv1(x))))
    x = net.maxpool(net.relu(net.bn1(net.conv1(x))))
    return net.layer3(net.layer2(net.layer1(x)))


def _tv_input(path):
    pipeline = transforms.Compose([transforms.ToTensor(), transforms.Normalize(TV_MEAN, TV_STD)])
    return pipeline(Image.open(path).convert("RGB"))[None]


@pytest.mark.parametrize("config", sorted(PAIRS))
def test_export_convert_load_gives_torchvision_features(config, tmp_path, image_file):
    finetune, arch = PAIRS[config]
    clf = _trained_classifier(config)
    # 1. the trainer's checkpoint, written by detectron2's checkpointer as in training
    DetectionCheckpointer(clf, save_dir=str(tmp_path)).save("model_final")
    exported = _tool("export_classifier").main(
        [str(tmp_path / "model_final.pth"), "--out", str(tmp_path / "tv.pth")]
    )
    sd = torch.load(exported, weights_only=True)
    # a torchvision state dict: strict load into torchvision's own K-class model
    tv = torchvision.models.get_model(arch, weights=None, num_classes=K)
    tv.load_state_dict(sd, strict=True)
    tv.eval()
    for k, v in clf.net.state_dict().items():
        assert torch.equal(sd[k], v), k
    # the classifier's own input path is torchvision's normalisation
    pixels = torch.from_numpy(np.asarray(Image.open(image_file).convert("RGB")).copy())
    x = clf.preprocess([{"image": pixels.permute(2, 0, 1)}])
    torch.testing.assert_close(x, _tv_input(image_file), rtol=0, atol=1e-5)
    # 2. convert exactly as ImageNet weights, 3. load as MODEL.WEIGHTS of the fine-tuning config
    d2 = tmp_path / "d2.pth"
    _tool("convert_weights").main(["--src", "torchvision", str(exported), str(d2)])
    cfg = _cfg(finetune, "INPUT.MIN_SIZE_TEST", str(H), "INPUT.MAX_SIZE_TEST", str(W))
    torch.manual_seed(5)
    ps = build_model(cfg).eval()
    load_init_weights(DetectionCheckpointer(ps), str(d2), cfg.HPPS.FINETUNE.INIT)
    record = {"file_name": str(image_file), "image_id": "rgb", "height": H, "width": W}
    with torch.no_grad():
        images = ps.preprocess_image([PersonSearchTestMapper(cfg)(record)])
        (feature,) = ps.backbone.output_shape()
        got = ps.backbone(images.tensor)[feature]
        ref = _tv_c4(clf.net, _tv_input(image_file))
    assert got.shape == ref.shape
    err = float((got - ref).norm() / ref.norm())
    print(f"{config}: relative L2 {err:.2e}")
    assert err < 1e-5, f"{config}: stride-16 features off by relative L2 {err:.2e}"


def test_person_search_checkpoint_is_refused():
    with pytest.raises(IncompatibleWeightsError, match="not an ImageClassifier"):
        classifier_to_torchvision({"model": {"backbone.stem.0.0.weight": torch.zeros(1)}})
    sd = torchvision.models.resnet18(num_classes=K).state_dict()
    del sd["layer4.1.bn2.bias"]
    with pytest.raises(IncompatibleWeightsError, match="layer4.1.bn2.bias"):
        classifier_to_torchvision({"model": {"net." + k: v for k, v in sd.items()}})
