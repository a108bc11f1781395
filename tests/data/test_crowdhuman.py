import json
import logging
import os

import pytest
from detectron2.structures import BoxMode

from hpps_d2.data.datasets.common import UNLABELED, DatasetFormatError, DatasetNotFoundError, ImageReadError
from hpps_d2.data.datasets.crowdhuman import load_crowdhuman
from tests.helpers import write_image


def _write_odgt(path, objs, raw_lines=()):
    with open(path, "w", encoding="utf-8") as f:
        for o in objs:
            f.write(json.dumps(o) + "\n")
        for line in raw_lines:
            f.write(line + "\n")


@pytest.fixture
def crowdhuman(tmp_path):
    root = tmp_path / "CrowdHuman"
    write_image(str(root / "Images" / "273271,c9db000d5146c15.jpg"), 100, 200)
    write_image(str(root / "Images" / "284193,faa9000f2678b5e.jpg"), 80, 60)
    objs = [
        {
            "ID": "273271,c9db000d5146c15",  # IDs can contain a comma
            "gtboxes": [
                {"tag": "person", "fbox": [10, 20, 30, 60], "vbox": [12, 22, 20, 40], "hbox": [15, 20, 8, 8],
                 "extra": {"box_id": 0, "occ": 0}, "head_attr": {"ignore": 0}},
                {"tag": "person", "fbox": [-5, 50, 40, 70], "extra": {}},  # leaves the image: clipped
                {"tag": "mask", "fbox": [100, 10, 50, 50], "extra": {"ignore": 1}},  # ignore region
                {"tag": "person", "fbox": [60, 10, 20, 40], "extra": {"ignore": 1}},  # ignored person
                {"tag": "person", "fbox": [70, 10, 0, 40]},  # zero width: dropped
                {"tag": "person", "fbox": [300, 10, 20, 40]},  # fully outside: dropped
            ],
        },
        {"ID": "284193,faa9000f2678b5e", "gtboxes": [{"tag": "person", "fbox": [1, 2, 3, 4]}]},
    ]
    _write_odgt(str(root / "annotation_train.odgt"), objs)
    return root


def test_load_crowdhuman(crowdhuman, caplog):
    with caplog.at_level(logging.WARNING):
        recs = load_crowdhuman(str(crowdhuman), "train")
    assert [r["image_id"] for r in recs] == ["273271,c9db000d5146c15", "284193,faa9000f2678b5e"]
    r = recs[0]
    assert (r["height"], r["width"]) == (100, 200)
    assert r["file_name"].endswith(os.path.join("Images", "273271,c9db000d5146c15.jpg"))
    a = r["annotations"]
    assert len(a) == 4
    assert a[0]["bbox"] == [10.0, 20.0, 40.0, 80.0] and a[0]["bbox_mode"] == BoxMode.XYXY_ABS
    assert a[0]["vbox"] == [12.0, 22.0, 32.0, 62.0] and a[0]["hbox"] == [15.0, 20.0, 23.0, 28.0]
    assert a[0]["person_id"] == UNLABELED and a[0]["iscrowd"] == 0
    assert a[1]["bbox"] == [0.0, 50.0, 35.0, 100.0]  # clipped left and bottom
    assert [x["iscrowd"] for x in a] == [0, 0, 1, 1]
    assert a[2]["bbox"] == [100.0, 10.0, 150.0, 60.0]
    assert "dropped/repaired 3 items" in caplog.text
    assert "box clipped to the image: 1" in caplog.text
    assert "non-positive box size (dropped): 1" in caplog.text
    assert "box outside the image (dropped): 1" in caplog.text


def test_crowdhuman_missing_root(tmp_path):
    with pytest.raises(DatasetNotFoundError, match=r"annotation_train.odgt.*datasets/README.md.*CrowdHuman"):
        load_crowdhuman(str(tmp_path / "CrowdHuman"), "train")


def test_crowdhuman_malformed_line(crowdhuman):
    _write_odgt(str(crowdhuman / "annotation_val.odgt"), [], raw_lines=['{"ID": "x", "gtboxes": [', ""])
    with pytest.raises(DatasetFormatError, match=r"annotation_val.odgt:1: not a JSON object"):
        load_crowdhuman(str(crowdhuman), "val")


def test_crowdhuman_bad_box_field(crowdhuman):
    objs = [{"ID": "284193,faa9000f2678b5e", "gtboxes": [{"tag": "person", "fbox": [1, 2, 3]}]}]
    _write_odgt(str(crowdhuman / "annotation_val.odgt"), objs)
    with pytest.raises(DatasetFormatError, match=r"annotation_val.odgt:1 gtboxes\[0\]: field 'fbox'"):
        load_crowdhuman(str(crowdhuman), "val")


def test_crowdhuman_missing_and_corrupt_image(crowdhuman):
    _write_odgt(str(crowdhuman / "annotation_val.odgt"), [{"ID": "nope", "gtboxes": []}])
    with pytest.raises(ImageReadError, match=r"not found: .*Images/nope.jpg"):
        load_crowdhuman(str(crowdhuman), "val")
    (crowdhuman / "Images" / "bad.jpg").write_bytes(b"not a jpeg")
    _write_odgt(str(crowdhuman / "annotation_val.odgt"), [{"ID": "bad", "gtboxes": []}])
    with pytest.raises(ImageReadError, match=r"bad.jpg"):
        load_crowdhuman(str(crowdhuman), "val")


# --- hardening: non-finite / boolean coordinates, field types, encoding -------------------------

_IMG = "284193,faa9000f2678b5e"


def _odgt_raw(root, text_lines, name="annotation_val.odgt"):
    # raw lines: json.dumps would refuse nothing here, but NaN / Infinity are written literally,
    # as Python's json.dumps does and as a broken converter would.
    (root / name).write_text("".join(line + "\n" for line in text_lines), encoding="utf-8")


@pytest.mark.parametrize(
    "fbox, what",
    [
        ("[NaN, 2, 3, 4]", r"'fbox\[0\]' is NaN"),
        ("[1, 2, Infinity, 4]", r"'fbox\[2\]' is infinite"),
        ("[1, 2, 3, -Infinity]", r"'fbox\[3\]' is infinite"),
        ("[1, true, 3, 4]", r"'fbox\[1\]' is boolean"),
    ],
)
def test_crowdhuman_non_finite_or_boolean_coordinate(crowdhuman, fbox, what):
    _odgt_raw(crowdhuman, ['{"ID": "%s", "gtboxes": [{"tag": "person", "fbox": %s}]}' % (_IMG, fbox)])
    with pytest.raises(DatasetFormatError, match=r"annotation_val.odgt:1 gtboxes\[0\]: field " + what):
        load_crowdhuman(str(crowdhuman), "val")


def test_crowdhuman_non_finite_vbox(crowdhuman):
    _odgt_raw(crowdhuman, ['{"ID": "%s", "gtboxes": [{"tag": "person", "fbox": [1, 2, 3, 4], '
                           '"vbox": [1, NaN, 3, 4]}]}' % _IMG])
    with pytest.raises(DatasetFormatError, match=r"odgt:1 gtboxes\[0\]: field 'vbox\[1\]' is NaN"):
        load_crowdhuman(str(crowdhuman), "val")


@pytest.mark.parametrize(
    "extra, message",
    [
        ('"x"', r"field 'extra' must be an object .*got 'x'"),
        ("[1]", r"field 'extra' must be an object .*got \[1\]"),
        ('{"ignore": "yes"}', r"field 'extra.ignore' must be 0 or 1, got 'yes'"),
        ('{"ignore": 2}', r"field 'extra.ignore' must be 0 or 1, got 2"),
        ('{"ignore": true}', r"field 'extra.ignore' must be 0 or 1, got True"),
    ],
)
def test_crowdhuman_bad_extra(crowdhuman, extra, message):
    _odgt_raw(crowdhuman, ['{"ID": "%s", "gtboxes": [{"tag": "person", "fbox": [1, 2, 3, 4], '
                           '"extra": %s}]}' % (_IMG, extra)])
    with pytest.raises(DatasetFormatError, match=r"annotation_val.odgt:1 gtboxes\[0\]: " + message):
        load_crowdhuman(str(crowdhuman), "val")


@pytest.mark.parametrize("gtboxes", ['"x"', "{}", "3"])
def test_crowdhuman_gtboxes_not_a_list(crowdhuman, gtboxes):
    _odgt_raw(crowdhuman, ['{"ID": "%s", "gtboxes": %s}' % (_IMG, gtboxes)])
    with pytest.raises(DatasetFormatError, match=r"annotation_val.odgt:1: field 'gtboxes' must be a list"):
        load_crowdhuman(str(crowdhuman), "val")


@pytest.mark.parametrize("fbox", ["[1, 2, 3]", "[1, 2, 3, 4, 5]", '"1 2 3 4"', '[1, "2", 3, 4]', "null"])
def test_crowdhuman_box_not_four_numbers(crowdhuman, fbox):
    _odgt_raw(crowdhuman, ['{"ID": "%s", "gtboxes": [{"tag": "person", "fbox": %s}]}' % (_IMG, fbox)])
    message = r"odgt:1 gtboxes\[0\]: field 'fbox.*(\[x, y, w, h\]|number)"
    with pytest.raises(DatasetFormatError, match=message):
        load_crowdhuman(str(crowdhuman), "val")


def test_crowdhuman_not_utf8(crowdhuman):
    good = '{"ID": "%s", "gtboxes": []}\n' % _IMG
    (crowdhuman / "annotation_val.odgt").write_bytes(
        good.encode() + b'{"ID": "caf\xe9", "gtboxes": []}\n'
    )
    with pytest.raises(DatasetFormatError, match=r"annotation_val.odgt:2: not UTF-8 text"):
        load_crowdhuman(str(crowdhuman), "val")


def test_crowdhuman_utf8_bom_accepted(crowdhuman):
    line = '{"ID": "%s", "gtboxes": [{"tag": "person", "fbox": [1, 2, 3, 4]}]}\n' % _IMG
    (crowdhuman / "annotation_val.odgt").write_bytes(b"\xef\xbb\xbf" + line.encode())
    recs = load_crowdhuman(str(crowdhuman), "val")
    assert [r["image_id"] for r in recs] == [_IMG]
