"""decode_split: every image of a split read by the training reader, each damaged one reported."""
import os

import cv2
import h5py
import lmdb
import numpy as np
import pytest

from hpps_d2.data import check as _check_module
from hpps_d2.data.check import DecodeProblem, decode_split
from hpps_d2.data.datasets.ecp import load_ecp
from hpps_d2.data.datasets.msmt17 import load_msmt17
from tests.data.check_fixtures import write_ecp, write_msmt17
from tests.helpers import write_image


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


_REAL_DECODE = _check_module._decode_one


class _crash_on:
    """A picklable stand-in for check._decode_one that kills its process on one file."""

    def __init__(self, victim):
        self.victim = victim

    def __call__(self, task):
        if task[2] == self.victim:
            import faulthandler
            import signal

            faulthandler.disable()  # pytest's traceback dump would only clutter the output
            os.kill(os.getpid(), signal.SIGSEGV)
        return _REAL_DECODE(task)


def test_a_decoder_crash_in_a_worker_is_reported_not_hung(tmp_path, monkeypatch):
    """A worker killed by a signal (a segfaulting decoder) must not hang the pool: the image that
    killed it is reported as 'crashed' with its file, and every other image is still decoded."""
    import signal

    from hpps_d2.data import check

    paths = write_msmt17(tmp_path)
    records = load_msmt17(str(tmp_path / "msmt17"), "train")
    for i in range(8):  # good crops on both sides of the crashing one
        path = write_image(str(tmp_path / f"extra{i}.jpg"), 16, 8, fmt="JPEG")
        records.insert(0 if i < 4 else len(records), {"file_name": path, "image_id": f"extra{i}"})
    victim = paths["good"]
    monkeypatch.setattr(check, "_decode_one", _crash_on(victim))

    def hung(*_):
        raise TimeoutError("decode_split hung after a worker crash")

    old = signal.signal(signal.SIGALRM, hung)
    signal.alarm(60)
    try:
        problems = decode_split(records, workers=2, split="msmt17_train")
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)
    by_file = {p.file: p for p in problems}
    assert set(by_file) == {victim, paths["zero_byte"], paths["truncated"], paths["folder"]}
    assert [by_file[paths[k]].kind for k in ("zero_byte", "truncated", "folder")] == ["unreadable"] * 3
    assert by_file[victim].kind == "crashed"
    assert victim in by_file[victim].message and "SIGSEGV" in by_file[victim].message
    assert "msmt17_train" in str(by_file[victim])
