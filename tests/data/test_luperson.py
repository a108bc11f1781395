import logging
import os
import pickle

import cv2
import lmdb
import numpy as np
import pytest

from hpps_d2.data.datasets import luperson
from hpps_d2.data.datasets.common import (
    UNLABELED,
    DatasetFormatError,
    DatasetNotFoundError,
    ImageReadError,
)
from hpps_d2.data.datasets.luperson import load_luperson, sample_keys
from hpps_d2.data.image_io import read_image

# Key strings of the official v1 script; the loader must not parse them.
KEYS = [f"{c:02d}_{c + 3:02d}_{v:04d}_{i:08d}" for c in (0, 1) for v in (0, 7) for i in range(3)]


def _jpeg(seed):
    img = np.full((16, 8, 3), (10 * seed) % 250, dtype=np.uint8)
    ok, buf = cv2.imencode(".jpg", img)
    assert ok
    return buf.tobytes()


def _write_lmdb(path, keys):
    env = lmdb.open(str(path), map_size=1 << 22)
    with env.begin(write=True) as txn:
        for k, key in enumerate(keys):
            txn.put(key.encode(), _jpeg(k))
    env.close()


def _write_keys(root, obj):
    with open(root / "keys.pkl", "wb") as f:
        pickle.dump(obj, f)


@pytest.fixture
def root(tmp_path):
    root = tmp_path / "luperson"
    root.mkdir()
    _write_lmdb(root / "lmdb", KEYS)
    _write_keys(root, list(KEYS))
    return root


def test_load_luperson_sample(root):
    recs = load_luperson(str(root), "30k", num_images=5, seed=0)
    idx = sorted(np.random.default_rng(0).choice(len(KEYS), size=5, replace=False).tolist())
    assert [r["image_id"] for r in recs] == [KEYS[i] for i in idx]
    assert [KEYS.index(r["image_id"]) for r in recs] == sorted(
        KEYS.index(r["image_id"]) for r in recs
    )
    r = recs[0]
    lmdb_dir = os.path.join(str(root), "lmdb")
    assert r["image_source"] == {"type": "lmdb", "path": lmdb_dir, "key": r["image_id"]}
    assert r["file_name"] == os.path.join(lmdb_dir, r["image_id"])
    assert all(x["person_id"] == UNLABELED and x["camera_id"] == 0 for x in recs)
    # deterministic, and the seed matters
    assert load_luperson(str(root), "30k", num_images=5, seed=0) == recs
    other = load_luperson(str(root), "30k", num_images=5, seed=1)
    assert [x["image_id"] for x in other] != [x["image_id"] for x in recs]
    # the record reads back the stored JPEG
    img = read_image(r, "BGR")
    assert img.shape == (16, 8, 3)
    assert np.abs(img.astype(int) - (10 * KEYS.index(r["image_id"])) % 250).max() <= 2
    # loading again while read_image holds the environment open in this process
    assert load_luperson(str(root), "30k", num_images=5, seed=0) == recs


def test_luperson_fewer_keys_than_sample(root, caplog):
    with caplog.at_level(logging.WARNING):
        recs = load_luperson(str(root))  # defaults: 30,000 keys, seed 0
    assert [r["image_id"] for r in recs] == KEYS
    assert "only 12 keys exist, fewer than 30000: using all" in caplog.text
    assert [r["image_id"] for r in load_luperson(str(root), num_images=12)] == KEYS
    assert [r["image_id"] for r in load_luperson(str(root), "all", num_images=3)] == KEYS


def test_sample_keys_definition():
    keys = [f"k{i}" for i in range(40000)]
    sample = sample_keys(keys, 30000, 0)
    idx = np.sort(np.random.default_rng(0).choice(40000, size=30000, replace=False))
    assert sample == [keys[i] for i in idx]
    assert len(set(sample)) == 30000


def test_luperson_keys_dict_bytes_and_duplicates(root, caplog):
    keys = [KEYS[3].encode(), KEYS[1], KEYS[3]]
    _write_keys(root, {"keys": keys, "pids": [7, 8, 7], "vids": [0, 0, 0]})
    with caplog.at_level(logging.WARNING):
        recs = load_luperson(str(root))
    assert [r["image_id"] for r in recs] == [KEYS[3], KEYS[1]]
    assert all(r["person_id"] == UNLABELED for r in recs)  # pids are not identities here
    assert "duplicated key (later entry dropped): 1 (e.g. keys[2])" in caplog.text


def test_luperson_splits():
    spec, full, nl = luperson.SPLITS
    assert (spec.name, spec.subdir, spec.split, spec.domain) == (
        "luperson_30k",
        "luperson",
        "30k",
        "luperson",
    )
    assert spec.task == "reid" and not spec.labeled and spec.published == {"images": 30000}
    assert (full.name, full.split, full.task, full.labeled, full.published) == ("luperson_all", "all", "reid", False, {})
    assert (nl.name, nl.subdir, nl.split, nl.domain, nl.labeled) == ("luperson_nl_all", "luperson_nl", "all", "luperson_nl", False)


def test_luperson_missing_root_and_files(tmp_path, root):
    with pytest.raises(DatasetNotFoundError, match=r"nope.*datasets/README.md.*'LUPerson'"):
        load_luperson(str(tmp_path / "nope"))
    os.remove(root / "keys.pkl")
    with pytest.raises(DatasetNotFoundError, match=r"keys.pkl"):
        load_luperson(str(root))


def test_luperson_key_not_in_lmdb(root):
    _write_keys(root, KEYS[:2] + ["99_99_9999_99999999"])
    with pytest.raises(ImageReadError, match=r"key '99_99_9999_99999999' .* LMDB '.*lmdb'"):
        load_luperson(str(root))


@pytest.mark.parametrize(
    "obj, message",
    [
        ("01_02_0003_00000004", r"expected a list of keys .* got str"),
        ({"pids": [1]}, r"got dict without 'keys'"),
        ({"keys": KEYS[:2], "pids": [1]}, r"'pids' must be a sequence with one item per key \(2\)"),
        ([KEYS[0], 5], r"keys\[1\]: keys must be strings, got int"),
    ],
)
def test_luperson_bad_keys(root, obj, message):
    _write_keys(root, obj)
    with pytest.raises(DatasetFormatError, match=r"keys.pkl.*" + message):
        load_luperson(str(root))


def test_luperson_corrupt_pickle_and_lmdb(root):
    (root / "keys.pkl").write_bytes(pickle.dumps(KEYS)[:-5])
    with pytest.raises(DatasetFormatError, match=r"keys.pkl: not a readable pickle"):
        load_luperson(str(root))
    _write_keys(root, KEYS)
    (root / "lmdb" / "data.mdb").write_bytes(b"\0" * 100)
    with pytest.raises(DatasetFormatError, match=r"lmdb: not a readable LMDB environment"):
        load_luperson(str(root))


class _Payload:
    """Unpickling this object would create ``marker`` (the classic pickle code-execution trick)."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


@pytest.mark.parametrize("wrap", [lambda p: p, lambda p: {"keys": list(KEYS), "pids": p}])
def test_luperson_keys_pickle_payload_does_not_run(root, tmp_path, wrap):
    marker = tmp_path / "payload_ran"
    _write_keys(root, wrap(_Payload(str(marker))))
    with pytest.raises(DatasetFormatError) as e:
        load_luperson(str(root))
    assert not marker.exists()
    message = str(e.value)
    assert str(root / "keys.pkl") in message
    assert "refused to load the global 'io.open'" in message  # open pickles as io.open
    assert "nothing from it was executed" in message


def test_luperson_keys_pickle_other_globals_refused(root):
    import collections

    _write_keys(root, collections.OrderedDict(keys=list(KEYS)))
    with pytest.raises(DatasetFormatError, match=r"keys.pkl: refused to load the global 'collections.OrderedDict'"):
        load_luperson(str(root))


def test_luperson_keys_plain_forms_still_load(root):
    for obj in (list(KEYS), tuple(KEYS), {"keys": list(KEYS), "pids": list(range(12))}):
        _write_keys(root, obj)
        assert [r["image_id"] for r in load_luperson(str(root), "all")] == KEYS
    for protocol in range(0, pickle.HIGHEST_PROTOCOL + 1):  # every protocol a writer may use
        (root / "keys.pkl").write_bytes(pickle.dumps({"keys": KEYS, "vids": [0] * 12}, protocol))
        assert [r["image_id"] for r in load_luperson(str(root), "all")] == KEYS
