import logging
import os

import numpy as np
import pytest
import scipy.io
from detectron2.structures import BoxMode

from hpps_d2.data.datasets.common import (
    UNLABELED,
    DatasetFormatError,
    DatasetNotFoundError,
    ImageReadError,
)
from hpps_d2.data.datasets.cuhk_sysu import SPLITS, load_cuhk_sysu
from tests.helpers import write_image

# Fixture world. Train images s1-s3, test images (the pool) s10-s13, pool order s13, s10, s11, s12.
U8, U16 = np.uint8, np.uint16
IMAGES = [  # imname, (height, width), boxes [x, y, w, h], box dtype
    (
        "s1.jpg",
        (100, 300),
        [
            [10, 10, 20, 40],
            [40, 10, 15, 30],
            [70, 5, 8, 20],
            [70, 5, 8, 20],
            [3, 3, 0, 10],
            [200, 10, 80, 40],  # x + w = 280 would wrap around in uint8
        ],
        U8,
    ),
    (
        "s2.jpg",
        (80, 120),
        [[5, 5, 20, 40], [30, 8, 10, 30], [50, 10, 10, 30], [20, 50, 10, 0]],
        U16,
    ),
    ("s3.jpg", (50, 50), [[1, 1, 0, 0]], U16),  # nothing valid: a skipped train image
    ("s10.jpg", (70, 90), [[10, 10, 20, 40], [40, 10, 15, 30]], U16),
    ("s11.jpg", (70, 90), [[5, 5, 20, 40], [30, 8, 10, 30], [60, 8, 10, 30]], U8),
    ("s12.jpg", (60, 60), [[0, 0, 0, 5]], U16),  # nothing valid: a kept gallery image
    ("s13.jpg", (60, 80), [[12, 12, 20, 30], [1, 1, 5, 5]], U16),
]
POOL = ["s13.jpg", "s10.jpg", "s11.jpg", "s12.jpg"]
TRAIN = [  # idname, scenes (imname, box)
    ("p1", [("s1.jpg", [10, 10, 20, 40]), ("s2.jpg", [5, 5, 20, 40])]),
    (
        "p2",
        [
            ("s1.jpg", [40, 10, 15, 30]),
            ("s2.jpg", [30, 8, 10, 30]),
            ("s2.jpg", [50, 10, 10, 30]),  # labeled twice in s2: the later box becomes unlabeled
            ("s1.jpg", [60, 60, 5, 5]),  # matches no Images.mat box
        ],
    ),
]
# Query (imname, box, idname), gallery entries (imname, box or None) per protocol size.
Q0 = ("s10.jpg", [10, 10, 20, 40], "p100")
Q1 = ("s13.jpg", [12, 12, 20, 30], "p200")
GALLERY_50 = [
    # the query image in its own list, and a duplicated negative entry
    [
        ("s11.jpg", [5, 5, 20, 40]),
        ("s10.jpg", [10, 10, 20, 40]),
        ("s12.jpg", None),
        ("s12.jpg", None),
    ],
    # the query person twice in one gallery image
    [
        ("s11.jpg", [30, 8, 10, 30]),
        ("s11.jpg", [60, 8, 10, 30]),
        ("s10.jpg", None),
        ("s12.jpg", None),
    ],
]
GALLERY_100 = [g + [("s13.jpg", None)] for g in GALLERY_50]


def _str(s):
    return np.array([s])


def _box(b, dtype=U16):
    return np.array([b], dtype=dtype)


def _structs(fields, rows):
    """A (1, n) MATLAB struct array, as scipy.io.loadmat returns it."""
    a = np.zeros((1, len(rows)), dtype=[(f, "O") for f in fields])
    for i, row in enumerate(rows):
        a[0, i] = tuple(row)
    return a


def _cell(items):
    c = np.empty((len(items), 1), dtype=object)
    for i, item in enumerate(items):
        c[i, 0] = item
    return c


def _write_images_mat(root, images=IMAGES):
    rows = []
    for name, _, boxes, dtype in images:
        box = _structs(
            ("idlocate", "ishard"), [(_box(b, dtype), np.array([[0]], U8)) for b in boxes]
        )
        rows.append((_str(name), np.array([[len(boxes)]], dtype=float), box))
    scipy.io.savemat(
        str(root / "annotation" / "Images.mat"),
        {"Img": _structs(("imname", "nAppear", "box"), rows)},
    )


def _write_protocol(root, k, queries, galleries, var=None):
    rows = []
    for (name, box, idname), gallery in zip(queries, galleries):
        query = _structs(
            ("imname", "idlocate", "ishard", "idname"),
            [(_str(name), _box(box), np.array([[1]], U8), _str(idname))],
        )
        entries = [
            (
                (_str(g), _box(b), np.array([[0]], U8))
                if b is not None
                else (_str(g), np.zeros((1, 0)), np.zeros((1, 0)))
            )
            for g, b in gallery
        ]
        rows.append((query, _structs(("imname", "idlocate", "ishard"), entries)))
    path = root / "annotation" / "test" / "train_test" / f"TestG{k}.mat"
    scipy.io.savemat(str(path), {var or f"TestG{k}": _structs(("Query", "Gallery"), rows)})


@pytest.fixture
def cuhk(tmp_path):
    root = tmp_path / "CUHK-SYSU"
    for i, (name, (h, w), _, _) in enumerate(IMAGES):
        write_image(str(root / "Image" / "SSM" / name), h, w, seed=i)
    os.makedirs(root / "annotation" / "test" / "train_test")
    _write_images_mat(root)
    scipy.io.savemat(
        str(root / "annotation" / "pool.mat"), {"pool": _cell([_str(n) for n in POOL])}
    )
    identities = []
    for idname, scenes in TRAIN:
        scene = _structs(
            ("imname", "idlocate", "ishard"),
            [(_str(n), _box(b), np.array([[0]], U8)) for n, b in scenes],
        )
        identities.append(
            _structs(
                ("idname", "nAppear", "scene"), [(_str(idname), np.array([[len(scenes)]]), scene)]
            )
        )
    scipy.io.savemat(
        str(root / "annotation" / "test" / "train_test" / "Train.mat"), {"Train": _cell(identities)}
    )
    _write_protocol(root, 50, [Q0, Q1], GALLERY_50)
    _write_protocol(root, 100, [Q0, Q1], GALLERY_100)
    return root


def _boxes_pids(record):
    return [(a["bbox"], a["person_id"]) for a in record["annotations"]]


def test_cuhk_sysu_train(cuhk, caplog):
    with caplog.at_level(logging.WARNING):
        recs = load_cuhk_sysu(str(cuhk), "train")
    assert [r["image_id"] for r in recs] == ["s1.jpg", "s2.jpg"]
    r = recs[0]
    assert (r["height"], r["width"]) == (100, 300)
    assert r["file_name"] == os.path.join(str(cuhk), "Image", "SSM", "s1.jpg")
    assert r["annotations"][0]["bbox_mode"] == BoxMode.XYXY_ABS
    assert _boxes_pids(r) == [
        ([10.0, 10.0, 30.0, 50.0], 0),  # uint8 box matched to a uint16 Train.mat box
        ([40.0, 10.0, 55.0, 40.0], 1),
        ([70.0, 5.0, 78.0, 25.0], UNLABELED),  # its exact duplicate was dropped
        ([200.0, 10.0, 280.0, 50.0], UNLABELED),  # no uint8 wrap-around
    ]
    assert _boxes_pids(recs[1]) == [
        ([5.0, 5.0, 25.0, 45.0], 0),
        ([30.0, 8.0, 40.0, 38.0], 1),
        ([50.0, 10.0, 60.0, 40.0], UNLABELED),  # identity 1 a second time in s2
    ]
    assert "CUHK-SYSU train (" in caplog.text
    assert "): dropped/repaired 7 items" in caplog.text
    assert "non-positive box size (dropped): 3" in caplog.text
    assert "duplicate box in one image (dropped): 1" in caplog.text
    assert "train image without any valid box (skipped): 1 (e.g. " in caplog.text
    assert "Img[2] 's3.jpg')" in caplog.text
    assert "identity labeled twice in one image (later set unlabeled): 1 (e.g. " in caplog.text
    assert "Img[1] 's2.jpg')" in caplog.text
    assert "Train.mat box without an equal train-image box (ignored): 1" in caplog.text


def test_cuhk_sysu_gallery(cuhk, caplog):
    with caplog.at_level(logging.WARNING):
        recs = load_cuhk_sysu(str(cuhk), "gallery")
    assert [r["image_id"] for r in recs] == POOL  # pool.mat order, not Images.mat order
    assert _boxes_pids(recs[0]) == [
        ([12.0, 12.0, 32.0, 42.0], 1),
        ([1.0, 1.0, 6.0, 6.0], UNLABELED),
    ]
    assert _boxes_pids(recs[1]) == [
        ([10.0, 10.0, 30.0, 50.0], 0),
        ([40.0, 10.0, 55.0, 40.0], UNLABELED),
    ]
    assert _boxes_pids(recs[2]) == [
        ([5.0, 5.0, 25.0, 45.0], 0),
        ([30.0, 8.0, 40.0, 38.0], 1),
        ([60.0, 8.0, 70.0, 38.0], 1),  # the same query person twice: both kept in the gallery
    ]
    assert recs[3]["annotations"] == [] and (recs[3]["height"], recs[3]["width"]) == (60, 60)
    assert "CUHK-SYSU gallery (" in caplog.text
    assert "): dropped/repaired 3 items" in caplog.text
    assert "non-positive box size (dropped): 1" in caplog.text
    assert "gallery image without any valid box (kept): 1 (e.g. " in caplog.text
    assert "Img[5] 's12.jpg')" in caplog.text
    assert "query person labeled twice in one gallery image (kept): 1 (e.g. " in caplog.text
    assert "Img[4] 's11.jpg')" in caplog.text


def test_cuhk_sysu_query(cuhk):
    recs = load_cuhk_sysu(str(cuhk), "query")
    assert len(recs) == 2
    q0, q1 = recs
    assert q0["file_name"] == os.path.join(str(cuhk), "Image", "SSM", "s10.jpg")
    assert (q0["image_id"], q0["height"], q0["width"]) == ("s10.jpg", 70, 90)
    assert q0["query"] == {"bbox": [10.0, 10.0, 30.0, 50.0], "person_id": 0}
    assert q1["query"] == {"bbox": [12.0, 12.0, 32.0, 42.0], "person_id": 1}
    assert (q0["query_name"], q1["query_name"]) == ("p100", "p200")
    assert list(q0["gallery_lists"]) == [50, 100]
    g = q0["gallery_lists"][50]
    assert g["images"].dtype == np.int32 and g["pos_index"].dtype == np.int32
    assert g["pos_boxes"].dtype == np.float32
    # s11 -> 2, s10 -> 1 (the query image itself), s12 -> 3 listed twice
    np.testing.assert_array_equal(g["images"], [2, 1, 3, 3])
    np.testing.assert_array_equal(g["pos_index"], [0, 1])
    np.testing.assert_array_equal(g["pos_boxes"], [[5, 5, 25, 45], [10, 10, 30, 50]])
    np.testing.assert_array_equal(q0["gallery_lists"][100]["images"], [2, 1, 3, 3, 0])
    g = q1["gallery_lists"][100]
    np.testing.assert_array_equal(g["images"], [2, 2, 1, 3, 0])
    np.testing.assert_array_equal(g["pos_index"], [0, 1])
    np.testing.assert_array_equal(g["pos_boxes"], [[30, 8, 40, 38], [60, 8, 70, 38]])
    assert g["pos_boxes"].shape == (2, 4)


def test_cuhk_sysu_query_without_positives_keeps_shapes(cuhk):
    galleries = [[("s12.jpg", None), ("s11.jpg", None)], [("s10.jpg", None), ("s12.jpg", None)]]
    _write_protocol(cuhk, 100, [Q0, Q1], galleries)
    g = load_cuhk_sysu(str(cuhk), "query")[0]["gallery_lists"][100]
    np.testing.assert_array_equal(g["images"], [3, 2])
    assert g["pos_index"].shape == (0,) and g["pos_boxes"].shape == (0, 4)


def test_cuhk_sysu_splits():
    by_name = {s.name: s for s in SPLITS}
    assert set(by_name) == {"cuhk_sysu_train", "cuhk_sysu_gallery", "cuhk_sysu_query"}
    assert by_name["cuhk_sysu_query"].links == {"gallery": "cuhk_sysu_gallery"}
    assert by_name["cuhk_sysu_gallery"].links == {"query": "cuhk_sysu_query"}
    assert by_name["cuhk_sysu_gallery"].evaluator_type == "person_search"
    assert all(s.task == "search" and s.labeled and s.domain == "cuhk_sysu" for s in SPLITS)
    assert by_name["cuhk_sysu_train"].published == {"images": 11206, "identities": 5532}


def test_cuhk_sysu_missing_root(tmp_path):
    with pytest.raises(DatasetNotFoundError, match=r"CUHK-SYSU.*datasets/README.md.*'CUHK-SYSU'"):
        load_cuhk_sysu(str(tmp_path / "CUHK-SYSU"), "train")


def test_cuhk_sysu_missing_testg50(cuhk):
    os.remove(cuhk / "annotation" / "test" / "train_test" / "TestG50.mat")
    with pytest.raises(DatasetNotFoundError, match=r"TestG50.mat"):
        load_cuhk_sysu(str(cuhk), "query")


def test_cuhk_sysu_missing_and_corrupt_image(cuhk):
    os.remove(cuhk / "Image" / "SSM" / "s2.jpg")
    with pytest.raises(ImageReadError, match=r"not found: .*SSM/s2.jpg"):
        load_cuhk_sysu(str(cuhk), "train")
    (cuhk / "Image" / "SSM" / "s11.jpg").write_bytes(b"not a jpeg")
    with pytest.raises(ImageReadError, match=r"s11.jpg"):
        load_cuhk_sysu(str(cuhk), "gallery")


def test_cuhk_sysu_corrupt_mat(cuhk):
    (cuhk / "annotation" / "pool.mat").write_bytes(b"garbage, not MATLAB")
    with pytest.raises(DatasetFormatError, match=r"pool.mat: not a readable MATLAB v5 .mat file"):
        load_cuhk_sysu(str(cuhk), "gallery")


def test_cuhk_sysu_wrong_variable(cuhk):
    _write_protocol(cuhk, 100, [Q0, Q1], GALLERY_100, var="TestG")
    with pytest.raises(
        DatasetFormatError, match=r"TestG100.mat: expected a variable named 'TestG100'"
    ):
        load_cuhk_sysu(str(cuhk), "query")


def test_cuhk_sysu_malformed_box(cuhk):
    images = list(IMAGES)
    images[1] = ("s2.jpg", (80, 120), [[5, 5, 20, 40], [30, 8, 10]], U16)
    _write_images_mat(cuhk, images)
    with pytest.raises(
        DatasetFormatError, match=r"Images.mat Img\[1\].box\[1\]: expected a 1x4 numeric"
    ):
        load_cuhk_sysu(str(cuhk), "train")


def test_cuhk_sysu_pool_image_unknown(cuhk):
    scipy.io.savemat(
        str(cuhk / "annotation" / "pool.mat"), {"pool": _cell([_str("s13.jpg"), _str("s99.jpg")])}
    )
    with pytest.raises(DatasetFormatError, match=r"pool.mat: pool lists 's99.jpg'"):
        load_cuhk_sysu(str(cuhk), "gallery")


def test_cuhk_sysu_gallery_image_not_in_pool(cuhk):
    galleries = [GALLERY_100[0], GALLERY_100[1][:-1] + [("s2.jpg", None)]]
    _write_protocol(cuhk, 100, [Q0, Q1], galleries)
    with pytest.raises(
        DatasetFormatError, match=r"TestG100.mat TestG100\[1\].Gallery\[4\]: image 's2.jpg'"
    ):
        load_cuhk_sysu(str(cuhk), "query")


def test_cuhk_sysu_protocols_disagree(cuhk):
    _write_protocol(cuhk, 100, [Q0, ("s13.jpg", [12, 12, 20, 30], "p999")], GALLERY_100)
    with pytest.raises(
        DatasetFormatError, match=r"TestG100.mat TestG100\[1\].Query: .*p999.* differs"
    ):
        load_cuhk_sysu(str(cuhk), "query")
    _write_protocol(cuhk, 100, [Q0], GALLERY_100[:1])
    with pytest.raises(
        DatasetFormatError, match=r"TestG100.mat: lists 1 queries, .*TestG50.mat lists 2"
    ):
        load_cuhk_sysu(str(cuhk), "query")


def test_cuhk_sysu_bad_gallery_entry(cuhk):
    galleries = [GALLERY_50[0], GALLERY_50[1][:1] + [("s10.jpg", [1, 2, 3])] + GALLERY_50[1][2:]]
    _write_protocol(cuhk, 50, [Q0, Q1], galleries)
    with pytest.raises(
        DatasetFormatError, match=r"TestG50.mat TestG50\[1\].Gallery\[1\]: expected a 1x4"
    ):
        load_cuhk_sysu(str(cuhk), "gallery")


# --- hardening: queries outside Images.mat or the test pool ------------------------------------


def test_cuhk_sysu_query_image_not_in_pool(cuhk):
    q1 = ("s2.jpg", [5, 5, 20, 40], "p200")  # a train image, in Images.mat but not in pool.mat
    _write_protocol(cuhk, 50, [Q0, q1], GALLERY_50)
    _write_protocol(cuhk, 100, [Q0, q1], GALLERY_100)
    with pytest.raises(
        DatasetFormatError,
        match=r"TestG50.mat TestG50\[1\].Query: image 's2.jpg' is not in .*pool.mat \(the test images\)",
    ):
        load_cuhk_sysu(str(cuhk), "query")


def test_cuhk_sysu_query_image_not_in_images_mat(cuhk):
    write_image(str(cuhk / "Image" / "SSM" / "s99.jpg"), 60, 80)
    q0 = ("s99.jpg", [10, 10, 20, 40], "p100")
    _write_protocol(cuhk, 50, [q0, Q1], GALLERY_50)
    _write_protocol(cuhk, 100, [q0, Q1], GALLERY_100)
    with pytest.raises(
        DatasetFormatError, match=r"TestG50.mat TestG50\[0\].Query: image 's99.jpg' is not in .*Images.mat"
    ):
        load_cuhk_sysu(str(cuhk), "query")
