"""
Weight files never run code, and bad ones fail with an error naming the file.

Every path that reads weights (MODEL.WEIGHTS through load_init_weights, the checkpointer of
--eval-only and --resume, the export/convert tools) goes through
:func:`hpps_d2.checkpoint.io.load_weights_file`. A payload here is an object whose ``__reduce__``
would create a marker directory: the tests check that it does not exist afterwards.
"""
import importlib.util
import os
import pickle
import re

import numpy as np
import pytest
import torch
from detectron2.checkpoint import DetectionCheckpointer
from detectron2.engine import default_argument_parser
from detectron2.modeling import build_model

from hpps_d2.checkpoint.init import load_init_weights, select_init_keys
from hpps_d2.checkpoint.io import UnsafeWeightsError, WeightsFileError
from tests.modeling.conftest import REPO, tiny_cfg

SYNTH_FINETUNE = os.path.join(REPO, "configs", "synth", "finetune_prw_shufflenet.yaml")


class Payload:
    """Unpickling this creates the directory ``marker`` (stands for any code a file could run)."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (os.mkdir, (self.marker,))


def _tool(name):
    spec = importlib.util.spec_from_file_location(f"_tool_{name}", os.path.join(REPO, "tools", f"{name}.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="module")
def tiny_model():
    torch.manual_seed(0)
    return build_model(tiny_cfg(meta="PersonSearchRCNN", num_ids=7))


def _pkl(path, obj, protocol=pickle.HIGHEST_PROTOCOL):
    with open(path, "wb") as f:
        pickle.dump(obj, f, protocol=protocol)
    return str(path)


# -- payloads -------------------------------------------------------------------------------- #
def test_pkl_payload_as_model_weights_does_not_run(tmp_path, tiny_model):
    marker = tmp_path / "pwned"
    path = _pkl(tmp_path / "evil.pkl", {"model": {}, "__author__": Payload(marker)})
    with pytest.raises(UnsafeWeightsError) as e:
        load_init_weights(DetectionCheckpointer(tiny_model), path, "whole")
    assert not marker.exists()
    assert path in str(e.value) and "posix.mkdir" in str(e.value)


def test_pkl_payload_through_eval_only_does_not_run(tmp_path):
    marker = tmp_path / "pwned"
    path = _pkl(tmp_path / "evil.pkl", {"model": {}, "__author__": Payload(marker)})
    args = default_argument_parser().parse_args(
        ["--config-file", SYNTH_FINETUNE, "--eval-only", "MODEL.WEIGHTS", path, "MODEL.DEVICE", "cpu",
         "OUTPUT_DIR", str(tmp_path / "out"), "DATASETS.TEST", "('synth_prw_gallery',)"]
    )
    with pytest.raises(UnsafeWeightsError, match=re.escape(path)):
        _tool("train_net").main(args)
    assert not marker.exists()


def test_pth_payload_is_refused_naming_the_file(tmp_path, tiny_model):
    marker = tmp_path / "pwned"
    path = str(tmp_path / "evil.pth")
    torch.save({"model": {"x": torch.zeros(1)}, "extra": Payload(marker)}, path)
    with pytest.raises(UnsafeWeightsError) as e:
        load_init_weights(DetectionCheckpointer(tiny_model), path, "whole")
    assert not marker.exists()
    assert path in str(e.value) and "mkdir" in str(e.value)


def test_resume_from_last_checkpoint_refuses_payloads(tmp_path, tiny_model):
    from hpps_d2.checkpoint.checkpointer import SafeCheckpointer

    marker = tmp_path / "pwned"
    _pkl(tmp_path / "model_0000009.pkl", {"model": {}, "__author__": Payload(marker)})
    (tmp_path / "last_checkpoint").write_text("model_0000009.pkl")
    with pytest.raises(UnsafeWeightsError, match="model_0000009.pkl"):
        SafeCheckpointer(tiny_model, str(tmp_path)).resume_or_load("", resume=True)
    assert not marker.exists()


# -- legitimate detectron2-style pickles ------------------------------------------------------ #
@pytest.mark.parametrize("protocol", [2, pickle.HIGHEST_PROTOCOL])
def test_detectron2_style_pkl_still_loads(tmp_path, tiny_model, protocol):
    ref = {k: np.array(v.numpy() + 1, dtype=v.numpy().dtype) for k, v in select_init_keys(tiny_model.state_dict(), "whole").items()}
    path = _pkl(
        tmp_path / "d2.pkl",
        {"model": ref, "__author__": "hpps_d2", "matching_heuristics": False, "meta": [np.float32(1.5), (1, "a"), None, b"x"]},
        protocol,
    )
    if protocol == 2:  # as numpy 1.x writes it (GLOBAL lines are text: same length not needed)
        data = open(path, "rb").read()
        open(path, "wb").write(data.replace(b"numpy._core.multiarray", b"numpy.core.multiarray"))
        assert b"numpy.core.multiarray" in open(path, "rb").read()
    res = load_init_weights(DetectionCheckpointer(tiny_model), path, "whole")
    assert res["loaded"] == len(ref)
    k = "roi_heads.trunk.conv5.0.weight"
    assert np.array_equal(tiny_model.state_dict()[k].numpy(), ref[k])


# -- broken files ----------------------------------------------------------------------------- #
def _truncated_pth(p):
    torch.save({"model": {"a": torch.zeros(100)}}, p)
    p.write_bytes(p.read_bytes()[:200])


def _truncated_pkl(p):
    p.write_bytes(pickle.dumps({"model": {"a": np.zeros(100)}, "__author__": "x"})[:-20])


BROKEN = {
    "truncated.pth": (_truncated_pth, "truncated or not a torch checkpoint"),
    "empty.pth": (lambda p: p.write_bytes(b""), "empty"),
    "empty.pkl": (lambda p: p.write_bytes(b""), "empty"),
    "truncated.pkl": (_truncated_pkl, "truncated or not a pickle"),
    "text.pth": (lambda p: p.write_text("hello"), "truncated or not a torch checkpoint"),
    "list.pth": (lambda p: torch.save([torch.zeros(1)], p), "expected a dict"),
    "list.pkl": (lambda p: p.write_bytes(pickle.dumps([1, 2])), "expected a dict"),
    "notensors.pth": (lambda p: torch.save({"model": {"a": 1}}, p), "no tensors"),
}


@pytest.mark.parametrize("name", sorted(BROKEN))
def test_broken_files_name_the_file_and_what_was_expected(tmp_path, tiny_model, name):
    make, expected = BROKEN[name]
    path = tmp_path / name
    make(path)
    with pytest.raises(WeightsFileError) as e:
        load_init_weights(DetectionCheckpointer(tiny_model), str(path), "whole")
    assert str(path) in str(e.value) and expected in str(e.value)


def test_wrong_architecture_is_an_error_counting_the_matches(tmp_path, tiny_model):
    sd = select_init_keys(tiny_model.state_dict(), "whole")
    few = dict(list(sd.items())[:5])
    few.update({f"other.layer{i}.weight": torch.zeros(3) for i in range(50)})
    path = str(tmp_path / "other_arch.pth")
    torch.save({"model": few}, path)
    with pytest.raises(WeightsFileError) as e:
        load_init_weights(DetectionCheckpointer(tiny_model), path, "whole")
    n = sum(not k.endswith("num_batches_tracked") for k in sd)  # BatchNorm counters are not weights
    assert path in str(e.value) and f"fits only 5 of the model's {n} tensors" in str(e.value)


def test_resnet_weights_into_a_shufflenet_model_are_refused(tmp_path, tiny_model):
    import torchvision

    from hpps_d2.checkpoint import torchvision_resnet_to_d2

    sd = torchvision_resnet_to_d2(torchvision.models.resnet18().state_dict(), 18)
    path = str(tmp_path / "R-18-torchvision.pth")
    torch.save({"model": sd, "__author__": "torchvision", "matching_heuristics": False}, path)
    with pytest.raises(WeightsFileError, match=re.escape(path) + r" fits only 0 of the model's"):
        load_init_weights(DetectionCheckpointer(tiny_model), path, "backbone")


def test_backbone_only_weights_are_not_a_wrong_architecture(tmp_path, tiny_model):
    # an ImageNet backbone (tools/convert_weights.py) holds only backbone keys: still accepted
    sd = select_init_keys(tiny_model.state_dict(), "backbone")
    path = str(tmp_path / "backbone.pth")
    torch.save({"model": sd}, path)
    assert load_init_weights(DetectionCheckpointer(tiny_model), path, "whole")["loaded"] == len(sd)


# -- a missing file is reported before any dataset is read ------------------------------------ #
def _train_args(tmp_path, *extra):
    return default_argument_parser().parse_args(
        ["--config-file", SYNTH_FINETUNE, *extra, "MODEL.WEIGHTS", str(tmp_path / "weights" / "hpps_r50_whole.pth"),
         "MODEL.DEVICE", "cpu", "OUTPUT_DIR", str(tmp_path / "out"),
         "DATASETS.TRAIN", "('no_such_dataset',)", "DATASETS.TEST", "('no_such_test_set',)"]
    )


@pytest.mark.parametrize("extra", [(), ("--eval-only",), ("--resume",)])
def test_missing_weights_reported_before_datasets_load(tmp_path, extra):
    with pytest.raises(FileNotFoundError) as e:
        _tool("train_net").main(_train_args(tmp_path, *extra))
    msg = str(e.value)
    assert str(tmp_path / "weights" / "hpps_r50_whole.pth") in msg
    assert "tools/export_weights.py" in msg and "tools/convert_weights.py" in msg


def test_trainer_constructor_reports_missing_weights_first(tmp_path):
    from detectron2.config import get_cfg

    from hpps_d2.config import add_hpps_config
    from hpps_d2.engine.trainer import PersonSearchTrainer

    cfg = add_hpps_config(get_cfg())
    cfg.merge_from_file(SYNTH_FINETUNE)
    cfg.merge_from_list(["MODEL.WEIGHTS", str(tmp_path / "nope.pth"), "MODEL.DEVICE", "cpu",
                         "OUTPUT_DIR", str(tmp_path / "out"), "DATASETS.TRAIN", "('no_such_dataset',)"])
    with pytest.raises(FileNotFoundError, match=re.escape(str(tmp_path / "nope.pth"))):
        PersonSearchTrainer(cfg)


# -- names agree between configs, README and the tools' --help -------------------------------- #
def test_weight_file_names_agree():
    names = set()
    for root, _, files in os.walk(os.path.join(REPO, "configs")):
        for f in files:
            if f.endswith(".yaml"):
                names |= set(re.findall(r"weights/[\w.\-]+\.pth", open(os.path.join(root, f)).read()))
    assert "weights/hpps_r50_whole.pth" in names
    docs = {
        "README.md": open(os.path.join(REPO, "README.md")).read(),
        **{t: _tool(t).__doc__ for t in ("export_weights", "convert_weights", "train_net")},
    }
    for doc_name, text in docs.items():
        for name in re.findall(r"weights/hpps[\w.\-]*\.pth", text):
            assert "-" not in name, f"{doc_name}: {name} (the configs write hpps_<arch>_...)"
            if name.endswith("_whole.pth"):
                assert name in names, f"{doc_name}: {name} is not a configs' MODEL.WEIGHTS"


# -- the tools read through the same loader --------------------------------------------------- #
def test_export_tool_never_unpickles_a_pkl_even_with_allow_pickle(tmp_path):
    marker = tmp_path / "pwned"
    path = _pkl(tmp_path / "evil.pkl", {"model": {}, "__author__": Payload(marker)})
    with pytest.raises(UnsafeWeightsError, match=re.escape(path)):
        _tool("export_weights").main([path, "--whole", str(tmp_path / "w.pth"), "--allow-pickle"])
    assert not marker.exists()


def test_convert_tool_reports_broken_files_without_a_traceback(tmp_path):
    import subprocess
    import sys

    path = tmp_path / "resnet18.pth"
    _truncated_pth(path)
    res = subprocess.run(
        [sys.executable, os.path.join(REPO, "tools", "convert_weights.py"), str(path), str(tmp_path / "out.pth")],
        cwd=REPO, capture_output=True, text=True, timeout=120, env=dict(os.environ, PYTHONPATH=REPO),
    )
    assert res.returncode != 0
    assert f"error: {path}: truncated or not a torch checkpoint" in res.stderr
    assert "Traceback" not in res.stderr


def test_search_demo_reports_missing_weights_before_building(tmp_path):
    from detectron2.config import get_cfg

    from hpps_d2.config import add_hpps_config
    from hpps_d2.engine.searcher import PersonSearcher

    cfg = add_hpps_config(get_cfg())
    cfg.merge_from_file(SYNTH_FINETUNE)
    cfg.merge_from_list(["MODEL.WEIGHTS", str(tmp_path / "model_final.pth"), "MODEL.DEVICE", "cpu"])
    with pytest.raises(FileNotFoundError, match=re.escape(str(tmp_path / "model_final.pth"))):
        PersonSearcher(cfg)
