"""A config that cannot train fails at once, with every problem named, before data or model."""
import pytest
import torch
from detectron2.data import DatasetCatalog, MetadataCatalog

from hpps_d2.engine import HybridPretrainTrainer, PersonSearchTrainer
from tests.modeling.conftest import tiny_cfg


@pytest.fixture
def no_data_loading(monkeypatch):
    """Fail loudly if the trainer reads any dataset: the checks must come first."""
    def refuse(name):
        raise AssertionError(f"dataset {name!r} was loaded before the config was checked")

    monkeypatch.setattr(DatasetCatalog, "get", refuse)


def _cfg(**overrides):
    cfg = tiny_cfg()
    cfg.MODEL.WEIGHTS = ""
    cfg.DATASETS.TRAIN = ("synth_crowdhuman_train", "synth_msmt17_train")
    cfg.DATASETS.TEST = ()
    for k, v in overrides.items():
        node, *path = k.split(".")
        target = cfg
        for p in [node] + path[:-1]:
            target = getattr(target, p)
        setattr(target, path[-1], v)
    return cfg


def test_source_ratios_must_match_the_datasets(no_data_loading):
    with pytest.raises(ValueError, match=r"HPPS\.DATA\.SOURCE_RATIOS has 3 value\(s\) but DATASETS\.TRAIN has 2"):
        HybridPretrainTrainer(_cfg(**{"HPPS.DATA.SOURCE_RATIOS": (1.0, 2.0, 3.0)}))


def test_every_missing_dataset_is_listed_at_once(no_data_loading):
    cfg = _cfg(**{"DATASETS.TRAIN": ("nope_a_train", "synth_msmt17_train", "nope_b_train")})
    with pytest.raises(ValueError, match=r"2 dataset\(s\) not registered: nope_a_train, nope_b_train"):
        PersonSearchTrainer(cfg)


def test_pretraining_source_without_task_metadata(no_data_loading):
    DatasetCatalog.register("t_meta_less_train", lambda: [])
    try:
        cfg = _cfg(**{"DATASETS.TRAIN": ("synth_crowdhuman_train", "t_meta_less_train")})
        with pytest.raises(ValueError, match=r"'t_meta_less_train' has no metadata \['task', 'labeled'\]"):
            HybridPretrainTrainer(cfg)
    finally:
        DatasetCatalog.remove("t_meta_less_train")
        if "t_meta_less_train" in MetadataCatalog.list():
            MetadataCatalog.remove("t_meta_less_train")


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks a host without CUDA")
def test_cuda_device_on_a_cpu_host_says_what_to_add(no_data_loading):
    with pytest.raises(ValueError, match=r"MODEL\.DEVICE is 'cuda'.*add MODEL\.DEVICE cpu"):
        PersonSearchTrainer(_cfg(**{"MODEL.DEVICE": "cuda"}))
