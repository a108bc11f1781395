"""Channel order end to end: an image FILE, read by this project's test-time path with a shipped
config and converted torchvision weights, must give torchvision's own features, and the exported
backbone must give them back in torchvision's convention.

The reference is torchvision's own model on the same file read its way: PIL -> ``ToTensor`` ->
``Normalize(mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225))``, the preprocessing its ImageNet
weights were trained with (pytorch/vision references/classification/presets.py L11-12, L35-37).
"""

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
from torch import nn
from torchvision import transforms

from hpps_d2.checkpoint import d2_to_torchvision_resnet, torchvision_resnet_to_d2
from hpps_d2.checkpoint.init import load_init_weights
from hpps_d2.config import add_hpps_config
from hpps_d2.data.canvas import canvas_fill
from hpps_d2.data.image_io import check_pixel_statistics
from hpps_d2.evaluation.test_mapper import PersonSearchTestMapper

REPO = Path(__file__).resolve().parents[2]
# torchvision's ImageNet statistics (x / 255 space, RGB order), written out here on purpose.
TV_MEAN, TV_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
RGB_MEAN_255 = tuple(255 * m for m in TV_MEAN)  # (123.675, 116.28, 103.53)
RGB_STD_255 = tuple(255 * s for s in TV_STD)  # (58.395, 57.12, 57.375)
BGR_OVERRIDES = [
    "INPUT.FORMAT", "BGR",
    "MODEL.PIXEL_MEAN", str(list(RGB_MEAN_255[::-1])),
    "MODEL.PIXEL_STD", str(list(RGB_STD_255[::-1])),
]  # fmt: skip
H, W = 64, 96  # divisible by 32 and used as the test size: no resize, no padding
#: One config per shipped family and the torchvision architecture whose weights it takes.
FAMILIES = {
    "finetune/nae_prw_r50.yaml": "resnet50",
    "pretrain.yaml": "resnet50",
    "finetune/nae_prw_r18.yaml": "resnet18",
    "pretrain_shufflenet.yaml": "shufflenet_v2_x1_0",
    "synth/Base-Synth-ShuffleNet.yaml": "shufflenet_v2_x0_5",
    "synth/Base-Synth-R18.yaml": "resnet18",
    "synth/Base-Synth-R50.yaml": "resnet50",
}
ALL_CONFIGS = sorted(str(p.relative_to(REPO / "configs")) for p in REPO.glob("configs/**/*.yaml"))


def _tool(name: str):
    spec = importlib.util.spec_from_file_location(name, REPO / "tools" / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _randomise_norms(model: nn.Module, seed: int) -> None:
    """Non-trivial affine parameters and running statistics for every BN / FrozenBN layer."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if hasattr(m, "running_var") and m.running_var is not None:
                m.weight.uniform_(0.5, 1.5, generator=g)
                m.bias.normal_(0.0, 0.1, generator=g)
                m.running_mean.normal_(0.0, 0.1, generator=g)
                m.running_var.uniform_(0.5, 1.5, generator=g)


def _torchvision(arch: str, seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    model = torchvision.models.get_model(arch, weights=None)
    _randomise_norms(model, seed + 1)
    return model.eval()


def _tv_c4(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """torchvision's own forward to stride 16 (ResNet layer3 / ShuffleNetV2 stage3)."""
    if isinstance(model, torchvision.models.ShuffleNetV2):
        return model.stage3(model.stage2(model.maxpool(model.conv1(x))))
    x = model.maxpool(model.relu(model.bn1(model.conv1(x))))
    return model.layer3(model.layer2(model.layer1(x)))


def _tv_input(path: Path) -> torch.Tensor:
    """(1, 3, H, W): the file read as torchvision's ImageNet models expect it."""
    pipeline = transforms.Compose([transforms.ToTensor(), transforms.Normalize(TV_MEAN, TV_STD)])
    return pipeline(Image.open(path).convert("RGB"))[None]


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """Single-threaded convolutions: tiny inputs, and on a shared CPU two threads that wait for
    each other make an R50 forward 50x slower."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def image_file(tmp_path_factory) -> Path:
    """A PNG whose channels differ: red ramps left to right, green top to bottom, blue is noise."""
    y, x = np.mgrid[0:H, 0:W]
    rgb = np.stack(
        [
            255 * x / (W - 1),
            40 + 150 * y / (H - 1),
            np.random.default_rng(0).integers(0, 256, (H, W)),
        ],
        axis=-1,
    ).astype(np.uint8)
    path = tmp_path_factory.mktemp("img") / "rgb.png"
    Image.fromarray(rgb).save(path)
    return path


def _cfg(config: str, opts=()):
    cfg = add_hpps_config(get_cfg())
    cfg.merge_from_file(str(config if Path(config).is_absolute() else REPO / "configs" / config))
    cfg.merge_from_list(
        ["MODEL.DEVICE", "cpu", "INPUT.MIN_SIZE_TEST", str(H), "INPUT.MAX_SIZE_TEST", str(W)]
    )
    cfg.merge_from_list(list(opts))
    return cfg


def _project_c4(model, cfg, path: Path) -> torch.Tensor:
    """The backbone output for the file, through the evaluation mapper and the model's own
    normalisation (``preprocess_image``)."""
    record = {"file_name": str(path), "image_id": "rgb", "height": H, "width": W}
    x = PersonSearchTestMapper(cfg)(record)
    # the test size is the image size: the mapper hands over the file's own pixels
    fmt_pixels = np.asarray(Image.open(path).convert("RGB"))
    if cfg.INPUT.FORMAT == "BGR":
        fmt_pixels = fmt_pixels[:, :, ::-1]
    assert np.array_equal(x["image"].permute(1, 2, 0).numpy(), fmt_pixels)
    with torch.no_grad():
        images = model.preprocess_image([x])
        (feature,) = model.backbone.output_shape()
        return model.backbone(images.tensor)[feature]


def _rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).norm() / b.norm())


@pytest.fixture(scope="module")
def converted(tmp_path_factory):
    """``converted(arch, *flags) -> (torchvision model, path)``: a random torchvision model and its
    conversion by tools/convert_weights.py (cached per module: R50 files are 100 MB)."""
    folder, cache = tmp_path_factory.mktemp("weights"), {}

    def convert(arch: str, *flags: str, seed: int = 0):
        key = (arch, flags, seed)
        if key not in cache:
            tv = _torchvision(arch, seed)
            src, out = folder / f"{arch}-{seed}.pth", folder / f"{arch}-{seed}-{len(cache)}-d2.pth"
            torch.save(tv.state_dict(), src)
            tool = _tool("convert_weights")
            cache[key] = tv, tool.main(["--arch", arch, *flags, str(src), str(out)])
        return cache[key]

    return convert


def _export(model, tmp_path, *flags) -> dict:
    """tools/export_weights.py --backbone on a training checkpoint of ``model`` (its backbone and
    trunk: the exporter reads nothing else) -> the torchvision state dict it writes."""
    ckpt, out = tmp_path / "model_final.pth", tmp_path / f"backbone{len(flags)}.pth"
    sd = model.state_dict()
    sd = {k: v for k, v in sd.items() if k.startswith(("backbone.", "roi_heads.trunk."))}
    torch.save({"model": sd, "iteration": 1}, ckpt)
    _tool("export_weights").main([str(ckpt), "--backbone", str(out), *flags])
    return torch.load(out, weights_only=True)


def _build(cfg):
    torch.manual_seed(0)
    return build_model(cfg).eval()


# ------------------------------------------------------------------------------------------------ #
# The shipped contract: RGB input, torchvision's statistics
# ------------------------------------------------------------------------------------------------ #
@pytest.mark.parametrize("config", ALL_CONFIGS)
def test_shipped_configs_read_rgb_with_torchvision_statistics(config):
    cfg = _cfg(config)
    got = (cfg.INPUT.FORMAT, list(cfg.MODEL.PIXEL_MEAN), list(cfg.MODEL.PIXEL_STD))
    assert cfg.INPUT.FORMAT == "RGB", f"{config}: {got}"
    np.testing.assert_allclose(cfg.MODEL.PIXEL_MEAN, RGB_MEAN_255, atol=1e-3, err_msg=config)
    np.testing.assert_allclose(cfg.MODEL.PIXEL_STD, RGB_STD_255, atol=1e-3, err_msg=config)
    # the canvas background is the mean colour in the image's channel order (RGB here)
    np.testing.assert_allclose(canvas_fill(cfg), RGB_MEAN_255, atol=1e-3, err_msg=config)


@pytest.mark.parametrize("config", sorted(FAMILIES))
def test_converted_and_exported_backbones_match_torchvision_on_an_image_file(
    config, tmp_path, image_file, converted
):
    arch = FAMILIES[config]
    cfg = _cfg(config)
    model = _build(cfg)
    # 1. convert: torchvision weights converted by the tool and loaded as MODEL.WEIGHTS is
    tv, weights = converted(arch)
    load_init_weights(DetectionCheckpointer(model), weights, cfg.HPPS.FINETUNE.INIT)
    with torch.no_grad():
        ref = _tv_c4(tv, _tv_input(image_file))
    got = _project_c4(model, cfg, image_file)
    assert got.shape == ref.shape
    err = _rel(got, ref)
    assert err < 1e-4, f"{config} ({arch}): res4/stage3 relative L2 error {err:.4f} vs torchvision"
    # 2. export: a model trained here (other weights, other norm statistics), exported with
    # --backbone and loaded into torchvision, computes on the file read torchvision's way what
    # this project computes on it through its own test path
    torch.manual_seed(3)
    with torch.no_grad():
        for p in list(model.backbone.parameters()) + list(model.roi_heads.trunk.parameters()):
            p.mul_(torch.empty_like(p).uniform_(0.5, 1.5))
    _randomise_norms(model.backbone, 4)
    _randomise_norms(model.roi_heads.trunk, 5)
    with torch.device("meta"):  # no initialisation: every tensor but fc comes from the file
        exported = torchvision.models.get_model(arch, weights=None)
    result = exported.load_state_dict(
        _export(model, tmp_path, "--config-file", str(REPO / "configs" / config)),
        strict=False,
        assign=True,
    )
    assert sorted(result.missing_keys) == ["fc.bias", "fc.weight"] and not result.unexpected_keys
    with torch.no_grad():
        ref = _tv_c4(exported.eval(), _tv_input(image_file))
    err = _rel(_project_c4(model, cfg, image_file), ref)
    assert err < 1e-4, f"{config}: exported backbone off by relative L2 {err:.4f}"


# ------------------------------------------------------------------------------------------------ #
# BGR configs: the documented option
# ------------------------------------------------------------------------------------------------ #
@pytest.mark.parametrize(
    "config", ["finetune/nae_prw_r18.yaml", "synth/Base-Synth-ShuffleNet.yaml"]
)
def test_bgr_config_with_permuted_weights_round_trips(config, tmp_path, image_file, converted):
    arch = FAMILIES[config]
    tv, weights = converted(arch, "--input-format", "BGR", seed=7)
    cfg = _cfg(config, BGR_OVERRIDES)
    model = _build(cfg)
    load_init_weights(DetectionCheckpointer(model), weights, cfg.HPPS.FINETUNE.INIT)
    with torch.no_grad():
        ref = _tv_c4(tv, _tv_input(image_file))
    err = _rel(_project_c4(model, cfg, image_file), ref)
    assert err < 1e-4, f"{config} read as BGR: relative L2 error {err:.4f} vs torchvision"
    # the exporter undoes the permutation: torchvision's own tensors come back, bit for bit,
    # whether the format comes from the config file or from the flag
    bgr_yaml = tmp_path / "bgr.yaml"
    bgr_yaml.write_text(
        f'_BASE_: "{REPO / "configs" / config}"\nINPUT:\n  FORMAT: "BGR"\nMODEL:\n'
        f"  PIXEL_MEAN: {list(RGB_MEAN_255[::-1])}\n  PIXEL_STD: {list(RGB_STD_255[::-1])}\n"
    )
    for flags in (["--config-file", str(bgr_yaml)], ["--input-format", "BGR"]):
        back = _export(model, tmp_path, *flags)
        for k, v in tv.state_dict().items():
            if not k.startswith("fc.") and not k.endswith("num_batches_tracked"):
                assert torch.equal(back[k], v), f"{flags}: {k}"
    # the flag contradicting the config is an error, not a guess
    with pytest.raises(ValueError, match="ambiguous"):
        _export(model, tmp_path, "--config-file", str(bgr_yaml), "--input-format", "RGB")


def test_mismatched_format_and_statistics_are_refused(converted):
    # RGB images normalised with the BGR-ordered mean: caught wherever a config is read
    cfg = _cfg("finetune/nae_prw_r18.yaml", ["MODEL.PIXEL_MEAN", str(list(RGB_MEAN_255[::-1]))])
    with pytest.raises(ValueError, match=r"PIXEL_MEAN.*INPUT\.FORMAT"):
        PersonSearchTestMapper(cfg)
    with pytest.raises(ValueError, match=r"PIXEL_MEAN.*INPUT\.FORMAT"):
        canvas_fill(cfg)
    with pytest.raises(ValueError, match=r"PIXEL_MEAN.*INPUT\.FORMAT"):
        _build(cfg)  # also when a model is trained from scratch or evaluated with --eval-only
    # weights converted for RGB input loaded into a BGR model: caught when MODEL.WEIGHTS loads
    _, weights = converted("resnet18")
    bgr = _build(_cfg("finetune/nae_prw_r18.yaml", BGR_OVERRIDES))
    with pytest.raises(ValueError, match=r"RGB.*BGR.*--input-format BGR"):
        load_init_weights(DetectionCheckpointer(bgr), weights, "whole")


def test_statistics_check_knows_only_imagenet_in_the_wrong_order():
    rgb_mean, rgb_std = list(RGB_MEAN_255), list(RGB_STD_255)
    check_pixel_statistics("RGB", rgb_mean, rgb_std)
    check_pixel_statistics("BGR", rgb_mean[::-1], rgb_std[::-1])
    check_pixel_statistics("BGR", rgb_mean[::-1], [1.0, 1.0, 1.0])  # detectron2's MSRA defaults
    check_pixel_statistics("RGB", [0.0, 0.0, 0.0], [255.0, 255.0, 255.0])  # a user's own choice
    with pytest.raises(ValueError, match="PIXEL_STD"):
        check_pixel_statistics("RGB", rgb_mean, rgb_std[::-1])
    with pytest.raises(ValueError, match="PIXEL_MEAN"):
        check_pixel_statistics("BGR", rgb_mean, [1.0, 1.0, 1.0])
    with pytest.raises(ValueError, match="INPUT.FORMAT"):
        check_pixel_statistics("YUV", rgb_mean, rgb_std)
    sd = _torchvision("resnet18").state_dict()
    with pytest.raises(ValueError, match="input_format"):
        torchvision_resnet_to_d2(sd, 18, input_format="bgr")
    # the permutation is its own inverse, and only conv1 changes
    bgr = torchvision_resnet_to_d2(sd, 18, input_format="BGR")
    rgb = torchvision_resnet_to_d2(sd, 18)
    assert torch.equal(bgr["backbone.stem.conv1.weight"], sd["conv1.weight"][:, [2, 1, 0]])
    assert all(torch.equal(bgr[k], rgb[k]) for k in rgb if k != "backbone.stem.conv1.weight")
    back = d2_to_torchvision_resnet(bgr, input_format="BGR")
    assert all(torch.equal(back[k], sd[k]) for k in back if not k.endswith("num_batches_tracked"))
