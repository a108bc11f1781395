"""
Person scale of re-ID canvases AT THE MODEL INPUT, measured as a distribution through the shipped
pre-training configs (canvas operation + both views' augmentation, no model).

The documented range (hpps_d2/config/defaults.py, HPPS.UNIFY): expand_resize persons span
120-320 px at the 900 px input of configs/pretrain.yaml, i.e. 120/900 .. 320/900 of the input's
shorter side for any INPUT.MIN_SIZE_TRAIN; random_paste persons keep the crop's own height. No
view may lose the only person of a canvas. The expected values below are written out by hand from
those statements, not computed by the code under test.
"""
import os

import numpy as np
import pytest
from detectron2.config import get_cfg

from hpps_d2.config import add_hpps_config
from hpps_d2.data.hybrid_mapper import HybridDatasetMapper
from tests.helpers import write_image

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
N_RECORDS = 300
#: Re-ID crops of realistic size (height, width): 128x64 and 256x128, plus a few in between.
CROP_SIZES = [(128, 64), (256, 128), (160, 64), (200, 90), (144, 56), (240, 100)]


def _cfg(config, canvas):
    cfg = add_hpps_config(get_cfg())
    cfg.merge_from_file(os.path.join(REPO, "configs", config))
    cfg.DATASETS.TRAIN = ()
    cfg.HPPS.UNIFY.REID_CANVAS = canvas
    # Photometric view augmentations do not move boxes; off to keep the test fast. Every geometric
    # setting (crop, resize, flip) is the shipped one.
    cfg.HPPS.VIEWS.COLOR_JITTER_PROB = 0.0
    cfg.HPPS.VIEWS.GRAYSCALE_PROB = 0.0
    cfg.HPPS.VIEWS.BLUR_PROB = 0.0
    return cfg


@pytest.fixture(scope="module")
def crops(tmp_path_factory):
    d = tmp_path_factory.mktemp("crops")
    return [
        (write_image(str(d / f"c{i}.png"), h, w, seed=i), h) for i, (h, w) in enumerate(CROP_SIZES)
    ]


def _measure(cfg, crops):
    """Person heights of every view at the model input, and the number of views that lost it."""
    mapper = HybridDatasetMapper(cfg)
    np.random.seed(0)
    rng = np.random.default_rng(0)
    heights, crop_heights, lost, short_sides = [], [], 0, []
    for i in range(N_RECORDS):
        path, ch = crops[rng.integers(len(crops))]
        rec = {"file_name": path, "image_id": str(i), "person_id": 7, "crop": True, "source": "r",
               "task": "reid", "domain": 0, "losses": ("det", "oim", "ssl")}
        for v in mapper(rec)["views"]:
            inst = v["instances"]
            if inst.gt_pids.tolist() != [7]:
                lost += 1
                continue
            b = inst.gt_boxes.tensor[0]
            heights.append(float(b[3] - b[1]))
            crop_heights.append(ch)
            short_sides.append(min(v["height"], v["width"]))
    return np.array(heights), np.array(crop_heights), lost, np.array(short_sides)


def test_expand_resize_persons_span_the_documented_range_at_the_input(crops):
    h, _, lost, _ = _measure(_cfg("pretrain.yaml", "expand_resize"), crops)
    stats = (h.min(), np.median(h), h.max())
    assert lost == 0, f"{lost} of {2 * N_RECORDS} views lost the person; min/median/max {stats}"
    assert 120 - 1 <= h.min() and h.max() <= 320 + 1, f"min/median/max {stats}, documented 120-320"
    assert h.max() - h.min() > 150, f"the scale must vary over the range: {stats}"


def test_random_paste_persons_keep_the_crop_height_at_the_input(crops):
    h, ch, lost, _ = _measure(_cfg("pretrain.yaml", "random_paste"), crops)
    assert lost == 0, f"{lost} of {2 * N_RECORDS} views lost the person"
    np.testing.assert_array_equal(h, ch, err_msg="random_paste: height at the input != crop height")


def test_expand_resize_range_scales_with_a_small_input(crops):
    """configs/synth/pretrain_r18.yaml, 256 px input: 120/900*256 .. 320/900*256 = 34.1 .. 91.0."""
    h, _, lost, _ = _measure(_cfg("synth/pretrain_r18.yaml", "expand_resize"), crops)
    stats = (h.min(), np.median(h), h.max())
    assert lost == 0, f"{lost} views lost the person"
    assert 34.1 - 1 <= h.min() and h.max() <= 91.0 + 1, f"min/median/max {stats}, documented 34-91"
