"""An UnsafePathError names the annotation file (and line or field) that held the path, and the
loader refuses the path before it touches it (no stat, no open, no read)."""
import json
import os

import numpy as np
import pytest
import scipy.io

from hpps_d2.data.datasets import (
    crowdhuman,
    cuhk_sysu,
    luperson,
    msmt17,
    posetrack21,
    prw,
)
from hpps_d2.data.datasets.catalog import load_split
from hpps_d2.data.datasets.common import UnsafePathError
from tests.data.test_cuhk_sysu import IMAGES, U16, _write_images_mat, cuhk  # noqa: F401
from tests.data.test_luperson import KEYS, _write_lmdb, _write_keys
from tests.data.test_luperson import root as lup  # noqa: F401 (fixture)
from tests.data.test_msmt17 import v1  # noqa: F401 (fixture)
from tests.data.test_prw import TEST, TRAIN, _frame_list, _write_queries
from tests.data.test_prw import prw as prw_root  # noqa: F401 (fixture)
from tests.helpers import write_image


def _spec(splits, name):
    (spec,) = [s for s in splits if s.name == name]
    return spec


@pytest.fixture
def touched(monkeypatch):
    """Every path given to os.path.exists / isfile / isdir, PIL's Image.open or a .mat read."""
    import PIL.Image

    from hpps_d2.data.datasets import matlab

    seen = []

    def spy(fn):
        def wrapper(path, *args, **kwargs):
            seen.append(os.fspath(path))
            return fn(path, *args, **kwargs)

        return wrapper

    for name in ("exists", "isfile", "isdir"):
        monkeypatch.setattr(os.path, name, spy(getattr(os.path, name)))
    monkeypatch.setattr(PIL.Image, "open", spy(PIL.Image.open))
    monkeypatch.setattr(matlab, "read_mat_variable", spy(matlab.read_mat_variable))
    monkeypatch.setattr(prw, "read_mat_variable", spy(prw.read_mat_variable))
    return seen


def _outside(seen, root):
    """The paths touched outside the dataset folder ``root``."""
    return [p for p in seen if "outside" in p]


def test_crowdhuman_id_names_odgt_line(tmp_path, touched):
    root = tmp_path / "CrowdHuman"
    write_image(str(root / "Images" / "a.jpg"), 20, 20)
    write_image(str(tmp_path / "outside" / "x.jpg"), 20, 20)
    lines = [{"ID": "a", "gtboxes": []}, {"ID": "../../outside/x", "gtboxes": []}]
    (root / "annotation_train.odgt").write_text("".join(json.dumps(o) + "\n" for o in lines))
    touched.clear()  # from here on: the loader's own calls
    with pytest.raises(UnsafePathError) as e:
        load_split(_spec(crowdhuman.SPLITS, "crowdhuman_train"), str(root))
    msg = str(e.value)
    assert f"in {root / 'annotation_train.odgt'}, line 2" in msg and "../../outside/x.jpg" in msg
    assert not _outside(touched, root)


def test_posetrack21_file_name_names_json_field(tmp_path, touched):
    root = tmp_path / "PoseTrack21"
    os.makedirs(root / "posetrack_person_search")
    write_image(str(root / "images/train/v/000000.jpg"), 20, 20)
    images = [
        {"id": 1, "file_name": "images/train/v/000000.jpg"},
        {"id": 2, "file_name": "/etc/hostname"},
    ]
    with open(root / "posetrack_person_search" / "train.json", "w") as f:
        json.dump({"images": images, "annotations": []}, f)
    touched.clear()  # from here on: the loader's own calls
    with pytest.raises(UnsafePathError) as e:
        load_split(_spec(posetrack21.SPLITS, "posetrack21_train"), str(root))
    msg = str(e.value)
    train_json = root / "posetrack_person_search" / "train.json"
    assert f"in {train_json} images[1].file_name" in msg and "'/etc/hostname'" in msg
    assert "/etc/hostname" not in touched


def test_posetrack21_query_image_names_the_gallery_json(tmp_path, touched):
    root = tmp_path / "PoseTrack21"
    os.makedirs(root / "posetrack_person_search")
    write_image(str(tmp_path / "outside" / "x.jpg"), 20, 20)
    val = {"images": [{"id": 5, "file_name": "../outside/x.jpg"}], "annotations": []}
    query = {"annotations": [{"id": 1, "image_id": 5, "bbox": [1, 1, 5, 5], "person_id": 3}]}
    for name, data in (("val.json", val), ("query.json", query)):
        with open(root / "posetrack_person_search" / name, "w") as f:
            json.dump(data, f)
    touched.clear()  # from here on: the loader's own calls
    with pytest.raises(UnsafePathError) as e:
        load_split(_spec(posetrack21.SPLITS, "posetrack21_query"), str(root))
    val_json = root / "posetrack_person_search" / "val.json"
    assert f"(found in {val_json} images[0].file_name)" in str(e.value)
    assert not _outside(touched, root)


def test_msmt17_list_line_names_list_file_and_is_not_stat(v1, touched):  # noqa: F811
    list_file = v1 / "MSMT17_V1" / "list_train.txt"
    with open(list_file, "a") as f:
        f.write("../../outside/0005_000_01_0303morning_0008_0.jpg 5\n")
    touched.clear()  # from here on: the loader's own calls
    with pytest.raises(UnsafePathError) as e:
        load_split(_spec(msmt17.SPLITS, "msmt17_train"), str(v1))
    msg = str(e.value)
    assert f"in {list_file}, line 5" in msg and "../../outside/0005_000_01" in msg
    assert not _outside(touched, v1)  # not even os.path.exists


def test_prw_frame_name_names_frame_list(prw_root, tmp_path, touched):  # noqa: F811
    # a real annotation outside the dataset: only the path check keeps the loader from reading it
    os.makedirs(tmp_path / "outside")
    outside_mat = tmp_path / "outside" / "c1s1_000151.jpg.mat"
    scipy.io.savemat(str(outside_mat), {"box_new": np.zeros((0, 5))})
    names = list(TRAIN) + ["../../outside/c1s1_000151"]
    scipy.io.savemat(str(prw_root / "frame_train.mat"), {"img_index_train": _frame_list(names)})
    touched.clear()  # from here on: the loader's own calls
    with pytest.raises(UnsafePathError) as e:
        load_split(_spec(prw.SPLITS, "prw_train"), str(prw_root))
    msg = str(e.value)
    assert f"in {prw_root / 'frame_train.mat'} img_index_train[3]" in msg
    assert "../../outside/c1s1_000151.jpg.mat" in msg
    assert not _outside(touched, prw_root)


def test_prw_query_frame_names_query_info_line(prw_root, touched):  # noqa: F811
    _write_queries(prw_root, ["7 1 1 10 20 c1s2_000010", "7 1 1 10 20 ../../outside/c1s2_000010"])
    touched.clear()  # from here on: the loader's own calls
    with pytest.raises(UnsafePathError) as e:
        load_split(_spec(prw.SPLITS, "prw_query"), str(prw_root))
    msg = str(e.value)
    assert f"in {prw_root / 'query_info.txt'}, line 2" in msg and "../../outside/c1s2_000010" in msg
    assert not _outside(touched, prw_root)  # neither the frame nor the query_box crop


def test_prw_query_gallery_frames_names_frame_test(prw_root, touched):  # noqa: F811
    names = list(TEST) + ["/outside/c1s2_000010"]
    scipy.io.savemat(str(prw_root / "frame_test.mat"), {"img_index_test": _frame_list(names)})
    touched.clear()  # from here on: the loader's own calls
    with pytest.raises(UnsafePathError) as e:
        load_split(_spec(prw.SPLITS, "prw_query"), str(prw_root))
    assert f"in {prw_root / 'frame_test.mat'} img_index_test[3]" in str(e.value)
    assert not _outside(touched, prw_root)


def test_cuhk_sysu_imname_names_images_mat(cuhk, tmp_path, touched):  # noqa: F811
    write_image(str(tmp_path / "outside" / "s9.jpg"), 50, 50)
    images = IMAGES + [("../../../outside/s9.jpg", (50, 50), [[1, 1, 10, 10]], U16)]
    _write_images_mat(cuhk, images)
    touched.clear()  # from here on: the loader's own calls
    with pytest.raises(UnsafePathError) as e:
        load_split(_spec(cuhk_sysu.SPLITS, "cuhk_sysu_train"), str(cuhk))
    msg = str(e.value)
    assert f"in {cuhk / 'annotation' / 'Images.mat'} Img[7].imname" in msg
    assert "../../../outside/s9.jpg" in msg
    assert not _outside(touched, cuhk)


def test_luperson_key_names_keys_pkl(lup, monkeypatch):  # noqa: F811
    import shutil

    bad = "../../outside/k"
    shutil.rmtree(lup / "lmdb")
    _write_lmdb(lup / "lmdb", KEYS + [bad])  # the LMDB holds it: only the path check stops it
    _write_keys(lup, KEYS + [bad])
    checked = []
    monkeypatch.setattr(luperson, "_check_keys_exist", lambda d, keys: checked.append(keys))
    with pytest.raises(UnsafePathError) as e:
        load_split(_spec(luperson.SPLITS, "luperson_30k"), str(lup))
    msg = str(e.value)
    assert f"in {lup / 'keys.pkl'} keys[{len(KEYS)}]" in msg and bad in msg
    assert not checked  # refused before the LMDB is opened


def test_safety_net_still_refuses_without_file(tmp_path):
    from hpps_d2.data.datasets.common import check_record_paths

    with pytest.raises(UnsafePathError, match="record 0 .*field 'file_name'"):
        check_record_paths([{"file_name": "/etc/hostname", "image_id": 1}], str(tmp_path), "x")


# ECP image paths come from the label files' own names and CUHK03 names must match
# 'pair_person_view_slot.png', so their annotation text cannot carry '..' or '/': these tests
# confine the split to a narrower folder to show that the image is refused before it is stat'd.


def test_ecp_image_refused_before_stat_names_label_file(tmp_path, touched):
    from hpps_d2.data.datasets.common import confine_paths
    from hpps_d2.data.datasets.ecp import load_ecp
    from tests.data.test_ecp import _frame, _obj, _write_frame

    root = tmp_path / "ECP"
    label = _write_frame(root, "train", "berlin", 7, _frame([_obj("pedestrian", (0, 0, 10, 30))]))
    touched.clear()
    with confine_paths(str(root / "day" / "labels"), "ecp_day_train", "ECP"):
        with pytest.raises(UnsafePathError) as e:
            load_ecp(str(root), "train")
    assert f"(found in {label})" in str(e.value)
    assert not [p for p in touched if p.endswith(".png")]


def test_cuhk03_image_refused_before_stat_names_config(tmp_path, touched):
    from hpps_d2.data.datasets.common import confine_paths
    from hpps_d2.data.datasets.cuhk03 import load_cuhk03
    from tests.data import test_cuhk03

    root = test_cuhk03.root.__wrapped__(tmp_path)
    touched.clear()
    with confine_paths(str(root / "cuhk03_release"), "cuhk03_labeled_train", "CUHK03"):
        with pytest.raises(UnsafePathError) as e:
            load_cuhk03(str(root), "train")
    cfg = root / "cuhk03_new_protocol_config_labeled.mat"
    assert f"(found in {cfg} filelist[" in str(e.value)
    assert not [p for p in touched if p.endswith(".png")]
