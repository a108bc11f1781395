"""decode_split: every image of a split read by the training reader, each damaged one reported."""
import os

import cv2
import h5py
import lmdb
import numpy as np
import pytest

from hpps_d2.data.check import DecodeProblem, decode_split
from hpps_d2.data.datasets.ecp import load_ecp
from hpps_d2.data.datasets.msmt17 import load_msmt17
from tests.data.check_fixtures import write_ecp, write_msmt17


@pytest.mark.parametrize("workers", [1, 2])
def test_damaged_crops_each_reported_with_file_and_split(tmp_path, workers):
    paths = write_msmt17(tmp_path)
    records = load_msmt17(str(tmp_path / "msmt17"), "train")
    problems = decode_split(records, workers=workers, split="msmt17_train")
    assert all(isinstance(p, DecodeProblem) for p in problems)
    by_file = {p.file: p for p in problems}
    assert set(by_file) == {paths["zero_byte"], paths["truncated"], paths["folder"]}
    for p in problems:
        assert p.split == "msmt17_train" and p.kind == "unreadable"
        assert p.file in p.message
        assert p.file in str(p) and "msmt17_train" in str(p)
    assert "truncated" in by_file[paths["truncated"]].message
    assert "cannot identify image file" in by_file[paths["zero_byte"]].message
    assert "Is a directory" in by_file[paths["folder"]].message


def test_image_size_differing_from_annotation_is_reported(tmp_path):
    paths = write_ecp(tmp_path)
    records = load_ecp(str(tmp_path / "ECP"), "train")
    problems = decode_split(records, workers=1, split="ecp_day_train")
    assert [(p.kind, p.file) for p in problems] == [("mis-sized", paths["berlin_00001"])]
    assert "decoded 10x20 (height x width) but the record says 100x200" in problems[0].message


def test_lmdb_values_and_hdf5_slots(tmp_path):
    db = str(tmp_path / "lup.lmdb")
    ok, jpg = cv2.imencode(".jpg", np.full((12, 6, 3), 128, np.uint8))
    env = lmdb.open(db, map_size=1 << 20)
    with env.begin(write=True) as txn:
        txn.put(b"good", jpg.tobytes())
        txn.put(b"garbage", b"not a jpeg")
    env.close()
    mat = str(tmp_path / "cuhk-03.mat")
    with h5py.File(mat, "w") as f:
        f["good"] = np.zeros((3, 6, 12), np.uint8)  # MATLAB's transposed (H, W, 3)
        f["flat"] = np.zeros((3, 4), np.uint8)
    records = [
        {"file_name": f"{db}/{k}", "image_source": {"type": "lmdb", "path": db, "key": k}}
        for k in ("good", "garbage", "absent")
    ] + [
        {"file_name": f"{mat}/{k}", "image_source": {"type": "hdf5", "path": mat, "dataset": k}}
        for k in ("good", "flat")
    ]
    problems = decode_split(records, workers=1, split="s")
    assert sorted(p.file for p in problems) == sorted(
        [f"{db} key 'garbage'", f"{db} key 'absent'", f"{mat} dataset 'flat'"]
    )
    assert all(p.kind == "unreadable" for p in problems)
    assert any("key 'absent' not found in LMDB" in p.message for p in problems)


def test_clean_split_has_no_problem_and_each_image_is_read_once(tmp_path):
    write_msmt17(tmp_path, damaged=False)
    records = load_msmt17(str(tmp_path / "msmt17"), "train")
    assert decode_split(records + records, workers=2, split="msmt17_train") == []
    assert decode_split([], workers=2, split="msmt17_train") == []


def test_record_without_image_is_a_problem_not_a_crash():
    problems = decode_split([{"image_id": "x"}], workers=1, split="s")
    assert len(problems) == 1 and problems[0].kind == "unreadable"
    assert "image_id 'x'" in problems[0].file and "file_name" in problems[0].message
