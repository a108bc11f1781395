"""The pre-training trainer's data: DATASETS.TRAIN_FRACTION and empty-scene filtering act on every
sub-task set before unification, so the OIM table counts only the identities trained on."""
import numpy as np
import pytest
from detectron2.data import DatasetCatalog, MetadataCatalog

from hpps_d2.engine import HybridPretrainTrainer
from tests.modeling.conftest import tiny_cfg


def _scene(i, boxes):
    return {"file_name": f"s{i}.jpg", "image_id": f"s{i:02d}", "height": 100, "width": 100,
            "annotations": [{"bbox": [10, 10, 20, 40], "bbox_mode": 0, "person_id": -1, "iscrowd": 0}] * boxes}


def _crop(i):
    return {"file_name": f"c{i}.jpg", "image_id": f"c{i:02d}", "person_id": -1, "camera_id": 0}


@pytest.fixture
def two_sources():
    # 10 detection scenes (two of them empty: dropped before anything else) and 8 unlabeled crops
    det = [_scene(i, 0 if i in (3, 7) else 2) for i in range(10)]
    lup = [_crop(i) for i in range(8)]
    for name, recs, task in (("t_frac_det_train", det, "detection"), ("t_frac_lup_train", lup, "reid")):
        DatasetCatalog.register(name, lambda recs=recs: [dict(r) for r in recs])
        MetadataCatalog.get(name).set(task=task, labeled=False)
    yield det, lup
    for name in ("t_frac_det_train", "t_frac_lup_train"):
        DatasetCatalog.remove(name)
        MetadataCatalog.remove(name)


def _nested_subset(ids, fraction):
    """DATASETS.TRAIN_FRACTION's rule, re-derived: the first round(f * N) of one seed-0
    permutation of the sorted image ids."""
    ids = sorted(ids)
    order = np.random.default_rng(0).permutation(len(ids))
    return {ids[i] for i in order[: max(1, int(round(fraction * len(ids))))]}


def test_train_fraction_applies_to_every_pretraining_source(two_sources):
    det, lup = two_sources
    cfg = tiny_cfg()
    cfg.DATASETS.TRAIN = ("t_frac_det_train", "t_frac_lup_train")
    cfg.DATASETS.TRAIN_FRACTION = 0.5
    cfg.DATALOADER.FILTER_EMPTY_ANNOTATIONS = True
    data = HybridPretrainTrainer.load_train_data(None, cfg)
    non_empty = [r["image_id"] for r in det if r["annotations"]]
    want_det = _nested_subset(non_empty, 0.5)  # 4 of the 8 non-empty scenes
    want_lup = _nested_subset([r["image_id"] for r in lup], 0.5)  # 4 of 8 crops
    assert data["sizes"] == [4, 4]
    assert {r["image_id"] for r in data["records"][:4]} == want_det
    assert {r["image_id"] for r in data["records"][4:]} == want_lup
    # one pseudo-identity per kept box (2 per scene) and per kept crop, and no more
    assert data["num_identities"] == 4 * 2 + 4
    pids = [a["person_id"] for r in data["records"][:4] for a in r["annotations"]] + [r["person_id"] for r in data["records"][4:]]
    assert sorted(pids) == list(range(12))
