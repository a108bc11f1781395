"""SeqNet-layout import (tools/convert_weights.py --src seqnet): exact round trips, a trained
SeqNet-structured model reproduced by this project's model, and clear errors for other files."""

import argparse
import importlib.util
from pathlib import Path

import pytest
import torch
from detectron2.checkpoint import DetectionCheckpointer
from detectron2.modeling import build_model

from hpps_d2.checkpoint import (
    IncompatibleWeightsError,
    UnsafeWeightsError,
    d2_to_seqnet,
    seqnet_to_d2,
    whole_model_for_finetuning,
)
from hpps_d2.checkpoint.init import load_init_weights

from .test_seqnet_export import (
    SeqNetLike,
    cfg_of,
    check_equivalent,
    image_file,  # noqa: F401 (fixture)
    one_thread,  # noqa: F401 (fixture)
    random_model,
    randomise_norms,
)

REPO = Path(__file__).resolve().parents[2]
R18 = REPO / "configs/finetune/nae_prw_r18.yaml"
R50 = REPO / "configs/finetune/nae_prw_r50.yaml"


def _tool(name: str):
    spec = importlib.util.spec_from_file_location(name, REPO / "tools" / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _random_seqnet(arch: str, c4: int, c5: int, seed: int = 0) -> SeqNetLike:
    """A 'trained' SeqNet: random weights, norm statistics and biases; reid_head != box_head."""
    torch.manual_seed(seed)
    net = SeqNetLike(arch, c4, c5)
    g = torch.Generator().manual_seed(seed + 1)
    randomise_norms(net, g)
    with torch.no_grad():
        for name, p in net.named_parameters():
            if not name.startswith("backbone") and p.dim() == 1 and "bn" not in name:
                p.add_(torch.randn(p.shape, generator=g) * 0.1)
    return net.eval()


@pytest.mark.parametrize("config", [R18, R50], ids=["r18", "r50"])
def test_round_trip_through_both_tools_is_exact(config, tmp_path):
    model = random_model(cfg_of(config), seed=2)
    sd = dict(model.state_dict())
    sd["roi_heads.oim.lut"] = torch.randn(4, 256)
    sd["ssl_predictor.0.weight"] = torch.randn(3, 3)  # a pre-training-only module
    ckpt, seq, back = tmp_path / "m.pth", tmp_path / "seqnet.pth", tmp_path / "back.pth"
    torch.save({"model": sd}, ckpt)
    _tool("export_weights").main([str(ckpt), "--seqnet", str(seq), "--config-file", str(config)])
    args = ["--src", "seqnet", str(seq), str(back), "--config-file", str(config)]
    _tool("convert_weights").main(args)
    out = torch.load(back, weights_only=True)
    assert out["input_format"] == "RGB" and out["__author__"] == "seqnet"
    expected = whole_model_for_finetuning(sd)
    assert sorted(out["model"]) == sorted(expected)
    for k, v in expected.items():
        assert torch.equal(out["model"][k], v), k
    # and the trainer / evaluator's loader takes it whole
    fresh = build_model(cfg_of(config))
    load_init_weights(DetectionCheckpointer(fresh), str(back), "whole")
    for k, v in fresh.state_dict().items():
        assert torch.equal(v, expected[k]), k


def test_a_trained_seqnet_is_reproduced_by_our_model(tmp_path, image_file, capsys):  # noqa: F811
    """Import a SeqNet-structured model whose reid_head differs from its box_head (as after
    training): our model computes SeqNet's second stage (reid_head, embedding, box regressor)."""
    net = _random_seqnet("resnet18", 256, 512, seed=4)
    sd = dict(net.state_dict())
    sd["roi_heads.reid_loss.lut"] = torch.randn(6, 256)
    sd["roi_heads.reid_loss.cq"] = torch.randn(5, 256)
    # newer torchvision's RPNHead names its conv conv.0.0
    for p in ("weight", "bias"):
        sd[f"rpn.head.conv.0.0.{p}"] = sd.pop(f"rpn.head.conv.{p}")
    src, out = tmp_path / "seqnet_epoch19.pth", tmp_path / "ours.pth"
    torch.save({"model": sd, "optimizer": {"state": {}}, "epoch": 19}, src)
    _tool("convert_weights").main(["--src", "seqnet", str(src), str(out)])
    text = capsys.readouterr().out
    assert "trunk from roi_heads.reid_head.layer4" in text
    for part in ("roi_heads.box_head.layer4", "roi_heads.faster_rcnn_predictor.bbox_pred",
                 "roi_heads.reid_loss.cq", "roi_heads.reid_loss.lut"):
        assert part in text.split("not imported")[1]
    cfg = cfg_of(R18)
    model = build_model(cfg).eval()
    load_init_weights(DetectionCheckpointer(model), str(out), "whole")
    check_equivalent("import r18", model, cfg, net, image_file, heads=("reid_head",))


def test_bare_and_wrapped_state_dicts_import_alike():
    net = _random_seqnet("resnet18", 256, 512)
    sd = net.state_dict()
    bare, _ = seqnet_to_d2(sd)
    wrapped, _ = seqnet_to_d2({"model": {"module." + k: v for k, v in sd.items()}})
    assert sorted(bare) == sorted(wrapped) and all(torch.equal(bare[k], wrapped[k]) for k in bare)
    first, report = seqnet_to_d2(sd, layer4_from="box_head")
    assert report["layer4_from"] == "box_head"
    trunk = first["roi_heads.trunk.0.conv1.weight"]
    assert torch.equal(trunk, sd["roi_heads.box_head.layer4.0.conv1.weight"])


def test_a_checkpoint_that_is_not_seqnet_is_refused_naming_file_and_keys(tmp_path):
    import torchvision

    path = tmp_path / "resnet50.pth"
    torch.save(torchvision.models.resnet50().state_dict(), path)
    with pytest.raises(IncompatibleWeightsError) as e:
        _tool("convert_weights").main(["--src", "seqnet", str(path), str(tmp_path / "o.pth")])
    msg = str(e.value)
    assert str(path) in msg
    assert "rpn.head.cls_logits.weight" in msg and "backbone.conv1.weight" in msg
    # a SeqNet checkpoint missing its embedding head
    sd = _random_seqnet("resnet18", 256, 512).state_dict()
    sd = {k: v for k, v in sd.items() if "embedding" not in k}
    with pytest.raises(IncompatibleWeightsError, match="roi_heads.embedding_head.rescaler.weight"):
        seqnet_to_d2(sd, source="partial.pth")
    assert not (tmp_path / "o.pth").exists()


def test_a_file_with_python_objects_is_not_unpickled(tmp_path):
    path = tmp_path / "seqnet_with_args.pth"
    sd = _random_seqnet("resnet18", 256, 512).state_dict()
    torch.save({"model": sd, "args": argparse.Namespace(lr=1)}, path)
    with pytest.raises(UnsafeWeightsError):
        _tool("convert_weights").main(["--src", "seqnet", str(path), str(tmp_path / "o.pth")])


def test_shufflenet_models_have_no_seqnet_layout():
    torch.manual_seed(0)
    sd = build_model(cfg_of(REPO / "configs/synth/Base-Synth-ShuffleNet.yaml")).state_dict()
    with pytest.raises(IncompatibleWeightsError, match="ShuffleNetV2.*SeqNet"):
        d2_to_seqnet(sd)
