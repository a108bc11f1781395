import numpy as np
import pytest
import torch
from detectron2.config import get_cfg
from detectron2.structures import BoxMode

from hpps_d2.config import add_hpps_config
from hpps_d2.data.hybrid_mapper import HybridDatasetMapper
from tests.helpers import write_image


def _cfg(**views):
    cfg = add_hpps_config(get_cfg())
    cfg.INPUT.MIN_SIZE_TRAIN = (100,)
    cfg.INPUT.MAX_SIZE_TRAIN = 1000
    for k, v in views.items():
        setattr(cfg.HPPS.VIEWS, k, v)
    return cfg


def _record(path, annos, **extra):
    r = {
        "file_name": path,
        "image_id": "x",
        "height": 100,
        "width": 200,
        "source": "det",
        "task": "detection",
        "domain": 1,
        "losses": ("det", "oim", "ssl"),
        "annotations": [
            {"bbox": b, "bbox_mode": BoxMode.XYXY_ABS, "person_id": pid, "iscrowd": c} for b, pid, c in annos
        ],
    }
    r.update(extra)
    return r


@pytest.fixture
def scene(tmp_path):
    return write_image(str(tmp_path / "scene.png"), 100, 200)


def test_two_views_share_identities_and_flip_boxes(scene):
    cfg = _cfg(CROP_PROB=0.0, HFLIP_PROB=1.0, COLOR_JITTER_PROB=0.0, GRAYSCALE_PROB=0.0, BLUR_PROB=0.0)
    mapper = HybridDatasetMapper(cfg)
    rec = _record(scene, [([10, 20, 50, 90], 7, 0), ([100, 0, 150, 60], 8, 0), ([0, 0, 30, 30], -1, 1)])
    out = mapper(rec)
    assert (out["source"], out["task"], out["domain"], out["losses"]) == ("det", "detection", 1, ("det", "oim", "ssl"))
    assert len(out["views"]) == 2
    for v in out["views"]:
        assert v["image"].shape == (3, 100, 200) and v["image"].dtype == torch.uint8
        inst = v["instances"]
        assert inst.gt_pids.tolist() == [7, 8]
        assert inst.gt_classes.tolist() == [0, 0]
        # horizontal flip of a 200-wide image: x -> 200 - x
        assert inst.gt_boxes.tensor.tolist() == [[150, 20, 190, 90], [50, 0, 100, 60]]
        assert v["ignore_boxes"].tensor.tolist() == [[170, 0, 200, 30]]
    # pixels are flipped as well
    img = out["views"][0]["image"].permute(1, 2, 0).numpy()
    from hpps_d2.data.image_io import read_image

    np.testing.assert_array_equal(img, read_image(rec, "BGR")[:, ::-1])


def test_views_differ_and_resize(scene):
    cfg = _cfg(CROP_PROB=0.0, HFLIP_PROB=0.0)
    cfg.INPUT.MIN_SIZE_TRAIN = (50,)
    np.random.seed(0)
    out = HybridDatasetMapper(cfg)(_record(scene, [([10, 20, 50, 90], 3, 0)]))
    a, b = (v["image"] for v in out["views"])
    assert a.shape == b.shape == (3, 50, 100)
    assert not torch.equal(a, b)  # independent photometric augmentation
    for v in out["views"]:
        assert v["instances"].gt_boxes.tensor.tolist() == [[5, 10, 25, 45]]


def test_person_cut_by_the_crop_becomes_ignore(scene):
    cfg = _cfg(CROP_PROB=1.0, CROP_MIN_SIZE=(0.5, 0.5), HFLIP_PROB=0.0, COLOR_JITTER_PROB=0.0, GRAYSCALE_PROB=0.0, BLUR_PROB=0.0)
    cfg.INPUT.MIN_SIZE_TRAIN = (50,)
    rec = _record(scene, [([0, 0, 200, 100], 1, 0)])  # a person covering the whole image
    np.random.seed(5)
    # each side keeps 50-100%, so 25-100% of the person stays visible
    cfg.HPPS.VIEWS.MIN_VISIBLE = 0.2
    for _ in range(5):
        for v in HybridDatasetMapper(cfg)(rec)["views"]:
            assert v["instances"].gt_pids.tolist() == [1] and len(v["ignore_boxes"]) == 0
            h, w = v["image"].shape[1:]
            assert v["instances"].gt_boxes.tensor.tolist() == [[0, 0, w, h]]
    cfg.HPPS.VIEWS.MIN_VISIBLE = 0.999
    for _ in range(5):
        for v in HybridDatasetMapper(cfg)(rec)["views"]:
            h, w = v["image"].shape[1:]
            assert len(v["instances"]) == 0
            assert v["ignore_boxes"].tensor.tolist() == [[0, 0, w, h]]


def test_reid_crop_goes_on_a_canvas(tmp_path):
    crop = write_image(str(tmp_path / "crop.jpg"), 64, 32)
    cfg = _cfg(CROP_PROB=0.0, HFLIP_PROB=0.0)
    cfg.HPPS.UNIFY.CANVAS_SIZE = (120, 160)
    cfg.HPPS.UNIFY.EXPAND_RATIO = (1.5, 4.0)
    cfg.INPUT.MIN_SIZE_TRAIN = (120,)
    rec = {"file_name": crop, "image_id": "c", "person_id": 42, "crop": True, "source": "reid", "task": "reid", "domain": 0, "losses": ("det", "oim")}
    np.random.seed(0)
    out = HybridDatasetMapper(cfg)(rec)
    boxes = [v["instances"].gt_boxes.tensor for v in out["views"]]
    # both views share the canvas (no geometric augmentation here): same box
    assert torch.equal(boxes[0], boxes[1])
    for v in out["views"]:
        assert v["image"].shape == (3, 120, 160)
        assert v["instances"].gt_pids.tolist() == [42]
        h = float(boxes[0][0, 3] - boxes[0][0, 1])
        assert 120 / 4.0 - 1 <= h <= 120 / 1.5 + 1


def _crop_record(path, pid=42):
    return {"file_name": path, "image_id": "c", "person_id": pid, "crop": True, "source": "reid",
            "task": "reid", "domain": 0, "losses": ("det", "oim")}


def test_canvas_views_are_not_resized_again_and_keep_the_person(tmp_path):
    """A 120x160 canvas with a 300 px training input: the views stay at canvas scale (no resize
    to 300), and a crop of 50-100% per side never cuts the person (the canvas's box, whole)."""
    crop = write_image(str(tmp_path / "crop.png"), 64, 32)
    cfg = _cfg(CROP_PROB=1.0, CROP_MIN_SIZE=(0.5, 0.5), HFLIP_PROB=0.0, COLOR_JITTER_PROB=0.0,
               GRAYSCALE_PROB=0.0, BLUR_PROB=0.0)
    cfg.HPPS.UNIFY.CANVAS_SIZE = (120, 160)
    cfg.HPPS.UNIFY.EXPAND_RATIO = (1.5, 1.5)  # person 80 px tall, 40 px wide on the canvas
    cfg.INPUT.MIN_SIZE_TRAIN = (300,)
    mapper = HybridDatasetMapper(cfg)
    np.random.seed(3)
    sizes = set()
    for _ in range(20):
        for v in mapper(_crop_record(crop))["views"]:
            h, w = v["image"].shape[1:]
            sizes.add((h, w))
            assert 80 <= h <= 120 and 60 <= w <= 160  # crop window, grown to the 80x40 person
            assert v["instances"].gt_pids.tolist() == [42] and len(v["ignore_boxes"]) == 0
            x1, y1, x2, y2 = v["instances"].gt_boxes.tensor[0].tolist()
            assert (y2 - y1, x2 - x1) == (80, 40)  # whole, not rescaled
            assert 0 <= x1 and x2 <= w and 0 <= y1 and y2 <= h
    assert len(sizes) > 5  # the crop really varies


def test_size_mismatch_is_reported(scene):
    rec = _record(scene, [])
    rec["height"] = 99
    with pytest.raises(ValueError, match=r"scene.png: image is 100x200 but its annotation says 99x200"):
        HybridDatasetMapper(_cfg())(rec)
