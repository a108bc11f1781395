import multiprocessing
import os

import cv2
import h5py
import lmdb
import numpy as np
import pytest
from PIL import Image

from hpps_d2.data import image_io
from hpps_d2.data.datasets.common import ImageReadError
from hpps_d2.data.image_io import read_image

RGB = np.random.default_rng(0).integers(0, 255, (5, 7, 3), dtype=np.uint8)


@pytest.fixture
def lmdb_dir(tmp_path):
    path = str(tmp_path / "lmdb")
    env = lmdb.open(path, map_size=1 << 20)
    with env.begin(write=True) as txn:
        # PNG bytes decode losslessly, so pixels can be compared exactly.
        txn.put(b"00_01_0002_00000003", cv2.imencode(".png", RGB[:, :, ::-1])[1].tobytes())
        txn.put(
            b"jpeg", cv2.imencode(".jpg", np.full((8, 4, 3), (20, 120, 220), np.uint8))[1].tobytes()
        )
        txn.put(b"garbage", b"not an image")
    env.close()
    return path


@pytest.fixture
def mat_file(tmp_path):
    path = str(tmp_path / "cuhk-03.mat")
    with h5py.File(path, "w") as f:
        f.create_dataset("#refs#/a/b", data=RGB.T)  # MATLAB writes (H, W, 3) as (3, W, H)
        f.create_dataset("#refs#/empty", data=np.zeros(2, dtype=np.uint64))
    return path


def _lmdb(path, key):
    return {
        "file_name": os.path.join(path, key),
        "image_source": {"type": "lmdb", "path": path, "key": key},
    }


def _hdf5(path, name):
    return {"file_name": "x.png", "image_source": {"type": "hdf5", "path": path, "dataset": name}}


def test_read_file_bgr_rgb(tmp_path):
    path = str(tmp_path / "a.png")
    Image.fromarray(RGB).save(path)
    rgb = read_image({"file_name": path}, "RGB")
    assert rgb.dtype == np.uint8 and np.array_equal(rgb, RGB)
    assert np.array_equal(read_image({"file_name": path}), RGB[:, :, ::-1])  # BGR by default
    gray = str(tmp_path / "g.png")
    Image.fromarray(RGB[:, :, 0]).save(gray)
    assert np.array_equal(read_image({"file_name": gray}, "RGB"), np.repeat(RGB[:, :, :1], 3, 2))


def test_read_file_errors(tmp_path):
    with pytest.raises(ImageReadError, match=r"image file not found: .*missing.png"):
        read_image({"file_name": str(tmp_path / "missing.png")})
    (tmp_path / "bad.jpg").write_bytes(b"not a jpeg")
    with pytest.raises(ImageReadError, match=r"cannot decode image .*bad.jpg"):
        read_image({"file_name": str(tmp_path / "bad.jpg")})
    with pytest.raises(ValueError, match=r"format must be one of"):
        read_image({"file_name": str(tmp_path / "bad.jpg")}, "YUV-BT.601")


def test_read_lmdb(lmdb_dir):
    rec = _lmdb(lmdb_dir, "00_01_0002_00000003")
    assert np.array_equal(read_image(rec, "RGB"), RGB)
    bgr = read_image(rec)
    assert np.array_equal(bgr, RGB[:, :, ::-1]) and bgr.flags["C_CONTIGUOUS"]
    jpeg = read_image(_lmdb(lmdb_dir, "jpeg"), "RGB")
    assert jpeg.shape == (8, 4, 3)
    assert np.abs(jpeg.astype(int) - [220, 120, 20]).max() <= 3


def test_read_lmdb_errors(lmdb_dir, tmp_path):
    with pytest.raises(ImageReadError, match=r"key 'nope' not found in LMDB .*lmdb"):
        read_image(_lmdb(lmdb_dir, "nope"))
    with pytest.raises(ImageReadError, match=r"cannot decode .* key 'garbage' in LMDB .*lmdb"):
        read_image(_lmdb(lmdb_dir, "garbage"))
    with pytest.raises(ImageReadError, match=r"image container not found: .*absent"):
        read_image(_lmdb(str(tmp_path / "absent"), "k"))
    (tmp_path / "notlmdb").mkdir()
    (tmp_path / "notlmdb" / "data.mdb").write_bytes(b"\0" * 64)
    with pytest.raises(ImageReadError, match=r"cannot open LMDB .*notlmdb"):
        read_image(_lmdb(str(tmp_path / "notlmdb"), "k"))


def test_read_hdf5(mat_file):
    rec = _hdf5(mat_file, "/#refs#/a/b")
    assert np.array_equal(read_image(rec, "RGB"), RGB)
    assert np.array_equal(read_image(rec, "BGR"), RGB[:, :, ::-1])


def test_read_hdf5_errors(mat_file, tmp_path):
    with pytest.raises(ImageReadError, match=r"dataset '/#refs#/zz' of HDF5 file .*cuhk-03.mat"):
        read_image(_hdf5(mat_file, "/#refs#/zz"))
    with pytest.raises(ImageReadError, match=r"dataset '/#refs#/a' of HDF5 file .*cuhk-03.mat"):
        read_image(_hdf5(mat_file, "/#refs#/a"))  # a group
    with pytest.raises(ImageReadError, match=r"'/#refs#/empty' of HDF5 file .* is not an image"):
        read_image(_hdf5(mat_file, "/#refs#/empty"))
    (tmp_path / "bad.mat").write_bytes(b"MATLAB 7.3 but not HDF5")
    with pytest.raises(ImageReadError, match=r"cannot open HDF5 file .*bad.mat"):
        read_image(_hdf5(str(tmp_path / "bad.mat"), "/x"))
    with pytest.raises(ValueError, match=r"image_source type must be 'lmdb' or 'hdf5', got 'zip'"):
        read_image({"file_name": "x", "image_source": {"type": "zip"}})


def test_handles_cached_per_process(lmdb_dir, mat_file, monkeypatch):
    read_image(_lmdb(lmdb_dir, "jpeg"))
    read_image(_hdf5(mat_file, "/#refs#/a/b"))
    pid = os.getpid()
    env = image_io._HANDLES[(pid, "lmdb", lmdb_dir)]
    h5 = image_io._HANDLES[(pid, "hdf5", mat_file)]
    read_image(_lmdb(lmdb_dir, "jpeg"))
    read_image(_hdf5(mat_file, "/#refs#/a/b"))
    assert image_io._HANDLES[(pid, "lmdb", lmdb_dir)] is env  # reused
    assert image_io._HANDLES[(pid, "hdf5", mat_file)] is h5
    monkeypatch.setattr(image_io.os, "getpid", lambda: pid + 100000)  # as in a forked worker
    assert np.array_equal(read_image(_hdf5(mat_file, "/#refs#/a/b"), "RGB"), RGB)
    assert np.array_equal(read_image(_lmdb(lmdb_dir, "00_01_0002_00000003"), "RGB"), RGB)
    assert image_io._HANDLES[(pid + 100000, "lmdb", lmdb_dir)] is not env
    assert image_io._HANDLES[(pid + 100000, "hdf5", mat_file)] is not h5


def _child_read(lmdb_dir, mat_file):
    a = read_image(_lmdb(lmdb_dir, "00_01_0002_00000003"), "RGB")
    b = read_image(_hdf5(mat_file, "/#refs#/a/b"), "RGB")
    return np.concatenate([a, b]).tolist(), os.getpid()


def test_read_in_forked_worker(lmdb_dir, mat_file):
    read_image(_lmdb(lmdb_dir, "jpeg"))  # the parent opens both containers first
    read_image(_hdf5(mat_file, "/#refs#/a/b"))
    with multiprocessing.get_context("fork").Pool(1) as pool:
        pixels, child_pid = pool.apply_async(_child_read, (lmdb_dir, mat_file)).get(timeout=30)
    assert child_pid != os.getpid()
    assert np.array_equal(np.array(pixels, dtype=np.uint8), np.concatenate([RGB, RGB]))
    assert np.array_equal(read_image(_lmdb(lmdb_dir, "00_01_0002_00000003"), "RGB"), RGB)


def _exif_jpeg_bytes(stored, orientation=6):
    """JPEG bytes of the (H, W, 3) RGB array ``stored`` with an EXIF Orientation tag."""
    import io

    exif = Image.Exif()
    exif[0x0112] = orientation  # 6: "rotate 90 degrees clockwise to display"
    buf = io.BytesIO()
    Image.fromarray(stored).save(buf, format="JPEG", exif=exif, quality=95)
    return buf.getvalue()


def _stored_with_box():
    """A 40 x 60 (H x W) dark image with a bright box x 5..15, y 10..30 (XYXY [5, 10, 15, 30])."""
    stored = np.full((40, 60, 3), 20, np.uint8)
    stored[10:30, 5:15] = 230
    return stored


def test_exif_orientation_ignored_file(tmp_path):
    """Sizes from file headers and decoded pixels agree: the stored pixel order, EXIF ignored."""
    from hpps_d2.data.datasets.common import image_size

    path = tmp_path / "rotated.jpg"
    path.write_bytes(_exif_jpeg_bytes(_stored_with_box()))
    with Image.open(path) as im:
        assert im.getexif()[0x0112] == 6  # the tag really is there
    assert image_size(str(path)) == (40, 60)  # (height, width) from the header
    for fmt in ("RGB", "BGR"):
        img = read_image({"file_name": str(path)}, fmt)
        assert img.shape == (40, 60, 3)
        assert img[12:28, 7:13].min() > 200 and img[:, 20:].max() < 60  # the box's pixels


def test_exif_orientation_ignored_lmdb(tmp_path):
    path = str(tmp_path / "exif_lmdb")
    env = lmdb.open(path, map_size=1 << 20)
    with env.begin(write=True) as txn:
        txn.put(b"k", _exif_jpeg_bytes(_stored_with_box()))
    env.close()
    img = read_image(_lmdb(path, "k"), "RGB")
    assert img.shape == (40, 60, 3)
    assert img[12:28, 7:13].min() > 200 and img[:, 20:].max() < 60


def test_exif_orientation_loader_and_mapper_agree(tmp_path):
    """A PoseTrack21 scene whose JPEG carries EXIF orientation 6: size, pixels and box agree."""
    import json

    from hpps_d2.data.datasets.posetrack21 import load_posetrack21

    root = tmp_path / "PoseTrack21"
    os.makedirs(root / "posetrack_person_search")
    rel = "images/train/000001_bonn_train/000000.jpg"
    os.makedirs(os.path.dirname(root / rel))
    (root / rel).write_bytes(_exif_jpeg_bytes(_stored_with_box()))
    anns = [{"id": 1, "image_id": 1, "bbox": [5, 10, 10, 20], "person_id": 3, "category_id": 1}]
    with open(root / "posetrack_person_search" / "train.json", "w") as f:
        json.dump({"images": [{"id": 1, "file_name": rel}], "annotations": anns}, f)
    (rec,) = load_posetrack21(str(root), "train")
    img = read_image(rec, "RGB")
    assert img.shape[:2] == (rec["height"], rec["width"]) == (40, 60)
    x1, y1, x2, y2 = (int(v) for v in rec["annotations"][0]["bbox"])
    assert (x1, y1, x2, y2) == (5, 10, 15, 30)
    assert img[y1 + 2 : y2 - 2, x1 + 2 : x2 - 2].min() > 200  # the box covers the bright person
