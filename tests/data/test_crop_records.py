"""Compact LUPerson crop records (issue 13): the same records as the list of dicts, at every step
from the loader to the data-loader's dataset, and the same refusals."""
import numpy as np
import pytest

from hpps_d2.data.build import SeededMapDataset, filter_empty_scenes, train_subset
from hpps_d2.data.crop_records import ChainedRecords, CropRecords, unusual_keys
from hpps_d2.data.datasets import luperson
from hpps_d2.data.datasets.catalog import load_split
from hpps_d2.data.datasets.common import UNLABELED, UnsafePathError, count_identities
from hpps_d2.data.unify import unify
from tests.data.test_luperson import KEYS, _write_keys, _write_lmdb, root  # noqa: F401


def test_a_crop_record_by_hand(tmp_path):
    recs = CropRecords("/d/lmdb", np.array([b"00_01_0002_00000003", b"k\xc3\xa9"]))
    assert len(recs) == 2 and recs.nbytes == 2 * 19
    assert recs[1] == {"file_name": "/d/lmdb/k\u00e9", "image_id": "k\u00e9", "person_id": UNLABELED, "camera_id": 0,
                       "image_source": {"type": "lmdb", "path": "/d/lmdb", "key": "k\u00e9"}}
    assert recs[-2]["image_id"] == "00_01_0002_00000003"
    with pytest.raises(IndexError):
        recs[2]
    u = recs.unified(40, source="lup", crop=True)
    assert [r["person_id"] for r in u] == [40, 41] and u[0]["source"] == "lup" and u[0]["crop"] is True
    assert count_identities(recs) == 0 and count_identities(u) == 2
    with pytest.raises(ValueError, match="subset before unify"):
        u.take([0])


def test_unusual_keys_by_hand():
    keys = np.array([b"a", b"..", b"b/c", b".", b"x..y", b"", b"/abs", b"d\x00e"])
    assert unusual_keys(keys).tolist() == [1, 2, 3, 5, 6, 7]


def _other_sources():
    scene = {"file_name": "s.jpg", "image_id": "s0", "height": 50, "width": 50,
             "annotations": [{"bbox": [1, 1, 9, 20], "bbox_mode": 0, "person_id": -1, "iscrowd": 0}] * 3}
    empty = dict(scene, image_id="s1", annotations=[])
    crops = [{"file_name": f"m{i}.jpg", "image_id": f"m{i}", "person_id": 7 + i % 2, "camera_id": 1} for i in range(4)]
    return [("det", [scene, empty], "detection", False), ("msmt", crops, "reid", True)]


def test_compact_equals_the_list_from_loader_to_loader_dataset(root):  # noqa: F811
    listed = luperson.load_luperson(str(root), "all")
    compact = luperson.load_luperson(str(root), "all", compact=True)
    assert isinstance(listed, list) and isinstance(compact, CropRecords)
    assert list(compact) == listed and len(listed) == len(KEYS)
    # the nested training fraction picks the same crops
    assert list(train_subset(compact, 0.5)) == train_subset(listed, 0.5)
    assert filter_empty_scenes(compact) is compact
    # unification numbers the same pseudo-identities, after the labeled ones
    a = unify(_other_sources() + [("lup", listed, "reid", False)])
    b = unify(_other_sources() + [("lup", compact, "reid", False)])
    assert isinstance(b.records, ChainedRecords) and isinstance(a.records, list)
    assert list(b.records) == a.records and len(b.records) == len(a.records)
    assert [b.records[i] for i in (-1, 0, 3, len(a.records) - len(KEYS))] == [a.records[i] for i in (-1, 0, 3, len(a.records) - len(KEYS))]
    assert (a.num_identities, a.num_labeled, a.sources) == (b.num_identities, b.num_labeled, b.sources)
    lup = a.records[-len(KEYS):]
    assert [r["person_id"] for r in lup] == list(range(2 + 3, 2 + 3 + len(KEYS)))  # 2 labeled, 3 boxes
    # the loader's dataset hands the mapper the same record for every index
    da, db = SeededMapDataset(a.records, dict, 0), SeededMapDataset(b.records, dict, 0)
    assert [db[(k, i)] for k, i in enumerate(range(len(db)))] == [da[(k, i)] for k, i in enumerate(range(len(da)))]


def test_compact_split_refuses_a_key_that_leaves_the_dataset(root):  # noqa: F811
    import shutil

    bad = "../../outside/k"
    shutil.rmtree(root / "lmdb")
    _write_lmdb(root / "lmdb", KEYS + [bad])
    _write_keys(root, KEYS + [bad])
    spec = next(s for s in luperson.SPLITS if s.name == "luperson_all")
    with pytest.raises(UnsafePathError) as e:
        load_split(spec, str(root))
    assert f"keys[{len(KEYS)}]" in str(e.value) and bad in str(e.value)


def test_compact_split_records_checked_like_a_list(root, monkeypatch):  # noqa: F811
    """check_record_paths over CropRecords checks the first record and the unusual keys only,
    and decides as the check of every record does."""
    from hpps_d2.data.datasets import common

    seen = []
    real = common.path_inside
    monkeypatch.setattr(common, "path_inside", lambda p, r: seen.append(p) or real(p, r))
    recs = CropRecords(str(root / "lmdb"), np.array([k.encode() for k in KEYS] + [b"x/y"]))
    common.check_record_paths(recs, str(root), "lup")
    assert len(seen) == 2 * 2  # file_name and image_source.path of records 0 and 12
    with pytest.raises(UnsafePathError, match="record 0"):
        common.check_record_paths(recs, str(root / "elsewhere"), "lup")
