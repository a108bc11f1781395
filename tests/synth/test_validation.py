"""The PRW validation split of the synthetic world (prw_val_*): carved from the train frames only,
disjoint from what is trained on, as the writer arranged it, and evaluable by the PRW protocol."""

import json
import os
import uuid

import numpy as np
import pytest
import scipy.io
import torch
from detectron2.data import DatasetCatalog, MetadataCatalog
from detectron2.structures import Boxes, Instances

from hpps_d2.data.datasets import register_all
from hpps_d2.data.datasets.validation import load_prw_val
from hpps_d2.evaluation import PersonSearchEvaluator
from hpps_d2.evaluation.test_mapper import GALLERY_INDEX, QUERY_INDICES, search_eval_records
from hpps_d2.synth import generate_world

#: 12 train ids -> round(0.2 * 12) = 2 held out -> round(40 * 2 / 12) = 7 val frames.
SIZES = {"prw": {"train_ids": 12, "train_frames": 40}}
VAL_FRAMES = 7


@pytest.fixture(scope="module")
def prw_world(tmp_path_factory):
    root = str(tmp_path_factory.mktemp("prw_val"))
    generate_world(root, scale=0.1, datasets=["prw"], sizes=SIZES, workers=1)
    with open(os.path.join(root, "manifest.json"), encoding="utf-8") as f:
        return root, json.load(f)


def _rows(d, frame):
    """The raw (N, 5) rows of one annotation file, read with scipy (not our loader)."""
    m = scipy.io.loadmat(os.path.join(d, "annotations", frame + ".jpg.mat"))
    (rows,) = [v for k, v in m.items() if not k.startswith("__")]
    return rows


def _train_frames(d):
    cells = scipy.io.loadmat(os.path.join(d, "frame_train.mat"))["img_index_train"]
    return [str(c[0][0]) for c in cells]


def _stem(record):
    return record["image_id"][: -len(".jpg")]


def test_val_frames_are_exactly_the_frames_of_held_out_people(prw_world):
    root, manifest = prw_world
    d = os.path.join(root, "PRW")
    val = manifest["datasets"]["prw"]["detail"]["validation"]
    held = set(val["held_out"])
    assert len(held) == 2 and held == set(val["planned_held_out"])
    train_ids = scipy.io.loadmat(os.path.join(d, "ID_train.mat"))["ID_train"].ravel().astype(int)
    assert held <= set(train_ids)
    rest = load_prw_val(d, "val_train")
    gallery = load_prw_val(d, "val_gallery")
    rest_names, gallery_names = [_stem(r) for r in rest], [_stem(r) for r in gallery]
    assert not set(rest_names) & set(gallery_names)
    assert sorted(rest_names + gallery_names) == sorted(_train_frames(d))
    assert gallery_names == val["gallery_frames"] and len(gallery_names) == VAL_FRAMES
    for name in rest_names:  # no held-out person is ever trained on
        assert not held & set(_rows(d, name)[:, 0].astype(int))
    for name in gallery_names:  # the writer kept held-out people among themselves
        labeled = {int(p) for p in _rows(d, name)[:, 0] if p > 0}
        assert labeled and labeled <= held
    ids = {a["person_id"] for r in rest for a in r["annotations"] if a["person_id"] >= 0}
    assert ids == set(range(12 - 2))  # relabeled 0..N'-1
    # the loader's counts equal the manifest's (also checked for every split in test_loaders)
    assert len(rest) == manifest["splits"]["prw_val_train"]["images"]
    assert len(gallery) == manifest["splits"]["prw_val_gallery"]["images"]


def test_val_queries_are_one_per_held_out_id_with_another_frame(prw_world):
    root, manifest = prw_world
    d = os.path.join(root, "PRW")
    gallery_names = manifest["datasets"]["prw"]["detail"]["validation"]["gallery_frames"]
    frames_of = {}
    for name in gallery_names:
        for p in {int(p) for p in _rows(d, name)[:, 0] if p > 0}:
            frames_of.setdefault(p, set()).add(name)
    expected = sum(1 for f in frames_of.values() if len(f) >= 2)
    queries = load_prw_val(d, "val_query")
    assert len(queries) == expected == manifest["splits"]["prw_val_query"]["queries"] >= 1
    assert len({q["query"]["person_id"] for q in queries}) == len(queries)
    assert {_stem(q) for q in queries} <= set(gallery_names)


def test_split_metadata_links_query_and_gallery(prw_world):
    names = [n for n in DatasetCatalog.list() if n.startswith("synth_prw_val_")]
    assert sorted(names) == ["synth_prw_val_gallery", "synth_prw_val_query", "synth_prw_val_train"]
    q, g = MetadataCatalog.get("synth_prw_val_query"), MetadataCatalog.get("synth_prw_val_gallery")
    assert (q.role, q.gallery, q.evaluator_type, q.domain) == (
        "query", "synth_prw_val_gallery", "person_search", "prw")
    assert (g.role, g.query, g.evaluator_type, g.domain) == (
        "gallery", "synth_prw_val_query", "person_search", "prw")
    t = MetadataCatalog.get("synth_prw_val_train")
    assert (t.role, t.evaluator_type, t.task) == ("train", None, "search")


def test_evaluator_runs_on_the_val_pair(prw_world):
    """Ground-truth boxes as detections and one-hot identity embeddings: every query finds every
    other frame of its person first, so mAP and top-1 are 100 over all the queries."""
    root, manifest = prw_world
    prefix = f"t{uuid.uuid4().hex[:8]}_"
    register_all(root, prefix=prefix)
    qname, gname = prefix + "prw_val_query", prefix + "prw_val_gallery"
    assert MetadataCatalog.get(qname).gallery == gname
    queries, gallery = DatasetCatalog.get(qname), DatasetCatalog.get(gname)
    dim = 2 + max(a["person_id"] for r in gallery for a in r["annotations"])

    def onehot(pids):
        e = np.zeros((len(pids), dim), np.float32)
        for k, p in enumerate(pids):
            if p >= 0:
                e[k, p] = 1.0
        return torch.from_numpy(e)

    by_id = {r["image_id"]: r for r in gallery}
    evaluator = PersonSearchEvaluator(qname, gname, det_thresh=0.5, distributed=False)
    evaluator.reset()
    for rec in search_eval_records(queries, gallery):
        g = by_id[rec["image_id"]]
        inst = Instances((g["height"], g["width"]))
        inst.pred_boxes = Boxes(torch.tensor([a["bbox"] for a in g["annotations"]]).reshape(-1, 4))
        inst.scores = torch.ones(len(g["annotations"]))
        inst.pred_embeddings = onehot([a["person_id"] for a in g["annotations"]])
        out = {"instances": inst}
        if QUERY_INDICES in rec:
            pids = [queries[q]["query"]["person_id"] for q in rec[QUERY_INDICES]]
            out["query_embeddings"] = onehot(pids)
        assert GALLERY_INDEX in rec
        evaluator.process([rec], [out])
    search = evaluator.evaluate()["search"]
    assert search["mAP"] == pytest.approx(100.0) and search["top1"] == pytest.approx(100.0)
    assert len(queries) == manifest["splits"]["prw_val_query"]["queries"]


def test_frame_scale_keeps_people_in_proportion(tmp_path):
    full, half = str(tmp_path / "full"), str(tmp_path / "half")
    generate_world(full, scale=0.05, datasets=["prw"], workers=1)
    half_size = {"prw": {"frame_scale": 0.5}}
    generate_world(half, scale=0.05, datasets=["prw"], workers=1, sizes=half_size)
    import cv2

    for frame in _train_frames(os.path.join(full, "PRW"))[:8]:
        a = cv2.imread(os.path.join(full, "PRW", "frames", frame + ".jpg"))
        b = cv2.imread(os.path.join(half, "PRW", "frames", frame + ".jpg"))
        assert b.shape[:2] == (round(a.shape[0] / 2), round(a.shape[1] / 2))  # 270->135, 480->240
        ra, rb = _rows(os.path.join(full, "PRW"), frame), _rows(os.path.join(half, "PRW"), frame)
        assert (ra[:, 0] == rb[:, 0]).all()
        # same layout, boxes halved; each file adds its own +-0.5 px jitter
        assert np.abs(rb[:, 1:] - ra[:, 1:] / 2).max() <= 0.5 + 0.25 + 0.02


def test_the_finetune_config_accepts_the_val_splits(prw_world):
    """What tools/train_net.py checks and builds before training on synth_prw_val_train and
    evaluating on synth_prw_val_query (the full run is in docs/synthetic_world.md)."""
    from detectron2.config import get_cfg

    from hpps_d2.config import add_hpps_config
    from hpps_d2.config.check import check_train_config
    from hpps_d2.engine.trainer import PersonSearchTrainer

    root, manifest = prw_world
    prefix = f"t{uuid.uuid4().hex[:8]}_"
    register_all(root, prefix=prefix)
    cfg = get_cfg()
    add_hpps_config(cfg)
    here = os.path.dirname(os.path.abspath(__file__))
    config = os.path.join(here, "..", "..", "configs", "synth", "finetune_prw_shufflenet.yaml")
    cfg.merge_from_file(config)
    cfg.merge_from_list(["DATASETS.TRAIN", f"('{prefix}prw_val_train',)",
                         "DATASETS.TEST", f"('{prefix}prw_val_query',)", "MODEL.DEVICE", "cpu"])
    check_train_config(cfg)
    loader, evaluator = PersonSearchTrainer.build_test_pair(cfg, f"{prefix}prw_val_query")
    assert sum(len(batch) for batch in loader) == manifest["splits"]["prw_val_gallery"]["images"]
    assert evaluator._gallery_name == f"{prefix}prw_val_gallery"
