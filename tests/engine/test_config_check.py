"""A config that cannot train fails at once, with every problem named, before data or model."""
import pytest
import torch
from detectron2.data import DatasetCatalog, MetadataCatalog

from hpps_d2.engine import HybridPretrainTrainer, PersonSearchTrainer
from tests.modeling.conftest import REPO, tiny_cfg


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


@pytest.fixture
def registered(request):
    """Register (name, metadata) pairs for one test; removed afterwards."""
    names = []

    def register(name, **meta):
        DatasetCatalog.register(name, lambda: [])
        MetadataCatalog.get(name).set(**meta)
        names.append(name)

    yield register
    for n in names:
        DatasetCatalog.remove(n)
        MetadataCatalog.remove(n)


def test_test_split_without_evaluator_type_fails_before_training(no_data_loading, registered):
    registered("t_plain_gallery", role="gallery")
    with pytest.raises(ValueError, match=r"DATASETS\.TEST: 't_plain_gallery' has evaluator_type None; expected one of \['person_search', 'reid'\]"):
        PersonSearchTrainer(_cfg(**{"DATASETS.TEST": ("t_plain_gallery",)}))


def test_test_split_with_an_unregistered_partner_fails_before_training(no_data_loading, registered):
    registered("t_lonely_query", role="query", evaluator_type="reid", gallery="t_absent_gallery")
    registered("t_roleless", evaluator_type="person_search")
    with pytest.raises(ValueError) as e:
        PersonSearchTrainer(_cfg(**{"DATASETS.TEST": ("t_lonely_query", "t_roleless")}))
    msg = str(e.value)
    assert "'t_lonely_query' (role query) names gallery 't_absent_gallery', which is not registered" in msg
    assert "'t_roleless' has role None; expected 'query' or 'gallery' with metadata naming its partner" in msg


def test_eval_only_checks_the_test_splits_before_building_anything(no_data_loading, registered, monkeypatch):
    import importlib.util, os
    registered("t_plain_query", role="query", gallery="synth_prw_gallery")
    spec = importlib.util.spec_from_file_location("train_net_under_test", os.path.join(REPO, "tools", "train_net.py"))
    train_net = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(train_net)
    monkeypatch.setattr(PersonSearchTrainer, "build_model", classmethod(lambda cls, cfg: pytest.fail("model built")))
    args = train_net.argument_parser().parse_args([
        "--config-file", os.path.join(REPO, "configs", "synth", "finetune_prw_shufflenet.yaml"), "--eval-only",
        "MODEL.WEIGHTS", "", "MODEL.DEVICE", "cpu", "DATASETS.TEST", "('t_plain_query',)",
    ])
    with pytest.raises(ValueError, match=r"'t_plain_query' has evaluator_type None"):
        train_net.main(args)


def test_sharded_oim_settings_are_checked_before_training(no_data_loading):
    cfg = _cfg()
    cfg.MODEL.OIM.TABLE_DTYPE = "float8"
    cfg.MODEL.OIM.CHUNK_ROWS = 0
    cfg.MODEL.OIM.SAMPLE_RATE = 0.1  # without SHARDED
    with pytest.raises(ValueError) as e:
        PersonSearchTrainer(cfg)
    msg = str(e.value)
    assert "MODEL.OIM.TABLE_DTYPE must be one of ['bfloat16', 'float16', 'float32'], got 'float8'" in msg
    assert "MODEL.OIM.CHUNK_ROWS must be a positive integer" in msg
    assert "MODEL.OIM.SAMPLE_RATE 0.1 needs MODEL.OIM.SHARDED True" in msg
