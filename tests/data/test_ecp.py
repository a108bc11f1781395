import json
import logging
import os

import pytest
from detectron2.structures import BoxMode

from hpps_d2.data.datasets import ecp
from hpps_d2.data.datasets.common import (
    UNLABELED,
    DatasetFormatError,
    DatasetNotFoundError,
    ImageReadError,
)
from hpps_d2.data.datasets.ecp import load_ecp
from tests.helpers import write_image


def _obj(identity, box, tags=(), children=()):
    x0, y0, x1, y1 = box
    return {
        "identity": identity,
        "x0": x0,
        "y0": y0,
        "x1": x1,
        "y1": y1,
        "tags": list(tags),
        "children": list(children),
        "orient": 10.0,
    }


def _frame(children, width=200, height=100):
    return {"identity": "frame", "imagewidth": width, "imageheight": height, "children": children}


def _write_frame(root, split, city, index, obj, image=True):
    stem = f"{city}_{index:05d}"
    label = root / "day" / "labels" / split / city / f"{stem}.json"
    label.parent.mkdir(parents=True, exist_ok=True)
    label.write_text(obj if isinstance(obj, str) else json.dumps(obj))
    if image:
        write_image(str(root / "day" / "img" / split / city / f"{stem}.png"), 10, 20)
    return label


@pytest.fixture
def ecp_root(tmp_path):
    root = tmp_path / "ECP"
    bicycle = _obj("bicycle", (50, 40, 70, 90))
    children = [
        _obj("pedestrian", (10, 20, 30.5, 80), ["occluded>10"]),  # 0: person
        _obj("pedestrian", (-5, 50, 15, 120), ["truncated>10"]),  # 1: clipped left and bottom
        _obj("pedestrian", (40, 10, 50, 60), ["sitting-lying"]),  # 2: ignore
        _obj("pedestrian", (60, 10, 70, 60), ["behind-glass"]),  # 3: ignore
        _obj("pedestrian", (80, 10, 90, 60), ["depiction"]),  # 4: ignore
        _obj("rider", (52, 30, 68, 70), [], [bicycle]),  # 5: ignore, own box; bicycle not read
        _obj("person-group-far-away", (100, 5, 150, 25)),  # 6: ignore
        _obj("person-group-far-away", (100, 30, 150, 50), ["depiction"]),  # discarded
        _obj("rider+vehicle-group-far-away", (160, 5, 190, 25)),  # 7: ignore
        bicycle,  # skipped: not a person
        _obj("scooter-group", (0, 0, 5, 5)),  # skipped: not a person
        _obj("hoverboard", (0, 0, 5, 5)),  # skipped, counted as unknown
        _obj("pedestrian", (95, 10, 95, 60)),  # zero width: dropped
        _obj("pedestrian", (300, 10, 320, 60)),  # outside the image: dropped
        _obj("pedestrian", (10, 20, 30.5, 80), ["occluded>10"]),  # duplicate of 0: dropped
    ]
    _write_frame(root, "train", "amsterdam", 12, _frame(children))
    # A second city, in the '@converter' wrapped form; its only box is an ignore region.
    wrapped = {
        "@converter": "x",
        "identity": "seqlist",
        "children": [{"children": [_frame([_obj("rider", (1, 2, 3, 4))], 300, 150)]}],
    }
    _write_frame(root, "train", "zagreb", 3, wrapped)
    _write_frame(root, "train", "berlin", 7, _frame([_obj("pedestrian", (0, 0, 10, 30))]))
    return root


def test_load_ecp(ecp_root, caplog):
    with caplog.at_level(logging.WARNING):
        recs = load_ecp(str(ecp_root), "train")
    assert [r["image_id"] for r in recs] == ["amsterdam_00012", "berlin_00007", "zagreb_00003"]
    r = recs[0]
    assert (r["height"], r["width"]) == (100, 200)  # from the JSON, not the file (10 x 20)
    assert r["file_name"] == os.path.join(
        str(ecp_root), "day", "img", "train", "amsterdam", "amsterdam_00012.png"
    )
    a = r["annotations"]
    assert [x["bbox"] for x in a] == [
        [10.0, 20.0, 30.5, 80.0],
        [0.0, 50.0, 15.0, 100.0],
        [40.0, 10.0, 50.0, 60.0],
        [60.0, 10.0, 70.0, 60.0],
        [80.0, 10.0, 90.0, 60.0],
        [52.0, 30.0, 68.0, 70.0],
        [100.0, 5.0, 150.0, 25.0],
        [160.0, 5.0, 190.0, 25.0],
    ]
    assert [x["iscrowd"] for x in a] == [0, 0, 1, 1, 1, 1, 1, 1]
    assert [x["identity"] for x in a] == ["pedestrian"] * 5 + [
        "rider",
        "person-group-far-away",
        "rider+vehicle-group-far-away",
    ]
    assert a[0]["tags"] == ["occluded>10"] and a[4]["tags"] == ["depiction"]
    assert all(x["person_id"] == UNLABELED for x in a)
    assert all(x["category_id"] == 0 and x["bbox_mode"] == BoxMode.XYXY_ABS for x in a)
    assert recs[1]["annotations"][0]["bbox"] == [0.0, 0.0, 10.0, 30.0]
    z = recs[2]
    assert (z["height"], z["width"]) == (150, 300)
    assert [(x["identity"], x["iscrowd"], x["bbox"]) for x in z["annotations"]] == [
        ("rider", 1, [1.0, 2.0, 3.0, 4.0])
    ]
    assert "dropped/repaired 6 items" in caplog.text
    assert "box clipped to the image: 1" in caplog.text
    assert "non-positive box size (dropped): 1" in caplog.text
    assert "box outside the image (dropped): 1" in caplog.text
    assert "duplicated object, same identity and box (dropped): 1" in caplog.text
    assert "unknown identity 'hoverboard' (skipped): 1" in caplog.text
    assert "image without any person box (kept, background only): 1" in caplog.text


def test_ecp_seqlist_wrapper(ecp_root):
    seqlist = {
        "identity": "seqlist",
        "children": {"children": _frame([_obj("pedestrian", (1, 2, 5, 9))])},
    }
    _write_frame(ecp_root, "val", "lyon", 1, seqlist)
    (r,) = load_ecp(str(ecp_root), "val")
    assert r["image_id"] == "lyon_00001"
    assert [(x["bbox"], x["iscrowd"]) for x in r["annotations"]] == [([1.0, 2.0, 5.0, 9.0], 0)]


def test_ecp_splits():
    names = [s.name for s in ecp.SPLITS]
    assert names == ["ecp_day_train", "ecp_day_val"]
    assert [s.evaluator_type for s in ecp.SPLITS] == [None, "detection"]
    assert all(s.subdir == "ECP" and s.domain == "ecp" and not s.labeled for s in ecp.SPLITS)


def test_ecp_missing_root(tmp_path):
    with pytest.raises(DatasetNotFoundError, match=r"ECP.*datasets/README.md.*EuroCity Persons"):
        load_ecp(str(tmp_path / "ECP"), "train")


def test_ecp_missing_image(ecp_root):
    _write_frame(ecp_root, "val", "lyon", 2, _frame([]), image=False)
    (ecp_root / "day" / "img" / "val" / "lyon").mkdir(parents=True)
    with pytest.raises(ImageReadError, match=r"not found: .*img/val/lyon/lyon_00002.png"):
        load_ecp(str(ecp_root), "val")


def test_ecp_malformed_json(ecp_root):
    _write_frame(ecp_root, "val", "lyon", 3, '{"identity": "frame",\n "children": [')
    with pytest.raises(DatasetFormatError, match=r"lyon_00003.json:2: not a JSON file"):
        load_ecp(str(ecp_root), "val")


@pytest.mark.parametrize(
    "frame, message",
    [
        ({"identity": "sequence", "children": []}, r"identity 'frame', got 'sequence'"),
        (_frame([], width=0), r"field 'imagewidth' must be a positive integer, got 0"),
        ({"@converter": "x", "children": []}, r"wrapped ECP label file"),
        (
            _frame([{"identity": "pedestrian", "x0": 1, "y0": 2, "x1": "3", "y1": 4}]),
            r"children\[0\]: field 'x1' must be a number, got '3'",
        ),
        (_frame([{"x0": 1}]), r"children\[0\]: missing string field 'identity'"),
        (
            _frame([dict(_obj("rider", (1, 2, 3, 4)), tags="occluded>10")]),
            r"children\[0\]: field 'tags' must be a list of strings",
        ),
    ],
)
def test_ecp_bad_fields(ecp_root, frame, message):
    _write_frame(ecp_root, "val", "lyon", 4, frame)
    with pytest.raises(DatasetFormatError, match=r"lyon_00004.json.*" + message):
        load_ecp(str(ecp_root), "val")


def test_ecp_empty_split(ecp_root):
    (ecp_root / "day" / "labels" / "val").mkdir(parents=True)
    (ecp_root / "day" / "img" / "val").mkdir(parents=True)
    with pytest.raises(DatasetNotFoundError, match=r"no .json label file under .*labels/val"):
        load_ecp(str(ecp_root), "val")


# --- hardening: non-finite / boolean coordinates -----------------------------------------------


@pytest.mark.parametrize(
    "text, message",
    [
        ('"x0": NaN', r"field 'x0' is NaN"),
        ('"y1": Infinity', r"field 'y1' is infinite"),
        ('"x1": -Infinity', r"field 'x1' is infinite"),
        ('"y0": true', r"field 'y0' is boolean"),
    ],
)
def test_ecp_non_finite_or_boolean_coordinate(ecp_root, text, message):
    box = {"x0": 1, "y0": 2, "x1": 30, "y1": 40}
    key = text.split(":")[0].strip('"')
    del box[key]
    fields = ", ".join(f'"{k}": {v}' for k, v in box.items())
    raw = ('{"identity": "frame", "imagewidth": 200, "imageheight": 100, "children": [\n'
           '{"identity": "pedestrian", "tags": [], %s, %s}]}' % (fields, text))
    _write_frame(ecp_root, "val", "lyon", 5, raw)
    with pytest.raises(DatasetFormatError, match=r"lyon_00005.json children\[0\]: " + message):
        load_ecp(str(ecp_root), "val")


@pytest.mark.parametrize("value, what", [("NaN", "NaN"), ("Infinity", "infinite"), ("true", "boolean")])
def test_ecp_non_finite_image_size(ecp_root, value, what):
    raw = '{"identity": "frame", "imagewidth": %s, "imageheight": 100, "children": []}' % value
    _write_frame(ecp_root, "val", "lyon", 6, raw)
    message = r"lyon_00006.json: field 'imagewidth' must be a positive integer, got .* \("
    with pytest.raises(DatasetFormatError, match=message + what):
        load_ecp(str(ecp_root), "val")
