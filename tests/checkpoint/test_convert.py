"""Weight conversion: torchvision/MMDet/psvis backbones in, fine-tuning and torchvision weights out."""

import importlib.util
import subprocess
import sys
from functools import cache
from pathlib import Path

import pytest
import torch
import torchvision
from detectron2.checkpoint import DetectionCheckpointer
from detectron2.config import get_cfg
from detectron2.data import MetadataCatalog
from detectron2.modeling import build_model
from torch import nn

from hpps_d2.checkpoint import (
    RESNET_ARCHS,
    SHUFFLENET_ARCHS,
    IncompatibleWeightsError,
    config_overrides,
    d2_to_torchvision,
    d2_to_torchvision_resnet,
    d2_to_torchvision_shufflenet,
    infer_torchvision_arch,
    torchvision_arch_of_config,
    torchvision_resnet_to_d2,
    torchvision_shufflenet_to_d2,
    whole_model_for_finetuning,
)
from hpps_d2.config import add_hpps_config

REPO = Path(__file__).resolve().parents[2]
ARCHS = ["resnet18", "resnet50", "shufflenet_v2_x0_5"]
OIM_KEYS = {"roi_heads.oim.lut", "roi_heads.oim.cq", "roi_heads.oim.cq_head"}
# Pre-training sources (task only) so that HybridPretrainRCNN builds every alignment module.
_SOURCES = {
    "ckpt_t_det_a": "detection",
    "ckpt_t_det_b": "detection",
    "ckpt_t_reid_a": "reid",
    "ckpt_t_reid_b": "reid",
}


@cache
def _torchvision(arch: str) -> nn.Module:
    """A seeded random torchvision model in eval mode, with non-trivial norm parameters and stats."""
    torch.manual_seed(0)
    model = torchvision.models.get_model(arch, weights=None)
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.weight.uniform_(0.5, 1.5, generator=g)
                m.bias.normal_(0.0, 0.1, generator=g)
                m.running_mean.normal_(0.0, 0.1, generator=g)
                m.running_var.uniform_(0.5, 1.5, generator=g)
    return model.eval()


def _to_d2(arch: str, sd):
    if arch in SHUFFLENET_ARCHS:
        return torchvision_shufflenet_to_d2(sd)
    return torchvision_resnet_to_d2(sd, RESNET_ARCHS[arch][0])


def _build(config: str, overrides=()) -> nn.Module:
    cfg = add_hpps_config(get_cfg())
    cfg.merge_from_file(str(REPO / "configs" / config))
    cfg.MODEL.DEVICE = "cpu"
    cfg.merge_from_list(list(overrides))
    torch.manual_seed(0)
    return build_model(cfg).eval()


def _build_for(arch: str) -> nn.Module:
    if arch in SHUFFLENET_ARCHS:  # the synthetic-world model is ShuffleNetV2 x0.5
        return _build("synth/Base-Synth-ShuffleNet.yaml", config_overrides(arch))
    return _build("Base-PersonSearch-C4.yaml", config_overrides(arch))


def _torchvision_c4(model: nn.Module, x: torch.Tensor):
    """torchvision's own forward to stride 16, then its last stage: (backbone map, trunk map)."""
    if isinstance(model, torchvision.models.ShuffleNetV2):
        c4 = model.stage3(model.stage2(model.maxpool(model.conv1(x))))
        return c4, model.conv5(model.stage4(c4))
    c4 = model.relu(model.bn1(model.conv1(x)))
    c4 = model.layer3(model.layer2(model.layer1(model.maxpool(c4))))
    return c4, model.layer4(c4)


def _backbone_keys(model: nn.Module):
    return {
        k
        for k in model.state_dict()
        if k.startswith(("backbone.", "roi_heads.trunk.")) and not k.endswith("num_batches_tracked")
    }


def _tool(name: str):
    spec = importlib.util.spec_from_file_location(name, REPO / "tools" / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _run(tool: str, *args):
    cmd = [sys.executable, str(REPO / "tools" / tool), *map(str, args)]
    proc = subprocess.run(cmd, check=False, cwd=REPO, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout


@pytest.fixture(scope="module")
def pretrain_state():
    """The state dict of a small hybrid pre-training model with SSL, all three IAMs and OIM."""
    for name, task in _SOURCES.items():
        if not hasattr(MetadataCatalog.get(name), "task"):
            MetadataCatalog.get(name).set(task=task)
    overrides = {
        "MODEL.META_ARCHITECTURE": "HybridPretrainRCNN",
        "MODEL.OIM.NUM_IDENTITIES": 12,
        "MODEL.OIM.QUEUE_SIZE": 4,
        "DATASETS.TRAIN": tuple(_SOURCES),
        "HPPS.IAM.INTER_ENABLED": True,
        "HPPS.IAM.CONV_DIMS": (16,),
        "HPPS.IAM.FC_DIMS": (32,),
    }
    overrides = [str(x) for item in overrides.items() for x in item]
    return _build("synth/Base-Synth-ShuffleNet.yaml", overrides).state_dict()


# ------------------------------------------------------------------------------------------------ #
# Mappings
# ------------------------------------------------------------------------------------------------ #
@pytest.mark.parametrize("arch", ARCHS)
def test_round_trip_is_identity(arch):
    sd = _torchvision(arch).state_dict()
    d2 = _to_d2(arch, sd)
    assert not any(k.endswith("num_batches_tracked") or k.startswith("fc.") for k in d2)
    back = (
        d2_to_torchvision_resnet(d2) if arch in RESNET_ARCHS else d2_to_torchvision_shufflenet(d2)
    )
    assert set(back) == {k for k in sd if not k.startswith("fc.")}
    for k, v in back.items():
        assert torch.equal(v, sd[k]), k
    fresh = torchvision.models.get_model(arch, weights=None)
    result = fresh.load_state_dict(back, strict=False)
    assert sorted(result.missing_keys) == ["fc.bias", "fc.weight"]
    assert result.unexpected_keys == []


@pytest.mark.parametrize("arch", ARCHS)
def test_converted_weights_compute_torchvision_features(arch):
    tv = _torchvision(arch)
    d2 = _to_d2(arch, tv.state_dict())
    model = _build_for(arch)
    assert set(d2) == _backbone_keys(model)  # every backbone/trunk tensor, nothing else
    feature = model.backbone.output_shape()
    (name,) = feature
    x = torch.randn(1, 3, 64, 96, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        ref_c4, ref_c5 = _torchvision_c4(tv, x)
        before = model.backbone(x)[name]
        result = model.load_state_dict(d2, strict=False)
        c4 = model.backbone(x)[name]
        c5 = model.roi_heads.trunk(c4)
    assert result.unexpected_keys == []
    assert not set(result.missing_keys) & _backbone_keys(model)
    assert not torch.allclose(before, ref_c4, atol=1e-3)  # the check below is not vacuous
    torch.testing.assert_close(c4, ref_c4, atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(c5, ref_c5, atol=1e-4, rtol=1e-4)
    # and back from the whole model's state dict (RPN and RoI-head keys are ignored)
    exported_arch, back = d2_to_torchvision(model.state_dict())
    assert exported_arch == arch
    for k, v in back.items():
        if not k.endswith("num_batches_tracked"):
            assert torch.equal(v, tv.state_dict()[k]), k


def test_mmdet_and_psvis_checkpoints_convert_like_torchvision():
    sd = {k: v for k, v in _torchvision("resnet18").state_dict().items() if not k.startswith("fc.")}
    expected = torchvision_resnet_to_d2(sd, 18)
    psvis = {"state_dict": sd, "meta": {"epoch": 15}}
    detector = {  # an MMDet C4 detector: res5 is the RoI head's shared head
        "state_dict": {
            **{f"backbone.{k}": v for k, v in sd.items() if not k.startswith("layer4.")},
            **{f"roi_head.shared_head.{k}": v for k, v in sd.items() if k.startswith("layer4.")},
            "rpn_head.rpn_conv.weight": torch.zeros(2, 2, 3, 3),
        },
        "meta": {},
    }
    for ckpt in (psvis, detector):
        out = torchvision_resnet_to_d2(ckpt, 18)
        assert set(out) == set(expected)
        assert all(torch.equal(out[k], expected[k]) for k in out)


def test_architecture_names_and_config_overrides():
    for arch in ARCHS + ["resnext50_32x4d"]:
        assert infer_torchvision_arch(_torchvision(arch).state_dict()) == arch
    for arch in list(RESNET_ARCHS) + list(SHUFFLENET_ARCHS):
        cfg = add_hpps_config(get_cfg())
        cfg.merge_from_list(config_overrides(arch))
        assert torchvision_arch_of_config(cfg) == arch
    cfg.merge_from_list(config_overrides("resnet50") + ["MODEL.RESNETS.STRIDE_IN_1X1", "True"])
    with pytest.raises(ValueError, match="STRIDE_IN_1X1"):
        torchvision_arch_of_config(cfg)


# ------------------------------------------------------------------------------------------------ #
# Errors
# ------------------------------------------------------------------------------------------------ #
def test_wrong_depth_lists_missing_keys_and_a_guess():
    with pytest.raises(IncompatibleWeightsError) as err:
        torchvision_resnet_to_d2(_torchvision("resnet18").state_dict(), 50)
    assert "layer1.0.conv3.weight" in err.value.missing
    assert "ResNet-50" in str(err.value) and "resnet18" in str(err.value)
    assert "layer1.0.conv3.weight" in str(err.value)
    with pytest.raises(ValueError, match="depth"):
        torchvision_resnet_to_d2(_torchvision("resnet18").state_dict(), 42)


def test_missing_and_unexpected_keys_are_listed():
    sd = dict(_torchvision("resnet18").state_dict())
    del sd["layer2.0.bn1.running_var"]
    sd["layer5.0.conv1.weight"] = torch.zeros(1)
    with pytest.raises(IncompatibleWeightsError) as err:
        torchvision_resnet_to_d2(sd, 18)
    assert err.value.missing == ["layer2.0.bn1.running_var"]
    assert err.value.unexpected == ["layer5.0.conv1.weight"]
    assert "layer2.0.bn1.running_var" in str(err.value) and "layer5.0.conv1.weight" in str(
        err.value
    )


def test_wrong_family_is_rejected():
    resnet = _torchvision("resnet18").state_dict()
    shufflenet_d2 = torchvision_shufflenet_to_d2(_torchvision("shufflenet_v2_x0_5").state_dict())
    with pytest.raises(IncompatibleWeightsError, match="ShuffleNetV2"):
        torchvision_shufflenet_to_d2(resnet)
    with pytest.raises(IncompatibleWeightsError, match="Not a ResNet"):
        d2_to_torchvision_resnet(shufflenet_d2)
    with pytest.raises(IncompatibleWeightsError, match="ShuffleNetV2"):
        d2_to_torchvision_shufflenet(torchvision_resnet_to_d2(resnet, 18))
    with pytest.raises(IncompatibleWeightsError, match="detectron2"):
        torchvision_resnet_to_d2(torchvision_resnet_to_d2(resnet, 18), 18)
    with pytest.raises(IncompatibleWeightsError):
        d2_to_torchvision({"head.weight": torch.zeros(1)})


# ------------------------------------------------------------------------------------------------ #
# Whole model for fine-tuning
# ------------------------------------------------------------------------------------------------ #
def test_whole_model_drops_exactly_pretraining_only_modules_and_oim(pretrain_state):
    out = whole_model_for_finetuning({"model": pretrain_state, "iteration": 3})
    dropped = set(pretrain_state) - set(out)
    pretrain_only = {k for k in pretrain_state if k.startswith(("ssl_predictor.", "iam_"))}
    modules = {k.split(".")[0] for k in pretrain_only}
    assert modules == {"ssl_predictor", "iam_det", "iam_reid", "iam_inter"}
    assert dropped == pretrain_only | OIM_KEYS
    assert all(torch.equal(v, pretrain_state[k]) for k, v in out.items())
    finetune = _build(
        "synth/Base-Synth-ShuffleNet.yaml",
        ["MODEL.OIM.NUM_IDENTITIES", "5", "MODEL.OIM.QUEUE_SIZE", "3"],
    )
    result = finetune.load_state_dict(out, strict=False)
    assert result.unexpected_keys == []
    assert set(result.missing_keys) == OIM_KEYS  # fine-tuning counts its own identities


def test_whole_model_rejects_other_models():
    with pytest.raises(IncompatibleWeightsError) as err:
        whole_model_for_finetuning({"backbone.x": torch.zeros(1), "head.y": torch.zeros(1)})
    assert err.value.unexpected == ["head.y"]
    assert set(err.value.missing) == {"proposal_generator.*", "roi_heads.*"}


# ------------------------------------------------------------------------------------------------ #
# Command-line tools
# ------------------------------------------------------------------------------------------------ #
def test_convert_cli_writes_a_detectron2_checkpoint(tmp_path):
    sd = _torchvision("resnet18").state_dict()
    torch.save(sd, tmp_path / "r18.pth")
    out = tmp_path / "weights" / "R-18.pth"
    text = _run(
        "convert_weights.py",
        "--src",
        "torchvision",
        "--arch",
        "resnet18",
        tmp_path / "r18.pth",
        out,
    )
    assert "MODEL.RESNETS.DEPTH 18" in text and "INPUT.FORMAT RGB" in text
    ckpt = torch.load(out, weights_only=True)
    assert ckpt["__author__"] == "torchvision" and ckpt["matching_heuristics"] is False
    assert ckpt["input_format"] == "RGB"  # what the loader checks against the model's INPUT.FORMAT
    expected = torchvision_resnet_to_d2(sd, 18)
    assert set(ckpt["model"]) == set(expected)
    model = _build_for("resnet18")
    DetectionCheckpointer(model).load(str(out))  # the MODEL.WEIGHTS path
    assert torch.equal(model.backbone.res3[0].conv1.weight, sd["layer2.0.conv1.weight"])
    assert torch.equal(
        model.roi_heads.trunk[1].conv2.norm.running_var, sd["layer4.1.bn2.running_var"]
    )


def test_convert_cli_reads_psvis_checkpoints_and_refuses_mismatches(tmp_path):
    tool = _tool("convert_weights")
    sd = _torchvision("shufflenet_v2_x0_5").state_dict()
    src = tmp_path / "psvis.pth"
    torch.save(
        {"state_dict": {f"backbone.{k}": v for k, v in sd.items()}, "meta": {"epoch": 19}}, src
    )
    out = tool.main(
        ["--src", "psvis", str(src), "--out", str(tmp_path / "out.pth")]
    )  # arch inferred
    assert set(torch.load(out, weights_only=True)["model"]) == set(torchvision_shufflenet_to_d2(sd))
    with pytest.raises(IncompatibleWeightsError, match="shapes differ"):
        tool.main(["--arch", "shufflenet_v2_x1_0", str(src), str(tmp_path / "x.pth")])
    with pytest.raises(IncompatibleWeightsError, match="ShuffleNetV1"):
        tool.main(["--src", "psvis", "--arch", "shufflenet_v1", str(src), str(tmp_path / "x.pth")])


def test_export_cli_writes_whole_and_torchvision_backbone(tmp_path, pretrain_state):
    ckpt = tmp_path / "model_final.pth"
    torch.save({"model": pretrain_state, "iteration": 300}, ckpt)
    whole, backbone = tmp_path / "whole.pth", tmp_path / "backbone.pth"
    _run("export_weights.py", ckpt, "--whole", whole, "--backbone", backbone)
    w = torch.load(whole, weights_only=True)["model"]
    assert set(w) == set(whole_model_for_finetuning(pretrain_state))
    b = torch.load(backbone, weights_only=True)
    tv = torchvision.models.shufflenet_v2_x0_5(weights=None)
    result = tv.load_state_dict(b, strict=False)
    assert sorted(result.missing_keys) == ["fc.bias", "fc.weight"] and result.unexpected_keys == []
    assert torch.equal(tv.conv5[0].weight, pretrain_state["roi_heads.trunk.conv5.0.weight"])


def test_export_cli_checks_the_config(tmp_path):
    tool = _tool("export_weights")
    ckpt = tmp_path / "r18.pth"
    torch.save({"model": _build_for("resnet18").state_dict()}, ckpt)
    out = tmp_path / "bb.pth"
    tool.main(
        [
            str(ckpt),
            "--backbone",
            str(out),
            "--config-file",
            str(REPO / "configs" / "pretrain_r18.yaml"),
        ]
    )
    tv = torchvision.models.resnet18(weights=None)
    result = tv.load_state_dict(torch.load(out, weights_only=True), strict=False)
    assert sorted(result.missing_keys) == ["fc.bias", "fc.weight"] and result.unexpected_keys == []
    with pytest.raises(IncompatibleWeightsError, match="resnet50"):
        tool.main(
            [
                str(ckpt),
                "--backbone",
                str(out),
                "--config-file",
                str(REPO / "configs" / "pretrain.yaml"),
            ]
        )
