import logging
import os

import pytest

from hpps_d2.data.datasets import msmt17
from hpps_d2.data.datasets.common import DatasetFormatError, DatasetNotFoundError, ImageReadError
from hpps_d2.data.datasets.msmt17 import load_msmt17
from tests.helpers import write_image

TRAIN = [
    "0005/0005_000_01_0303morning_0008_0.jpg 5",
    "0002/0002_000_15_0113noon_0001_1.jpg 2",
    "0005/0005_001_07_0114afternoon_0020_0_ex.jpg 5",
    "0009/0009_000_03_0302morning_0003_0.jpg 9",
]
QUERY = ["0003/0003_000_02_0303morning_0001_0.jpg 3", "0000/0000_004_11_0303noon_0002_0.jpg 0"]
GALLERY = ["0003/0003_001_05_0303morning_0005_0.jpg 3", "0000/0000_000_09_0113noon_0001_0.jpg 0"]


def _make(version_dir, train_dir, test_dir, lists, ext=".jpg", newline="\n"):
    for split, lines in lists.items():
        img_dir = train_dir if split == "train" else test_dir
        for line in lines:
            rel = line.split()[0]
            write_image(os.path.join(version_dir, img_dir, rel), 4, 2, fmt="JPEG")
        with open(os.path.join(version_dir, f"list_{split}.txt"), "w", newline="") as f:
            f.write("".join(line + newline for line in lines))


@pytest.fixture
def v1(tmp_path):
    root = tmp_path / "msmt17"
    _make(
        str(root / "MSMT17_V1"),
        "train",
        "test",
        {"train": TRAIN, "query": QUERY, "gallery": GALLERY},
    )
    return root


def test_load_msmt17_train(v1):
    recs = load_msmt17(str(v1), "train")
    assert [r["image_id"] for r in recs] == [line.split()[0] for line in TRAIN]
    assert recs[0]["file_name"] == os.path.join(
        str(v1), "MSMT17_V1", "train", "0005", "0005_000_01_0303morning_0008_0.jpg"
    )
    assert [r["person_id"] for r in recs] == [1, 0, 1, 2]  # raw 2, 5, 9 -> 0, 1, 2
    assert [r["camera_id"] for r in recs] == [0, 14, 6, 2]
    assert set(recs[0]) == {"file_name", "image_id", "person_id", "camera_id"}


def test_load_msmt17_query_gallery_keep_raw_ids(v1):
    q = load_msmt17(str(v1), "query")
    g = load_msmt17(str(v1), "gallery")
    assert [(r["person_id"], r["camera_id"]) for r in q] == [(3, 1), (0, 10)]
    assert [(r["person_id"], r["camera_id"]) for r in g] == [(3, 4), (0, 8)]
    assert q[0]["file_name"] == os.path.join(
        str(v1), "MSMT17_V1", "test", "0003", "0003_000_02_0303morning_0001_0.jpg"
    )


def test_msmt17_v2_capital_spelling_jpeg_and_crlf(tmp_path):
    root = tmp_path / "msmt17"
    lines = [
        "0001/0001_000_04_0303morning_0001_0.jpeg 1",
        "0004/0004_002_12_0303noon_0001_0.jpeg 4",
    ]
    _make(
        str(root / "MSMT17_V2"),
        "mask_train_V2",
        "mask_test_V2",
        {"train": lines, "query": lines[:1]},
        newline="\r\n",
    )
    recs = load_msmt17(str(root), "train")
    assert [(r["person_id"], r["camera_id"]) for r in recs] == [(0, 3), (1, 11)]
    assert recs[1]["file_name"] == os.path.join(
        str(root), "MSMT17_V2", "mask_train_V2", "0004", "0004_002_12_0303noon_0001_0.jpeg"
    )
    (q,) = load_msmt17(str(root), "query")
    assert q["file_name"].startswith(os.path.join(str(root), "MSMT17_V2", "mask_test_V2") + os.sep)
    assert q["person_id"] == 1


def test_msmt17_v1_wins_over_v2(v1):
    _make(str(v1 / "MSMT17_V2"), "mask_train_v2", "mask_test_v2", {"train": TRAIN[:1]})
    recs = load_msmt17(str(v1), "train")
    assert len(recs) == 4 and os.sep + "MSMT17_V1" + os.sep in recs[0]["file_name"]


def test_msmt17_duplicates_counted(v1, caplog):
    with open(v1 / "MSMT17_V1" / "list_query.txt", "a") as f:
        f.write(QUERY[1] + "\n\n")
    with caplog.at_level(logging.WARNING):
        recs = load_msmt17(str(v1), "query")
    assert len(recs) == 2
    assert "duplicated list entry (later line dropped): 1 (e.g. " in caplog.text
    assert "list_query.txt:3" in caplog.text


def test_msmt17_splits():
    assert [s.name for s in msmt17.SPLITS] == ["msmt17_train", "msmt17_query", "msmt17_gallery"]
    assert msmt17.SPLITS[1].links == {"gallery": "msmt17_gallery"}
    assert msmt17.SPLITS[2].links == {"query": "msmt17_query"}
    assert [s.evaluator_type for s in msmt17.SPLITS] == [None, "reid", "reid"]


def test_msmt17_missing_root(tmp_path):
    with pytest.raises(DatasetNotFoundError, match=r"msmt17'.*datasets/README.md.*'MSMT17'"):
        load_msmt17(str(tmp_path / "msmt17"), "train")
    (tmp_path / "msmt17").mkdir()
    with pytest.raises(DatasetNotFoundError, match=r"MSMT17_V1' or .*MSMT17_V2' but neither"):
        load_msmt17(str(tmp_path / "msmt17"), "train")
    (tmp_path / "msmt17" / "MSMT17_V2" / "mask_train_v2").mkdir(parents=True)
    with pytest.raises(DatasetNotFoundError, match=r"mask_test_v2' or .*mask_test_V2'"):
        load_msmt17(str(tmp_path / "msmt17"), "train")


@pytest.mark.parametrize(
    "line, message",
    [
        ("0002/0002_000_01_0303morning_0001_0.jpg", r"expected '<relative/path> <pid>'"),
        ("0002/0002_000_01_0303morning_0001_0.jpg 2 x", r"expected '<relative/path> <pid>'"),
        ("0002/0002_000_01_0303morning_0001_0.jpg two", r"integer person id .* got 'two'"),
        ("0002/0002_000_01_0303morning_0001_0.jpg -1", r"person id >= 0, got -1"),
        ("0002/0002-000-01.jpg 2", r"camera number CC .* got '0002-000-01.jpg'"),
        ("0002/0002_000_xx_0303morning.jpg 2", r"camera number CC"),
        ("0002/0002_000_16_0303morning_0001_0.jpg 2", r"camera number '16' .* outside 01..15"),
        ("0002/0002_000_00_0303morning_0001_0.jpg 2", r"camera number '00' .* outside 01..15"),
    ],
)
def test_msmt17_malformed_line(v1, line, message):
    with open(v1 / "MSMT17_V1" / "list_gallery.txt", "a") as f:
        f.write(line + "\n")
    with pytest.raises(DatasetFormatError, match=r"list_gallery.txt:3: .*" + message):
        load_msmt17(str(v1), "gallery")


def test_msmt17_missing_image(v1):
    os.remove(v1 / "MSMT17_V1" / "train" / "0002" / "0002_000_15_0113noon_0001_1.jpg")
    os.remove(v1 / "MSMT17_V1" / "train" / "0009" / "0009_000_03_0302morning_0003_0.jpg")
    with pytest.raises(
        ImageReadError, match=r"not found: .*train/0002/0002_000_15_0113noon_0001_1.jpg.*2 of 4"
    ):
        load_msmt17(str(v1), "train")


def test_msmt17_missing_list_and_empty_list(v1):
    os.remove(v1 / "MSMT17_V1" / "list_query.txt")
    with pytest.raises(DatasetNotFoundError, match=r"list_query.txt"):
        load_msmt17(str(v1), "query")
    (v1 / "MSMT17_V1" / "list_query.txt").write_text("\n")
    with pytest.raises(DatasetFormatError, match=r"list_query.txt: expected .* got none"):
        load_msmt17(str(v1), "query")


def test_msmt17_image_listed_under_two_identities(v1):
    # the same image a second time, with another person id: which one is right is unknown
    with open(v1 / "MSMT17_V1" / "list_train.txt", "a") as f:
        f.write("0002/0002_000_15_0113noon_0001_1.jpg 9\n")
    with pytest.raises(
        DatasetFormatError,
        match=r"list_train.txt:5: image '0002/0002_000_15_0113noon_0001_1.jpg' is listed with "
        r"person id 9 here but with person id 2 at line 2 .*list_train.txt:2",
    ):
        load_msmt17(str(v1), "train")
