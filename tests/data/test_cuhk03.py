import logging
import os

import h5py
import numpy as np
import pytest
import scipy.io

from hpps_d2.data.datasets import cuhk03
from hpps_d2.data.datasets.common import DatasetFormatError, DatasetNotFoundError, ImageReadError
from hpps_d2.data.datasets.cuhk03 import load_cuhk03
from hpps_d2.data.image_io import read_image
from tests.helpers import write_image

# (pair, person) -> filled slots (1..5 view 1, 6..10 view 2); labels are assigned in this order.
SLOTS = {
    (1, 1): [1, 2, 6],
    (1, 2): [1, 6, 7],
    (1, 3): [1, 2, 6, 7],
    (2, 1): [1, 6],
    (2, 2): [1, 2, 6, 7],
}
NAMES = [
    f"{p}_{q:03d}_{1 if s <= 5 else 2}_{s:02d}.png" for (p, q), ss in SLOTS.items() for s in ss
]
LABELS = [k + 1 for k, ss in enumerate(SLOTS.values()) for _ in ss]
CAMS = [1 if int(n.split("_")[3][:2]) <= 5 else 2 for n in NAMES]
# 1-based rows: train = labels 2 and 4; query = first image of each view of labels 1, 3, 5.
TRAIN_IDX = [4, 5, 6, 11, 12]
QUERY_IDX = [1, 3, 7, 9, 13, 15]
GALLERY_IDX = [2, 8, 10, 14, 16]


def _image(pair, person, slot):
    h, w = 6 + slot, 3 + person
    return np.random.default_rng(100 * pair + 10 * person + slot).integers(
        0, 255, (h, w, 3), dtype=np.uint8
    )


def _save_config(
    path,
    names=NAMES,
    labels=LABELS,
    cams=CAMS,
    train=TRAIN_IDX,
    query=QUERY_IDX,
    gallery=GALLERY_IDX,
    drop=(),
):
    filelist = np.empty((len(names), 1), dtype=object)
    for i, n in enumerate(names):
        filelist[i, 0] = np.array([n])
    mat = {
        "filelist": filelist,
        "labels": np.array(labels, dtype=np.uint16).reshape(-1, 1),
        "camId": np.array(cams, dtype=np.uint8).reshape(-1, 1),
        "train_idx": np.array(train, dtype=np.uint16).reshape(-1, 1),
        "query_idx": np.array(query, dtype=np.uint16).reshape(-1, 1),
        "gallery_idx": np.array(gallery, dtype=np.uint16).reshape(-1, 1),
    }
    scipy.io.savemat(str(path), {k: v for k, v in mat.items() if k not in drop})


def _save_release(path):
    """cuhk-03.mat as MATLAB v7.3 writes it: transposed arrays, cells as object references."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with h5py.File(path, "w") as f:
        refs = f.create_group("#refs#")
        empty = refs.create_dataset("empty", data=np.zeros(2, dtype=np.uint64))
        for variant in ("labeled", "detected"):
            pair_refs = []
            for pair in (1, 2):
                persons = sorted(q for p, q in SLOTS if p == pair)
                table = np.empty((len(persons), 10), dtype=object)
                for q in persons:
                    for s in range(1, 11):
                        if s in SLOTS[(pair, q)]:
                            d = refs.create_dataset(
                                f"{variant}_{pair}_{q}_{s}", data=_image(pair, q, s).T
                            )
                            table[q - 1, s - 1] = d.ref
                        else:
                            table[q - 1, s - 1] = empty.ref
                cell = refs.create_dataset(
                    f"{variant}_pair{pair}", data=table.T, dtype=h5py.ref_dtype
                )
                pair_refs.append(cell.ref)
            f.create_dataset(
                variant, data=np.array([pair_refs], dtype=object), dtype=h5py.ref_dtype
            )


@pytest.fixture
def root(tmp_path):
    root = tmp_path / "cuhk03"
    root.mkdir()
    _save_config(root / "cuhk03_new_protocol_config_labeled.mat")
    _save_config(root / "cuhk03_new_protocol_config_detected.mat")
    for name in NAMES:
        write_image(str(root / "images_labeled" / name), 8, 4)
    _save_release(str(root / "cuhk03_release" / "cuhk-03.mat"))
    return root


def test_load_cuhk03_labeled_from_pngs(root):
    train = load_cuhk03(str(root), "train", "labeled")
    assert [r["image_id"] for r in train] == [
        "1_002_1_01.png",
        "1_002_2_06.png",
        "1_002_2_07.png",
        "2_001_1_01.png",
        "2_001_2_06.png",
    ]
    assert [r["person_id"] for r in train] == [0, 0, 0, 1, 1]  # raw labels 2, 4
    assert [r["camera_id"] for r in train] == [0, 1, 1, 0, 1]
    assert train[0]["file_name"] == os.path.join(str(root), "images_labeled", "1_002_1_01.png")
    assert all("image_source" not in r for r in train)
    query = load_cuhk03(str(root), "query", "labeled")
    assert [(r["image_id"], r["person_id"], r["camera_id"]) for r in query] == [
        ("1_001_1_01.png", 1, 0),
        ("1_001_2_06.png", 1, 1),
        ("1_003_1_01.png", 3, 0),
        ("1_003_2_06.png", 3, 1),
        ("2_002_1_01.png", 5, 0),
        ("2_002_2_06.png", 5, 1),
    ]
    gallery = load_cuhk03(str(root), "gallery", "labeled")
    assert [(r["image_id"], r["person_id"], r["camera_id"]) for r in gallery] == [
        ("1_001_1_02.png", 1, 0),
        ("1_003_1_02.png", 3, 0),
        ("1_003_2_07.png", 3, 1),
        ("2_002_1_02.png", 5, 0),
        ("2_002_2_07.png", 5, 1),
    ]


def test_load_cuhk03_detected_from_hdf5(root):
    mat = os.path.join(str(root), "cuhk03_release", "cuhk-03.mat")
    gallery = load_cuhk03(str(root), "gallery", "detected")
    assert [(r["image_id"], r["person_id"], r["camera_id"]) for r in gallery][:2] == [
        ("1_001_1_02.png", 1, 0),
        ("1_003_1_02.png", 3, 0),
    ]
    r = gallery[2]  # 1_003_2_07.png
    assert r["image_source"] == {"type": "hdf5", "path": mat, "dataset": "/#refs#/detected_1_3_7"}
    assert r["file_name"] == os.path.join(str(root), "images_detected", "1_003_2_07.png")
    rgb = _image(1, 3, 7)
    assert np.array_equal(read_image(r, "RGB"), rgb)
    assert np.array_equal(read_image(r, "BGR"), rgb[:, :, ::-1])
    assert not os.path.exists(root / "images_detected")  # nothing written to disk
    train = load_cuhk03(str(root), "train", "detected")
    assert [r["person_id"] for r in train] == [0, 0, 0, 1, 1]
    assert [r["image_source"]["dataset"] for r in train][3:] == [
        "/#refs#/detected_2_1_1",
        "/#refs#/detected_2_1_6",
    ]


def test_cuhk03_empty_slot(root):
    names = NAMES[:3] + ["1_002_1_03.png"]  # slot 3 of (1, 2) is empty in the release
    _save_config(
        root / "cuhk03_new_protocol_config_detected.mat",
        names,
        [1, 1, 1, 2],
        [1, 1, 2, 1],
        train=[1, 4],
        query=[2],
        gallery=[3],
    )
    with pytest.raises(ImageReadError, match=r"cuhk-03.mat: image '1_002_1_03.png' .*empty slot"):
        load_cuhk03(str(root), "train", "detected")


def test_cuhk03_person_outside_release(root):
    names = NAMES[:3] + ["2_009_1_01.png"]
    _save_config(
        root / "cuhk03_new_protocol_config_detected.mat",
        names,
        [1, 1, 1, 9],
        [1, 1, 2, 1],
        train=[1, 4],
        query=[2],
        gallery=[3],
    )
    with pytest.raises(
        DatasetFormatError, match=r"'2_009_1_01.png' names person 9 of camera pair 2, which has 2"
    ):
        load_cuhk03(str(root), "train", "detected")


def test_cuhk03_duplicated_index(root, caplog):
    _save_config(root / "cuhk03_new_protocol_config_labeled.mat", train=TRAIN_IDX + [5])
    with caplog.at_level(logging.WARNING):
        train = load_cuhk03(str(root), "train", "labeled")
    assert len(train) == 5
    assert "duplicated index (dropped): 1 (e.g. row 5)" in caplog.text


def test_cuhk03_splits(root):
    assert [s.name for s in cuhk03.SPLITS] == [
        f"cuhk03_{v}_{s}" for v in ("labeled", "detected") for s in ("train", "query", "gallery")
    ]
    spec = cuhk03.SPLITS[4]
    assert spec.links == {"gallery": "cuhk03_detected_gallery"} and spec.evaluator_type == "reid"
    assert cuhk03.SPLITS[2].links == {"query": "cuhk03_labeled_query"}
    assert all(s.domain == "cuhk03" and s.labeled and s.task == "reid" for s in cuhk03.SPLITS)
    assert "image_source" in spec.loader(str(root), spec.split)[0]  # detected: no PNG folder


def test_cuhk03_missing_root_and_files(tmp_path, root):
    with pytest.raises(DatasetNotFoundError, match=r"nope.*datasets/README.md.*'CUHK03'"):
        load_cuhk03(str(tmp_path / "nope"), "train")
    os.remove(root / "cuhk03_new_protocol_config_labeled.mat")
    with pytest.raises(DatasetNotFoundError, match=r"cuhk03_new_protocol_config_labeled.mat"):
        load_cuhk03(str(root), "train", "labeled")
    os.remove(root / "cuhk03_release" / "cuhk-03.mat")
    with pytest.raises(
        DatasetNotFoundError, match=r"images_detected' or the raw release .*cuhk-03.mat"
    ):
        load_cuhk03(str(root), "train", "detected")


def test_cuhk03_missing_png(root):
    os.remove(root / "images_labeled" / "1_003_2_07.png")
    with pytest.raises(
        ImageReadError, match=r"not found: .*images_labeled/1_003_2_07.png \(1 of 5"
    ):
        load_cuhk03(str(root), "gallery", "labeled")


def test_cuhk03_corrupt_files(root):
    cfg = root / "cuhk03_new_protocol_config_labeled.mat"
    cfg.write_bytes(b"MATLAB 5.0 garbage" * 3)
    with pytest.raises(DatasetFormatError, match=r"config_labeled.mat: not a readable MATLAB v5"):
        load_cuhk03(str(root), "train", "labeled")
    os.replace(root / "cuhk03_release" / "cuhk-03.mat", cfg)  # a v7.3 file where v5 is expected
    with pytest.raises(DatasetFormatError, match=r"config_labeled.mat: not a readable MATLAB v5"):
        load_cuhk03(str(root), "train", "labeled")
    (root / "cuhk03_release" / "cuhk-03.mat").write_bytes(b"not hdf5")
    with pytest.raises(DatasetFormatError, match=r"cuhk-03.mat: not a MATLAB v7.3 \(HDF5\) file"):
        load_cuhk03(str(root), "train", "detected")


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(drop=("camId",)), r"missing variable 'camId'"),
        (dict(drop=("filelist",)), r"missing variable 'filelist'"),
        (dict(train=[0, 4]), r"'train_idx' must hold 1-based rows 1..16, got 0"),
        (dict(train=[4, 17]), r"'train_idx' must hold 1-based rows 1..16, got 17"),
        (
            dict(cams=[2] + CAMS[1:]),
            r"filelist\[0\]: camId is 2 but the name '1_001_1_01.png' says view 1",
        ),
        (
            dict(labels=[1, 1, 2] + LABELS[3:]),
            r"filelist\[2\]: label 2 of '1_001_2_06.png' disagrees",
        ),
        (dict(labels=LABELS[:-1]), r"'labels' has 15 rows, expected 16"),
        (dict(names=["1_001_1_1.png"] + NAMES[1:]), r"filelist\[0\]: expected an image name like"),
        (dict(names=["1_001_1_11.png"] + NAMES[1:]), r"got '1_001_1_11.png'"),
    ],
)
def test_cuhk03_malformed_config(root, kwargs, message):
    _save_config(root / "cuhk03_new_protocol_config_labeled.mat", **kwargs)
    with pytest.raises(DatasetFormatError, match=r"config_labeled.mat.*" + message):
        load_cuhk03(str(root), "train", "labeled")
