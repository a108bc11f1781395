"""The evaluator classes end to end, fed a fake model output stream over in-memory records."""

import os

import numpy as np
import pytest
import torch
from detectron2.config import get_cfg
from detectron2.data import DatasetCatalog, MetadataCatalog
from detectron2.structures import Boxes, Instances

from hpps_d2.config import add_hpps_config
from hpps_d2.evaluation import PersonSearchEvaluator, PersonSearchTestMapper, ReIDEvaluator
from hpps_d2.evaluation.reid_eval import evaluate_reid
from hpps_d2.evaluation.test_mapper import (
    GALLERY_INDEX,
    QUERY_INDICES,
    build_reid_test_loader,
    build_search_test_loader,
    reid_eval_records,
    search_eval_records,
)
from tests.evaluation import oracle
from tests.evaluation.synthetic import make_world
from tests.helpers import write_image


@pytest.fixture
def register():
    names = []

    def _register(name, records, **metadata):
        DatasetCatalog.register(name, lambda: records)
        MetadataCatalog.get(name).set(**metadata)
        names.append(name)
        return name

    yield _register
    for name in names:
        DatasetCatalog.remove(name)
        MetadataCatalog.remove(name)


def float32_world(seed):
    """A world whose numbers survive the float32 round trip through torch unchanged."""
    w = make_world(seed, noise=0.4, dtype=np.float32)
    w.boxes = [b.astype(np.float32).astype(np.float64) for b in w.boxes]
    w.scores = [s.astype(np.float32) for s in w.scores]
    return w


def model_stream(world, records, batch=3, skip_gallery=()):
    """(inputs, outputs) batches as PersonSearchRCNN would return them for the eval records."""
    batches = []
    for start in range(0, len(records), batch):
        inputs, outputs = [], []
        for rec in records[start : start + batch]:
            g = rec.get(GALLERY_INDEX)
            if g in skip_gallery:
                continue
            i = g if g is not None else 0  # a query-only image: any detections will do
            inst = Instances((rec["height"], rec["width"]))
            inst.pred_boxes = Boxes(
                torch.as_tensor(world.boxes[i], dtype=torch.float32).reshape(-1, 4)
            )
            inst.scores = torch.as_tensor(world.scores[i])
            inst.pred_embeddings = torch.as_tensor(world.features[i])
            out = {"instances": inst}
            if QUERY_INDICES in rec:
                out["query_embeddings"] = torch.as_tensor(world.query_features[rec[QUERY_INDICES]])
            inputs.append(dict(rec))
            outputs.append(out)
        batches.append((inputs, outputs))
    return batches


def run_evaluator(evaluator, batches):
    evaluator.reset()
    for inputs, outputs in batches:
        evaluator.process(inputs, outputs)
    return evaluator.evaluate()


def test_search_records_merge_queries_into_gallery_inputs():
    w = make_world(0)
    records = search_eval_records(w.queries, w.gallery)
    assert len(records) == len(w.gallery)  # every query image is a gallery image
    carried = sorted(q for r in records for q in r.get(QUERY_INDICES, []))
    assert carried == list(range(len(w.queries)))
    for r in records:
        for q, box in zip(r.get(QUERY_INDICES, []), r.get("query_boxes", [])):
            assert (
                r["image_id"] == w.queries[q]["image_id"] and box == w.queries[q]["query"]["bbox"]
            )
        assert "gallery_lists" not in r and "annotations" not in r
    separate = search_eval_records(w.queries, w.gallery, merge=False)
    assert len(separate) == len(w.gallery) + len(w.queries)


@pytest.mark.parametrize("domain", ["cuhk_sysu", "prw", "posetrack21"])
def test_person_search_evaluator_end_to_end(register, domain):
    w = float32_world(4)
    gname = register(f"_eval_test_{domain}_gallery", w.gallery, domain=domain)
    qname = register(f"_eval_test_{domain}_query", w.queries, domain=domain)
    evaluator = PersonSearchEvaluator(
        qname, gname, det_thresh=0.3, cws=True, default_gallery_size=50, distributed=False
    )
    records = search_eval_records(w.queries, w.gallery)
    results = run_evaluator(evaluator, model_stream(w, records))
    search = results["search"]
    dets = oracle.kept_detections(w.boxes, w.scores, w.features, 0.3, True)
    if domain == "cuhk_sysu":
        expected = {
            "": oracle.cuhk_sysu(w.queries, w.gallery, w.query_features, dets, 50),
            "_g10": oracle.cuhk_sysu(w.queries, w.gallery, w.query_features, dets, 10),
            "_g50": oracle.cuhk_sysu(w.queries, w.gallery, w.query_features, dets, 50),
            "_full": oracle.cuhk_sysu(w.queries, w.gallery, w.query_features, dets, -1),
        }
    elif domain == "prw":
        expected = {
            "": oracle.pid_search(w.queries, w.gallery, w.query_features, dets, True),
            "_cross_cam": oracle.pid_search(w.queries, w.gallery, w.query_features, dets, False),
        }
    else:
        expected = {"": oracle.pid_search(w.queries, w.gallery, w.query_features, dets, True)}
    assert len(search) == 4 * len(expected)
    for suffix, per_query in expected.items():
        for key, value in oracle.summarize(per_query).items():
            assert search[key + suffix] == pytest.approx(100 * value, abs=1e-7), key + suffix
    for suffix, labeled in (("", False), ("_labeled", True)):
        ap, recall, _, _ = oracle.detection(
            w.gallery, w.boxes, w.scores, 0.01, labeled_only=labeled
        )
        assert results["detection"]["AP" + suffix] == pytest.approx(100 * ap, abs=1e-7)
        assert results["detection"]["recall" + suffix] == pytest.approx(100 * recall, abs=1e-7)
    # a second round after reset gives the same numbers
    assert run_evaluator(evaluator, model_stream(w, records, batch=5)) == results


def test_person_search_evaluator_errors_and_config(register):
    w = float32_world(2)
    gname = register("_eval_test_err_gallery", w.gallery, domain="prw")
    qname = register("_eval_test_err_query", w.queries, domain="prw")
    cfg = add_hpps_config(get_cfg())
    cfg.MODEL.NAE.CWS = False
    evaluator = PersonSearchEvaluator(cfg, qname, gname)
    assert evaluator._cws is False and evaluator._det_thresh == 0.5
    records = search_eval_records(w.queries, w.gallery, merge=False)
    with pytest.raises(RuntimeError, match=r"no model output for 1 of 70 gallery images.*g3\.jpg"):
        run_evaluator(evaluator, model_stream(w, records, skip_gallery={3}))
    no_queries = [r for r in records if QUERY_INDICES not in r]
    with pytest.raises(RuntimeError, match="no query embedding"):
        run_evaluator(evaluator, model_stream(w, no_queries))
    other = register("_eval_test_err_other", w.gallery, domain="crowdhuman")
    with pytest.raises(ValueError, match="no search protocol"):
        run_evaluator(PersonSearchEvaluator(qname, other), model_stream(w, records))
    with pytest.raises(ValueError, match="gallery sizes"):
        cuhk = register("_eval_test_err_cuhk", w.gallery, domain="cuhk_sysu")
        run_evaluator(
            PersonSearchEvaluator(qname, cuhk, gallery_sizes=[100]), model_stream(w, records)
        )


def test_posetrack21_best_detection_query_feature(register):
    w = float32_world(6)
    gname = register("_eval_test_pt_gallery", w.gallery, domain="posetrack21")
    qname = register("_eval_test_pt_query", w.queries, domain="posetrack21")
    records = search_eval_records(w.queries, w.gallery)
    box = run_evaluator(
        PersonSearchEvaluator(qname, gname, det_thresh=0.2), model_stream(w, records)
    )
    best = PersonSearchEvaluator(qname, gname, det_thresh=0.2, query_feature="best_det")
    best = run_evaluator(best, model_stream(w, records))
    assert best["detection"] == box["detection"]
    assert best["search"] != box["search"]  # the query features changed


def crop_records(rng, n, prefix):
    return [
        {
            "file_name": f"{prefix}{i}.jpg",
            "image_id": f"{prefix}{i}.jpg",
            "person_id": int(rng.integers(0, 5)),
            "camera_id": int(rng.integers(0, 3)),
        }
        for i in range(n)
    ]


def test_reid_evaluator_end_to_end(register):
    rng = np.random.default_rng(0)
    queries, gallery = crop_records(rng, 12, "q"), crop_records(rng, 40, "g")
    qname = register("_eval_test_reid_query", queries)
    gname = register("_eval_test_reid_gallery", gallery)
    feats = {"query": rng.standard_normal((12, 6)), "gallery": rng.standard_normal((40, 6))}
    feats = {
        k: (v / np.linalg.norm(v, axis=1, keepdims=True)).astype(np.float32)
        for k, v in feats.items()
    }
    records = reid_eval_records(queries, gallery)
    evaluator = ReIDEvaluator(qname, gname)
    evaluator.reset()
    for rec in records:
        emb = torch.as_tensor(feats[rec["reid_role"]][rec["reid_index"]][None])
        evaluator.process([rec], [{"query_embeddings": emb, "instances": None}])
    results = evaluator.evaluate()
    pids = {k: np.array([r["person_id"] for r in v]) for k, v in (("q", queries), ("g", gallery))}
    cams = {k: np.array([r["camera_id"] for r in v]) for k, v in (("q", queries), ("g", gallery))}
    expected = evaluate_reid(
        feats["query"], feats["gallery"], pids["q"], pids["g"], cams["q"], cams["g"]
    )
    mAP, cmc, _, _ = oracle.reid(
        -(feats["query"] @ feats["gallery"].T), pids["q"], pids["g"], cams["q"], cams["g"]
    )
    assert results["reid"]["mAP"] == pytest.approx(100 * mAP)
    assert results["reid"]["rank1"] == pytest.approx(100 * cmc[1])
    assert results["reid"] == {k: 100 * v for k, v in expected.summary().items()}
    evaluator.reset()
    evaluator.process(records[:1], [{"query_embeddings": torch.zeros(1, 6)}])
    with pytest.raises(RuntimeError, match="no embedding for 11 of 12"):
        evaluator.evaluate()


def test_mapper_and_loaders(tmp_path, register):
    gallery, queries = [], []
    for i, (h, w) in enumerate([(60, 100), (80, 40)]):
        path = write_image(os.path.join(tmp_path, f"s{i}.jpg"), h, w, seed=i)
        gallery.append(
            {"file_name": path, "image_id": f"s{i}.jpg", "height": h, "width": w, "annotations": []}
        )
    queries.append(
        {
            "file_name": gallery[1]["file_name"],
            "image_id": "s1.jpg",
            "height": 80,
            "width": 40,
            "query": {"bbox": [1.0, 2.0, 30.0, 70.0], "person_id": 3},
        }
    )
    mapper = PersonSearchTestMapper(image_format="BGR", min_size=30, max_size=1000)
    out = mapper(gallery[0])
    assert out["image"].shape == (3, 30, 50) and out["image"].dtype == torch.uint8
    assert (out["height"], out["width"], out["image_id"]) == (60, 100, "s0.jpg")
    assert "query_boxes" not in out
    out = mapper(queries[0])  # a raw query record: its box, in original coordinates
    assert out["query_boxes"].tolist() == [[1.0, 2.0, 30.0, 70.0]]
    crop = {"file_name": gallery[1]["file_name"], "image_id": "c", "person_id": 1, "camera_id": 0}
    assert mapper(crop)["query_boxes"].tolist() == [[0.0, 0.0, 40.0, 80.0]]
    with pytest.raises(ValueError, match="the record says 81x40"):
        mapper(dict(gallery[1], height=81))

    cfg = add_hpps_config(get_cfg())
    cfg.INPUT.MIN_SIZE_TEST, cfg.DATALOADER.NUM_WORKERS = 30, 0
    qname = register("_eval_test_loader_query", queries)
    gname = register("_eval_test_loader_gallery", gallery)
    inputs = [x for batch in build_search_test_loader(cfg, qname, gname) for x in batch]
    assert [x["image_id"] for x in inputs] == ["s0.jpg", "s1.jpg"]
    assert inputs[1][QUERY_INDICES] == [0] and inputs[1][GALLERY_INDEX] == 1
    assert inputs[1]["query_boxes"].tolist() == [[1.0, 2.0, 30.0, 70.0]]
    crops = [dict(crop, image_id=f"c{i}") for i in range(2)]
    cq, cg = register("_eval_test_loader_cq", crops[:1]), register("_eval_test_loader_cg", crops)
    inputs = [x for batch in build_reid_test_loader(cfg, cq, cg) for x in batch]
    assert [(x["reid_role"], x["reid_index"]) for x in inputs] == [
        ("query", 0),
        ("gallery", 0),
        ("gallery", 1),
    ]
    assert all(x["query_boxes"].tolist() == [[0.0, 0.0, 40.0, 80.0]] for x in inputs)
