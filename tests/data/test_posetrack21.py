import json
import logging
import os

import pytest
from detectron2.structures import BoxMode

from hpps_d2.data.datasets.common import (
    UNLABELED,
    DatasetFormatError,
    DatasetNotFoundError,
    ImageReadError,
)
from hpps_d2.data.datasets.posetrack21 import SPLITS, load_posetrack21
from tests.helpers import write_image

TRAIN_0 = "images/train/000001_bonn_train/000000.jpg"
TRAIN_1 = "images/train/000001_bonn_train/000001.jpg"
VAL_0 = "images/val/000002_mpii_test/000000.jpg"
VAL_1 = "images/val/000002_mpii_test/000001.jpg"


def _ann(ann_id, image_id, bbox, person_id):
    return {
        "id": ann_id,
        "image_id": image_id,
        "bbox": bbox,
        "person_id": person_id,
        "track_id": 0,
        "category_id": 1,
    }


TRAIN = {
    "images": [
        {
            "id": 10000010000,
            "file_name": TRAIN_0,
            "frame_id": 10000010000,
            "ignore_regions_x": [[1, 10, 10], [5, 6]],  # the second has too few points
            "ignore_regions_y": [[1, 1, 10], [5, 6]],
        },
        {"id": 10000010001, "file_name": TRAIN_1},  # no person
    ],
    "annotations": [
        _ann(1, 10000010000, [10, 10, 20, 40], 7529),
        _ann(2, 10000010000, [-5, 0, 20, 30], 11),  # clipped to the image
        _ann(3, 10000010000, [50, 10, 10, 20], 7529),  # 7529 a second time in this image
        _ann(4, 10000010000, [70, 10, 0, 20], 300),  # zero width
        _ann(5, 10000010000, [200, 10, 10, 20], 300),  # outside the 100-pixel-wide image
    ],
}
VAL = {
    "images": [
        {
            "id": 20000010000,
            "file_name": VAL_0,
            "ignore_regions_x": [[0, 5, 5, 0]],
            "ignore_regions_y": [[0, 0, 5.5, 5.5]],
        },
        {"id": 20000010001, "file_name": VAL_1, "ignore_regions_x": [], "ignore_regions_y": []},
    ],
    "annotations": [
        _ann(10, 20000010000, [1, 1, 10, 20], 0),
        _ann(11, 20000010000, [20, 5, 10, 20], 1655),
        _ann(12, 20000010000, [40, 5, 10, 20], 0),  # 0 twice: both kept in the gallery
        _ann(13, 20000010001, [70, 40, 20, 20], 3),  # clipped to the 80 x 50 image
    ],
}
QUERY = {
    "images": [{"id": 99, "file_name": VAL_1}],  # an id of its own: found by file_name
    "annotations": [
        _ann(500, 20000010000, [20, 5, 10, 20], 1655),  # no image entry here: found by id
        _ann(501, 99, [70, 40, 20, 20], 3),
        _ann(502, 20000010000, [1, 1, 0, 20], 0),  # zero width: the query is dropped
    ],
}


def _write_json(root, name, data):
    with open(root / "posetrack_person_search" / name, "w") as f:
        json.dump(data, f)


@pytest.fixture
def pt21(tmp_path):
    root = tmp_path / "PoseTrack21"
    os.makedirs(root / "posetrack_person_search")
    write_image(str(root / TRAIN_0), 60, 100, seed=0)
    write_image(str(root / TRAIN_1), 60, 100, seed=1)
    write_image(str(root / VAL_0), 50, 80, seed=2)
    write_image(str(root / VAL_1), 50, 80, seed=3)
    _write_json(root, "train.json", TRAIN)
    _write_json(root, "val.json", VAL)
    _write_json(root, "query.json", QUERY)
    return root


def _boxes_pids(record):
    return [(a["bbox"], a["person_id"]) for a in record["annotations"]]


def test_posetrack21_train(pt21, caplog):
    with caplog.at_level(logging.WARNING):
        recs = load_posetrack21(str(pt21), "train")
    assert [r["image_id"] for r in recs] == [TRAIN_0, TRAIN_1]
    r = recs[0]
    assert r["file_name"] == os.path.join(str(pt21), TRAIN_0)
    assert (r["height"], r["width"]) == (60, 100)
    assert r["annotations"][0]["bbox_mode"] == BoxMode.XYXY_ABS
    # kept raw ids {11, 7529} -> 0, 1 (300 only had dropped boxes)
    assert _boxes_pids(r) == [
        ([10.0, 10.0, 30.0, 50.0], 1),
        ([0.0, 0.0, 15.0, 30.0], 0),
        ([50.0, 10.0, 60.0, 30.0], UNLABELED),
    ]
    assert r["ignore_regions"] == [[[1.0, 1.0], [10.0, 1.0], [10.0, 10.0]]]
    assert recs[1]["annotations"] == [] and recs[1]["ignore_regions"] == []
    assert "PoseTrack21 train (" in caplog.text
    assert "): dropped/repaired 6 items" in caplog.text
    for reason in (
        "box clipped to the image: 1",
        "non-positive box size (dropped): 1",
        "box outside the image (dropped): 1",
        "person labeled twice in one image (later set unlabeled): 1",
        "ignore polygon with fewer than 3 points (dropped): 1",
        "image without any person box (kept, background only): 1",
    ):
        assert reason in caplog.text


def test_posetrack21_gallery(pt21, caplog):
    with caplog.at_level(logging.WARNING):
        recs = load_posetrack21(str(pt21), "gallery")
    assert [r["image_id"] for r in recs] == [VAL_0, VAL_1]
    assert _boxes_pids(recs[0]) == [
        ([1.0, 1.0, 11.0, 21.0], 0),
        ([20.0, 5.0, 30.0, 25.0], 1655),
        ([40.0, 5.0, 50.0, 25.0], 0),
    ]
    assert _boxes_pids(recs[1]) == [([70.0, 40.0, 80.0, 50.0], 3)]
    assert recs[0]["ignore_regions"] == [[[0.0, 0.0], [5.0, 0.0], [5.0, 5.5], [0.0, 5.5]]]
    assert recs[1]["ignore_regions"] == []
    assert "PoseTrack21 gallery (" in caplog.text
    assert "): dropped/repaired 2 items" in caplog.text
    assert "person labeled twice in one image (both kept): 1" in caplog.text
    assert "box clipped to the image: 1" in caplog.text


def test_posetrack21_query(pt21, caplog):
    with caplog.at_level(logging.WARNING):
        recs = load_posetrack21(str(pt21), "query")
    assert len(recs) == 2
    q0, q1 = recs
    assert q0["file_name"] == os.path.join(str(pt21), VAL_0)
    assert (q0["image_id"], q0["height"], q0["width"]) == (VAL_0, 50, 80)
    assert q0["query"] == {"bbox": [20.0, 5.0, 30.0, 25.0], "person_id": 1655}
    assert q0["query_id"] == 500
    assert (q1["image_id"], q1["query_id"]) == (VAL_1, 501)  # its image matched by file_name
    assert q1["query"] == {"bbox": [70.0, 40.0, 80.0, 50.0], "person_id": 3}
    assert "PoseTrack21 query (" in caplog.text
    assert "): dropped/repaired 2 items" in caplog.text
    assert "non-positive box size (dropped): 1 (e.g." in caplog.text
    assert "query.json annotations[2]" in caplog.text


def test_posetrack21_splits():
    by_name = {s.name: s for s in SPLITS}
    assert list(by_name) == ["posetrack21_train", "posetrack21_gallery", "posetrack21_query"]
    assert by_name["posetrack21_query"].links == {"gallery": "posetrack21_gallery"}
    assert by_name["posetrack21_gallery"].links == {"query": "posetrack21_query"}
    assert by_name["posetrack21_gallery"].evaluator_type == "person_search"
    assert all(s.subdir == "PoseTrack21" and s.domain == "posetrack21" for s in SPLITS)
    assert by_name["posetrack21_train"].published == {"images": 42861, "identities": 5474}


def test_posetrack21_missing_root(tmp_path):
    with pytest.raises(
        DatasetNotFoundError, match=r"PoseTrack21.*datasets/README.md.*'PoseTrack21'"
    ):
        load_posetrack21(str(tmp_path / "PoseTrack21"), "gallery")


def test_posetrack21_missing_file(pt21):
    os.remove(pt21 / "posetrack_person_search" / "val.json")
    with pytest.raises(DatasetNotFoundError, match=r"posetrack_person_search/val.json"):
        load_posetrack21(str(pt21), "query")


def test_posetrack21_invalid_json(pt21):
    (pt21 / "posetrack_person_search" / "train.json").write_text('{"images": [\n{"id": 1,')
    with pytest.raises(DatasetFormatError, match=r"train.json: not valid JSON .* line 2"):
        load_posetrack21(str(pt21), "train")
    _write_json(pt21, "train.json", {"images": []})
    with pytest.raises(DatasetFormatError, match=r"train.json: expected a JSON object with lists"):
        load_posetrack21(str(pt21), "train")


def test_posetrack21_malformed_fields(pt21):
    bad = dict(QUERY, annotations=QUERY["annotations"][:1] + [_ann(501, 99, [70, 40, 20], 3)])
    _write_json(pt21, "query.json", bad)
    with pytest.raises(
        DatasetFormatError, match=r"query.json annotations\[1\].bbox: expected \[x, y, w, h\]"
    ):
        load_posetrack21(str(pt21), "query")
    bad = dict(VAL, annotations=[_ann(10, 20000010000, [1, 1, 10, 20], "p0")])
    _write_json(pt21, "val.json", bad)
    with pytest.raises(
        DatasetFormatError, match=r"val.json annotations\[0\].person_id: expected an integer"
    ):
        load_posetrack21(str(pt21), "gallery")
    images = [dict(VAL["images"][0], ignore_regions_y=[[0, 0, 5]]), VAL["images"][1]]
    _write_json(pt21, "val.json", dict(VAL, images=images))
    with pytest.raises(DatasetFormatError, match=r"val.json images\[0\].ignore_regions_x\[0\]"):
        load_posetrack21(str(pt21), "gallery")
    images = [VAL["images"][0], dict(VAL["images"][1], file_name=VAL_0)]
    _write_json(pt21, "val.json", dict(VAL, images=images))
    with pytest.raises(DatasetFormatError, match=r"val.json images\[1\].file_name: .* twice"):
        load_posetrack21(str(pt21), "gallery")
    _write_json(pt21, "val.json", dict(VAL, images=[{"id": 1}]))
    with pytest.raises(DatasetFormatError, match=r"val.json images\[0\].file_name: expected"):
        load_posetrack21(str(pt21), "gallery")


def test_posetrack21_unknown_image_id(pt21):
    bad = dict(TRAIN, annotations=TRAIN["annotations"] + [_ann(6, 123, [1, 1, 5, 5], 11)])
    _write_json(pt21, "train.json", bad)
    with pytest.raises(
        DatasetFormatError, match=r"train.json annotations\[5\].image_id: unknown image id 123"
    ):
        load_posetrack21(str(pt21), "train")


def test_posetrack21_query_image_not_in_gallery(pt21):
    bad = dict(QUERY, annotations=[_ann(500, 777, [20, 5, 10, 20], 1655)])
    _write_json(pt21, "query.json", bad)
    with pytest.raises(
        DatasetFormatError, match=r"query.json annotations\[0\]: the image of query 0 .* not a"
    ):
        load_posetrack21(str(pt21), "query")


def test_posetrack21_missing_and_corrupt_image(pt21):
    os.remove(pt21 / TRAIN_1)
    with pytest.raises(ImageReadError, match=r"not found: .*000001_bonn_train/000001.jpg"):
        load_posetrack21(str(pt21), "train")
    (pt21 / VAL_0).write_bytes(b"not a jpeg")
    with pytest.raises(ImageReadError, match=r"000002_mpii_test/000000.jpg"):
        load_posetrack21(str(pt21), "query")


# --- hardening: non-finite / boolean coordinates -----------------------------------------------


@pytest.mark.parametrize(
    "bbox, message",
    [
        ("[NaN, 1, 10, 20]", r"bbox\[0\] is NaN"),
        ("[1, 1, Infinity, 20]", r"bbox\[2\] is infinite"),
        ("[1, 1, 10, -Infinity]", r"bbox\[3\] is infinite"),
        ("[1, false, 10, 20]", r"bbox\[1\] is boolean"),
    ],
)
def test_posetrack21_non_finite_or_boolean_bbox(pt21, bbox, message):
    data = dict(VAL, annotations=[_ann(10, 20000010000, "BBOX", 0)])
    text = json.dumps(data).replace('"BBOX"', bbox)
    (pt21 / "posetrack_person_search" / "val.json").write_text(text)
    with pytest.raises(DatasetFormatError, match=r"val.json annotations\[0\]\." + message):
        load_posetrack21(str(pt21), "gallery")


@pytest.mark.parametrize("value, what", [("NaN", "NaN"), ("Infinity", "infinite"), ("true", "boolean")])
def test_posetrack21_non_finite_ignore_region(pt21, value, what):
    images = [dict(VAL["images"][0], ignore_regions_y=[[0, 0, "V", 5.5]]), VAL["images"][1]]
    text = json.dumps(dict(VAL, images=images)).replace('"V"', value)
    (pt21 / "posetrack_person_search" / "val.json").write_text(text)
    with pytest.raises(
        DatasetFormatError, match=r"val.json images\[0\]\.ignore_regions_y\[0\]\[2\] is " + what
    ):
        load_posetrack21(str(pt21), "gallery")
