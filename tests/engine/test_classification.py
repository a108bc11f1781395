"""A short classification training on the tiny world's ImageNet stand-in learns: val top-1 well
above the majority-class rate counted from the val files, with the project's trainer."""

import json
import os
import time

import pytest
import torch
from detectron2.config import get_cfg
from detectron2.data import DatasetCatalog, MetadataCatalog

from hpps_d2.config import add_hpps_config
from hpps_d2.engine import trainer_class
from hpps_d2.engine.classification import ClassificationTrainer, check_classification_config
from hpps_d2.config.check import ConfigError

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
#: every 6th class of the stand-in: 8 classes that differ in colour, shape or texture
EVERY = 6


def _count_files(folder):
    """wnid -> number of images, from the folder itself."""
    return {w: len(os.listdir(os.path.join(folder, w))) for w in sorted(os.listdir(folder))}


@pytest.fixture(scope="module")
def tiny_splits(datasets_root):
    """Register ``t_cls_{train,val}``: the tiny world's stand-in restricted to every 6th class,
    relabelled 0..K-1 (the catalog of this process, not the subprocesses')."""
    from hpps_d2.data.datasets.imagenet import load_imagenet

    base = os.path.join(datasets_root, "synth", "imagenet")
    wnids = sorted(os.listdir(os.path.join(base, "train")))[::EVERY]
    for split in ("train", "val"):
        name = f"t_cls_{split}"

        def load(split=split):
            recs = [r for r in load_imagenet(base, split) if r["image_id"].split("/")[0] in wnids]
            return [dict(r, class_id=wnids.index(r["image_id"].split("/")[0])) for r in recs]

        if name not in DatasetCatalog.list():
            DatasetCatalog.register(name, load)
            MetadataCatalog.get(name).set(
                task="classification", role=split, evaluator_type="classification"
            )
    counts = _count_files(os.path.join(base, "val"))
    return wnids, [counts[w] for w in wnids]


def _cfg(tmp_path, *opts):
    cfg = add_hpps_config(get_cfg())
    cfg.merge_from_file(os.path.join(REPO, "configs", "synth", "generic_pretrain_shufflenet.yaml"))
    cfg.merge_from_list(
        [
            "DATASETS.TRAIN", "('t_cls_train',)", "DATASETS.TEST", "('t_cls_val',)",
            "SOLVER.IMS_PER_BATCH", "32", "SOLVER.MAX_ITER", "120", "SOLVER.BASE_LR", "0.05",
            "SOLVER.WARMUP_ITERS", "5", "DATALOADER.NUM_WORKERS", "0",
            "INPUT.CLASSIFICATION.TRAIN_CROP_SIZE", "48",
            "INPUT.CLASSIFICATION.TEST_RESIZE_SIZE", "55",
            "INPUT.CLASSIFICATION.TEST_CROP_SIZE", "48",
            "OUTPUT_DIR", str(tmp_path), *opts,
        ]
    )  # fmt: skip
    return cfg


def test_short_training_beats_the_majority_class(tiny_splits, tmp_path):
    wnids, val_sizes = tiny_splits
    cfg = _cfg(tmp_path)
    assert trainer_class(cfg) is ClassificationTrainer
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        start = time.perf_counter()
        trainer = ClassificationTrainer(cfg)
        trainer.resume_or_load(resume=False)
        trainer.train()  # evaluates DATASETS.TEST at the end (TEST.EVAL_PERIOD 0)
        seconds = time.perf_counter() - start
    finally:
        torch.set_num_threads(threads)
    with open(os.path.join(tmp_path, "eval_results.json"), encoding="utf-8") as f:
        flat = json.load(f)
    prefix = "t_cls_val/classification/"
    res = {k[len(prefix) :]: v for k, v in flat.items() if k.startswith(prefix)}
    assert res["num_classes"] == len(wnids) == trainer.cfg.MODEL.CLASSIFIER.NUM_CLASSES
    assert res["num_images"] == sum(val_sizes)
    majority = 100.0 * max(val_sizes) / sum(val_sizes)  # = chance 1/K for equal class sizes
    print(f"top-1 {res['top1']:.1f}% vs majority {majority:.1f}% in {seconds:.0f} s")
    assert res["top1"] > 3 * majority, (res, majority)
    assert os.path.isfile(os.path.join(tmp_path, "model_final.pth"))


def test_person_search_splits_are_refused(tiny_splits, tmp_path):
    cfg = _cfg(tmp_path, "DATASETS.TRAIN", "('synth_prw_train',)")
    with pytest.raises(ConfigError, match=r"'synth_prw_train' has task 'search'"):
        check_classification_config(cfg)
