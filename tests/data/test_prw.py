import logging
import os

import numpy as np
import pytest
import scipy.io
from detectron2.data import DatasetCatalog, MetadataCatalog
from detectron2.structures import BoxMode

from hpps_d2.data.datasets.catalog import register_split
from hpps_d2.data.datasets.common import (
    UNLABELED,
    DatasetFormatError,
    DatasetNotFoundError,
    ImageReadError,
)
from hpps_d2.data.datasets.prw import SPLITS, load_prw
from tests.helpers import write_image

# frame -> (height, width), annotation variable, rows [pid, x, y, w, h]
TRAIN = {
    "c1s1_000151": (
        (60, 100),
        "box_new",
        [
            [1, 10, 5, 20, 40],
            [2, -5, 10, 30, 40],  # negative x: clipped at 0 before x2 = x + w
            [-2, 50, 5, 10, 20],  # unlabeled
            [1, 60, 5, 10, 30],  # pid 1 a second time in this frame
            [3, 70, 5, 0, 20],  # zero width
        ],
    ),
    "c2s1_000200": ((50, 80), "anno_file", [[5, 1, 2, 10, 20], [2, 30, 30, 10, -5]]),
    "c6s1_000300": ((40, 50), "anno_previous", np.zeros((0, 5))),  # no person at all
}
TEST = {
    "c1s2_000010": (
        (60, 100),
        "box_new",
        [[7, 1, 1, 10, 20], [7, 20, 1, 10, 20], [-2, 40, 1, 10, 20]],  # pid 7 twice
    ),
    "c3s1_000020": ((50, 80), "box_new", [[8, 5, 5, 10, 10], [9, 1.5, 2.5, 10.25, 20]]),
    "c6s2_000030": ((40, 50), "anno_file", [[7, 0, -3, 10, 20]]),
}
QUERY_LINES = [
    "7 1 1 10 20 c1s2_000010",
    "8 -2.5 5 10 10 c3s1_000020",  # leaves the image: x1 clipped after the conversion
    "9 1.5 2.5 10.25 20 c3s1_000020",
]


def _frame_list(names):
    c = np.empty((len(names), 1), dtype=object)
    for i, n in enumerate(names):
        c[i, 0] = np.array([n])
    return c


def _write_annotation(root, frame, var, rows):
    path = root / "annotations" / f"{frame}.jpg.mat"
    scipy.io.savemat(str(path), {var: np.asarray(rows, dtype=np.float64)})


def _write_queries(root, lines):
    with open(root / "query_info.txt", "w", newline="") as f:
        f.write("".join(line + "\r\n" for line in lines))


@pytest.fixture
def prw(tmp_path):
    root = tmp_path / "PRW"
    os.makedirs(root / "annotations")
    for i, (frame, ((h, w), var, rows)) in enumerate({**TRAIN, **TEST}.items()):
        write_image(str(root / "frames" / f"{frame}.jpg"), h, w, seed=i)
        _write_annotation(root, frame, var, rows)
    scipy.io.savemat(str(root / "frame_train.mat"), {"img_index_train": _frame_list(list(TRAIN))})
    scipy.io.savemat(str(root / "frame_test.mat"), {"img_index_test": _frame_list(list(TEST))})
    _write_queries(root, QUERY_LINES)
    write_image(str(root / "query_box" / "7_c1s2_000010.jpg"), 20, 10)
    return root


def _boxes_pids(record):
    return [(a["bbox"], a["person_id"]) for a in record["annotations"]]


def test_prw_train(prw, caplog):
    with caplog.at_level(logging.WARNING):
        recs = load_prw(str(prw), "train")
    assert [r["image_id"] for r in recs] == [
        "c1s1_000151.jpg",
        "c2s1_000200.jpg",
        "c6s1_000300.jpg",
    ]
    assert [r["camera_id"] for r in recs] == [1, 2, 6]
    r = recs[0]
    assert r["file_name"] == os.path.join(str(prw), "frames", "c1s1_000151.jpg")
    assert (r["height"], r["width"]) == (60, 100)
    assert r["annotations"][0]["bbox_mode"] == BoxMode.XYXY_ABS
    # raw train ids {1, 2, 5} -> 0, 1, 2
    assert _boxes_pids(r) == [
        ([10.0, 5.0, 30.0, 45.0], 0),
        ([0.0, 10.0, 30.0, 50.0], 1),  # x clipped to 0, then x2 = 0 + 30
        ([50.0, 5.0, 60.0, 25.0], UNLABELED),
        ([60.0, 5.0, 70.0, 35.0], UNLABELED),  # the later box of pid 1 in this frame
    ]
    assert _boxes_pids(recs[1]) == [([1.0, 2.0, 11.0, 22.0], 2)]  # read through 'anno_file'
    assert recs[2]["annotations"] == []  # read through 'anno_previous'; kept
    assert "PRW train (" in caplog.text
    assert "): dropped/repaired 5 items" in caplog.text
    assert "non-positive box size (dropped): 2" in caplog.text
    assert "negative coordinate clipped at 0: 1" in caplog.text
    assert "pid labeled twice in one frame (later box set unlabeled): 1 (e.g. " in caplog.text
    assert "c1s1_000151.jpg.mat row 3)" in caplog.text
    assert "frame without any person box (kept, background only): 1" in caplog.text


def test_prw_gallery(prw, caplog):
    with caplog.at_level(logging.WARNING):
        recs = load_prw(str(prw), "gallery")
    assert [r["image_id"] for r in recs] == [
        "c1s2_000010.jpg",
        "c3s1_000020.jpg",
        "c6s2_000030.jpg",
    ]
    assert [r["camera_id"] for r in recs] == [1, 3, 6]
    assert _boxes_pids(recs[0]) == [  # raw ids; pid 7 twice: both kept
        ([1.0, 1.0, 11.0, 21.0], 7),
        ([20.0, 1.0, 30.0, 21.0], 7),
        ([40.0, 1.0, 50.0, 21.0], UNLABELED),
    ]
    # SeqNet/NAE: clip, x2 = x + w, then astype(np.int32): [1.5, 2.5, 11.75, 22.5] -> [1, 2, 11, 22]
    assert _boxes_pids(recs[1]) == [([5.0, 5.0, 15.0, 15.0], 8), ([1.0, 2.0, 11.0, 22.0], 9)]
    assert _boxes_pids(recs[2]) == [([0.0, 0.0, 10.0, 20.0], 7)]
    assert (recs[2]["height"], recs[2]["width"]) == (40, 50)
    assert "PRW gallery (" in caplog.text
    assert "): dropped/repaired 2 items" in caplog.text
    assert "pid labeled twice in one frame (both kept): 1 (e.g. " in caplog.text
    assert "c1s2_000010.jpg.mat row 1)" in caplog.text
    assert "negative coordinate clipped at 0: 1" in caplog.text


def test_prw_query(prw, caplog):
    with caplog.at_level(logging.WARNING):
        recs = load_prw(str(prw), "query")
    assert len(recs) == 3
    q = recs[0]
    assert q["file_name"] == os.path.join(str(prw), "frames", "c1s2_000010.jpg")
    assert (q["image_id"], q["height"], q["width"], q["camera_id"]) == (
        "c1s2_000010.jpg",
        60,
        100,
        1,
    )
    assert q["query"] == {"bbox": [1.0, 1.0, 11.0, 21.0], "person_id": 7}
    assert q["query_box_file"] == os.path.join(str(prw), "query_box", "7_c1s2_000010.jpg")
    # SeqNet/NAE: [x, y, x + w, y + h] astype(np.int32), then clipped at 0
    assert recs[1]["query"] == {"bbox": [0.0, 5.0, 7.0, 15.0], "person_id": 8}  # [-2, 5, 7, 15]
    assert recs[2]["query"] == {"bbox": [1.0, 2.0, 11.0, 22.0], "person_id": 9}
    assert [r["camera_id"] for r in recs] == [1, 3, 3]
    assert "query_box_file" not in recs[1]
    assert "query box clipped at 0: 1 (e.g." in caplog.text
    assert "query_info.txt:2" in caplog.text


def test_prw_splits():
    by_name = {s.name: s for s in SPLITS}
    assert list(by_name) == ["prw_train", "prw_gallery", "prw_query"]
    assert by_name["prw_query"].links == {"gallery": "prw_gallery"}
    assert by_name["prw_gallery"].links == {"query": "prw_query"}
    assert by_name["prw_query"].evaluator_type == "person_search"
    assert by_name["prw_train"].evaluator_type is None
    assert all(s.subdir == "PRW" and s.task == "search" and s.domain == "prw" for s in SPLITS)
    assert by_name["prw_gallery"].published["images"] == 6112


def test_prw_registered_split_counts_identities(prw):
    spec = {s.name: s for s in SPLITS}["prw_train"]
    name = register_split(spec, str(prw.parent), prefix=f"{prw.parent.name}_")
    assert len(DatasetCatalog.get(name)) == 3
    assert MetadataCatalog.get(name).num_identities == 3  # counted from the data, not written down
    assert MetadataCatalog.get(name).evaluator_type is None


def test_prw_frame_listed_twice(prw, caplog):
    names = ["c1s2_000010", "c3s1_000020", "c1s2_000010"]
    scipy.io.savemat(str(prw / "frame_test.mat"), {"img_index_test": _frame_list(names)})
    with caplog.at_level(logging.WARNING):
        recs = load_prw(str(prw), "gallery")
    assert [r["image_id"] for r in recs] == ["c1s2_000010.jpg", "c3s1_000020.jpg"]
    assert "frame listed twice (later entry dropped): 1" in caplog.text


def test_prw_missing_root(tmp_path):
    with pytest.raises(DatasetNotFoundError, match=r"PRW.*datasets/README.md.*'PRW'"):
        load_prw(str(tmp_path / "PRW"), "train")


def test_prw_missing_annotation(prw):
    os.remove(prw / "annotations" / "c3s1_000020.jpg.mat")
    with pytest.raises(DatasetNotFoundError, match=r"c3s1_000020.jpg.mat"):
        load_prw(str(prw), "gallery")


def test_prw_annotation_without_known_variable(prw):
    _write_annotation(prw, "c2s1_000200", "boxes", [[5, 1, 2, 10, 20]])
    with pytest.raises(
        DatasetFormatError,
        match=r"c2s1_000200.jpg.mat: expected a variable named 'box_new' or 'anno_file' or "
        r"'anno_previous'",
    ):
        load_prw(str(prw), "train")


def test_prw_annotation_wrong_shape(prw):
    _write_annotation(prw, "c2s1_000200", "box_new", [[1, 2, 10, 20]])
    with pytest.raises(DatasetFormatError, match=r"c2s1_000200.jpg.mat: expected an \(N, 5\)"):
        load_prw(str(prw), "train")


def test_prw_annotation_bad_pid(prw):
    _write_annotation(prw, "c2s1_000200", "box_new", [[5, 1, 2, 10, 20], [-1, 1, 2, 10, 20]])
    with pytest.raises(DatasetFormatError, match=r"c2s1_000200.jpg.mat: row 1: person id -1.0"):
        load_prw(str(prw), "train")


def test_prw_corrupt_mat(prw):
    (prw / "frame_test.mat").write_bytes(b"\x00" * 200)
    with pytest.raises(DatasetFormatError, match=r"frame_test.mat: not a readable MATLAB"):
        load_prw(str(prw), "gallery")


def test_prw_malformed_query_line(prw):
    _write_queries(prw, QUERY_LINES[:1] + ["8 -2.5 5 10 c3s1_000020"])
    with pytest.raises(
        DatasetFormatError, match=r"query_info.txt:2: expected 'pid x y w h frame_name'"
    ):
        load_prw(str(prw), "query")
    _write_queries(prw, ["7 1 1 ten 20 c1s2_000010"])
    with pytest.raises(DatasetFormatError, match=r"query_info.txt:1: expected .* numbers first"):
        load_prw(str(prw), "query")


def test_prw_missing_and_corrupt_image(prw):
    os.remove(prw / "frames" / "c2s1_000200.jpg")
    with pytest.raises(ImageReadError, match=r"not found: .*frames/c2s1_000200.jpg"):
        load_prw(str(prw), "train")
    (prw / "frames" / "c3s1_000020.jpg").write_bytes(b"not a jpeg")
    with pytest.raises(ImageReadError, match=r"c3s1_000020.jpg"):
        load_prw(str(prw), "query")


# Float boxes, written as PRW stores them (float64 .mat rows, decimal query lines). Expected values
# worked out by hand from SeqNet datasets/prw.py L75-87 / L35-36 (NAE4PS lib/datasets/prw.py
# L41-54 / L81-82): gallery and train rows are clipped at 0, x2 = x + w, then truncated by
# astype(np.int32); query rows are [x, y, x + w, y + h] truncated, then clipped at 0.
FLOAT_ROWS = [
    [8, 10.7, 5.2, 20.6, 30.9],  # -> [10, 5, 31, 36]   (x2 = 31.3, y2 = 36.1)
    [9, -1.5, 2.5, 20.9, 20],  # clip x first: [0, 2.5, 20.9, 22.5] -> [0, 2, 20, 22]
    [3, 10.2, 5, 0.5, 20],  # x2 = 10.7 -> 10 = x1: zero width after truncation (int32: dropped)
]
FLOAT_QUERIES = [
    "8 10.7 5.2 20.6 30.9 c3s1_000020",  # -> [10, 5, 31, 36]
    # [-1.5, 2.5, 19.4, 22.5] -> [-1, 2, 19, 22] -> [0, 2, 19, 22]
    "9 -1.5 2.5 20.9 20 c3s1_000020",
]


@pytest.fixture
def prw_float(prw):
    _write_annotation(prw, "c3s1_000020", "box_new", FLOAT_ROWS)
    _write_annotation(prw, "c2s1_000200", "anno_file", [[5, 1.9, 2.2, 10.5, 20.5]])  # train
    _write_queries(prw, FLOAT_QUERIES)
    return prw


def test_prw_boxes_truncated_like_seqnet_nae_by_default(prw_float, caplog, monkeypatch):
    monkeypatch.delenv("HPPS_PRW_BOXES", raising=False)
    with caplog.at_level(logging.WARNING):
        gallery = load_prw(str(prw_float), "gallery")
    assert _boxes_pids(gallery[1]) == [([10, 5, 31, 36], 8), ([0, 2, 20, 22], 9)]
    assert "box of zero size after int32 truncation (dropped): 1" in caplog.text
    train = load_prw(str(prw_float), "train")
    # [1.9, 2.2, 12.4, 22.7] -> [1, 2, 12, 22]
    assert [a["bbox"] for a in train[1]["annotations"]] == [[1, 2, 12, 22]]
    queries = load_prw(str(prw_float), "query")
    assert [q["query"]["bbox"] for q in queries] == [[10, 5, 31, 36], [0, 2, 19, 22]]
    assert all(isinstance(v, float) for q in queries for v in q["query"]["bbox"])


def test_prw_float_boxes_as_an_option(prw_float, monkeypatch):
    monkeypatch.delenv("HPPS_PRW_BOXES", raising=False)
    expected_gallery = [[10.7, 5.2, 31.3, 36.1], [0.0, 2.5, 20.9, 22.5], [10.2, 5.0, 10.7, 25.0]]
    expected_query = [[10.7, 5.2, 31.3, 36.1], [0.0, 2.5, 19.4, 22.5]]
    for how in ("argument", "environment"):
        if how == "environment":
            monkeypatch.setenv("HPPS_PRW_BOXES", "float")
            kw = {}
        else:
            kw = {"boxes": "float"}
        gallery = load_prw(str(prw_float), "gallery", **kw)
        got = [a["bbox"] for a in gallery[1]["annotations"]]
        assert got == [pytest.approx(b) for b in expected_gallery], how
        queries = load_prw(str(prw_float), "query", **kw)
        got = [q["query"]["bbox"] for q in queries]
        assert got == [pytest.approx(b) for b in expected_query], how
    # the argument wins over the environment
    monkeypatch.setenv("HPPS_PRW_BOXES", "float")
    assert load_prw(str(prw_float), "query", boxes="int32")[0]["query"]["bbox"] == [10, 5, 31, 36]


def test_prw_registered_split_follows_the_environment(prw_float, monkeypatch):
    spec = {s.name: s for s in SPLITS}["prw_query"]
    name = register_split(spec, str(prw_float.parent), prefix=f"{prw_float.parent.name}_env_")
    monkeypatch.delenv("HPPS_PRW_BOXES", raising=False)
    assert DatasetCatalog.get(name)[0]["query"]["bbox"] == [10, 5, 31, 36]
    monkeypatch.setenv("HPPS_PRW_BOXES", "float")
    assert DatasetCatalog.get(name)[0]["query"]["bbox"] == pytest.approx([10.7, 5.2, 31.3, 36.1])


def test_prw_bad_box_convention(prw, monkeypatch):
    monkeypatch.setenv("HPPS_PRW_BOXES", "round")
    expected = r"must be 'int32' \(SeqNet/NAE\) or 'float', got"
    with pytest.raises(ValueError, match=rf"HPPS_PRW_BOXES {expected} 'round'"):
        load_prw(str(prw), "gallery")
    monkeypatch.delenv("HPPS_PRW_BOXES")
    with pytest.raises(ValueError, match=rf"PRW boxes {expected} 'nearest'"):
        load_prw(str(prw), "query", boxes="nearest")


# --- hardening: non-finite coordinates ---------------------------------------------------------


@pytest.mark.parametrize(
    "line, message",
    [
        ("8 nan 5 10 10 c3s1_000020", r"field 'x' is NaN"),
        ("8 1 5 inf 10 c3s1_000020", r"field 'w' is infinite"),
        ("8 1 5 10 -Infinity c3s1_000020", r"field 'h' is infinite"),
        ("nan 1 5 10 10 c3s1_000020", r"field 'pid' is NaN"),
    ],
)
def test_prw_query_non_finite_coordinate(prw, line, message):
    _write_queries(prw, QUERY_LINES[:1] + [line])
    with pytest.raises(DatasetFormatError, match=r"query_info.txt:2: " + message):
        load_prw(str(prw), "query")


@pytest.mark.parametrize("value, what", [(np.nan, "NaN"), (np.inf, "infinite"), (-np.inf, "infinite")])
def test_prw_annotation_non_finite_coordinate(prw, value, what):
    _write_annotation(prw, "c2s1_000200", "box_new", [[5, 1, 2, 10, 20], [5, 1, 2, value, 20]])
    with pytest.raises(DatasetFormatError, match=r"c2s1_000200.jpg.mat: row 1: field 'w' is " + what):
        load_prw(str(prw), "train")


# --- hardening: boxes outside the image, queries off the gallery -------------------------------


def test_prw_box_wholly_outside_the_image_counted(prw, caplog):
    # c2s1_000200 is 80 wide and 50 high: x = 85 and y = 60 lie beyond its right and bottom edges
    rows = [[5, 1, 2, 10, 20], [6, 85, 2, 10, 20], [-2, 1, 60, 10, 20]]
    _write_annotation(prw, "c2s1_000200", "box_new", rows)
    with caplog.at_level(logging.WARNING):
        recs = load_prw(str(prw), "train")
    assert len(recs[1]["annotations"]) == 3  # kept, as SeqNet / NAE keep them
    assert "box wholly outside the image (kept; the training mapper drops it): 2" in caplog.text
    assert "c2s1_000200.jpg.mat row 1" in caplog.text
    assert "c2s1_000200.jpg.mat row 2" in caplog.text


def test_prw_query_on_a_train_frame_counted(prw, caplog):
    write_image(str(prw / "query_box" / "5_c2s1_000200.jpg"), 20, 10)
    _write_queries(prw, QUERY_LINES[:1] + ["5 1 2 10 20 c2s1_000200"])  # a train frame
    with caplog.at_level(logging.WARNING):
        recs = load_prw(str(prw), "query")
    assert len(recs) == 2
    assert "query frame is a train frame (frame_train.mat), not a gallery frame (kept): 1" in caplog.text
    assert "query_info.txt:2" in caplog.text


def test_prw_query_without_gallery_match_counted(prw, caplog):
    # pid 7 is in c1s2_000010 (the query's frame) and c6s2_000030; pid 8 only in the query's frame
    _write_queries(prw, QUERY_LINES[:2])
    with caplog.at_level(logging.WARNING):
        recs = load_prw(str(prw), "query")
    assert len(recs) == 2
    assert (
        "query without a gallery match (no other test frame shows its person id; kept): 1 "
        "(e.g. " in caplog.text
    )
    assert "query_info.txt:2" in caplog.text and "query_info.txt:1" not in caplog.text
