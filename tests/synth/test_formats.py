"""Every file of the world parses as its real format (json, scipy v5 .mat, HDF5, LMDB, images),
with the quirks the loaders must handle."""

import glob
import json
import os
import pickle

import h5py
import lmdb
import numpy as np
import scipy.io
from PIL import Image


def _mat(path):
    m = scipy.io.loadmat(path)
    assert m["__header__"].startswith(b"MATLAB 5.0 MAT-file")
    return {k: v for k, v in m.items() if not k.startswith("__")}


def _size(path):
    with Image.open(path) as im:
        return im.size


def test_crowdhuman(world):
    root, _ = world
    d = os.path.join(root, "CrowdHuman")
    tags, beyond = set(), 0
    for split in ("train", "val"):
        with open(os.path.join(d, f"annotation_{split}.odgt"), encoding="utf-8") as f:
            for line in f:
                obj = json.loads(line)
                assert "," in obj["ID"]
                w, h = _size(os.path.join(d, "Images", obj["ID"] + ".jpg"))
                for g in obj["gtboxes"]:
                    tags.add((g["tag"], g["extra"].get("ignore", 0)))
                    assert all(isinstance(v, int) for v in g["fbox"] + g["vbox"] + g["hbox"])
                    x, y, bw, bh = g["fbox"]
                    beyond += x < 0 or y < 0 or x + bw > w or y + bh > h
                    if (
                        g["tag"] == "person"
                    ):  # the visible box lies inside the full box and the image
                        vx, vy, vw, vh = g["vbox"]
                        assert x <= vx and y <= vy and vx + vw <= x + bw and vy + vh <= y + bh
                        assert vx >= 0 and vy >= 0 and vx + vw <= w and vy + vh <= h
    assert ("person", 0) in tags and ("mask", 1) in tags
    assert beyond > 0  # some full-body boxes leave the image


def test_ecp(world):
    root, _ = world
    labels = sorted(glob.glob(os.path.join(root, "ECP", "day", "labels", "*", "*", "*.json")))
    assert labels
    seen = set()
    for path in labels:
        with open(path, encoding="utf-8") as f:
            frame = json.load(f)
        assert frame["identity"] == "frame"
        img = path.replace(os.sep + "labels" + os.sep, os.sep + "img" + os.sep).replace(
            ".json", ".png"
        )
        assert _size(img) == (frame["imagewidth"], frame["imageheight"])
        assert frame["imagewidth"] * 1024 == frame["imageheight"] * 1920  # ECP's aspect ratio
        name = os.path.basename(path)[:-5]
        assert (
            name.split("_")[0] == os.path.basename(os.path.dirname(path))
            and len(name.split("_")[1]) == 5
        )
        for c in frame["children"]:
            seen.add(c["identity"])
            assert (
                0 <= c["x0"] < c["x1"] <= frame["imagewidth"]
                and 0 <= c["y0"] < c["y1"] <= frame["imageheight"]
            )
            if c["identity"] == "rider":
                assert [k["identity"] for k in c["children"]] == ["bicycle"]
    assert "pedestrian" in seen


def test_msmt17(world):
    root, manifest = world
    d = os.path.join(root, "msmt17", "MSMT17_V1")
    for key, folder in (
        ("train", "train"),
        ("val", "train"),
        ("query", "test"),
        ("gallery", "test"),
    ):
        with open(os.path.join(d, f"list_{key}.txt"), encoding="utf-8") as f:
            lines = f.read().splitlines()
        for line in lines:
            rel, pid = line.split(" ")
            parts = os.path.basename(rel).split("_")
            assert int(parts[0]) == int(pid) == int(rel.split("/")[0])
            assert 1 <= int(parts[2]) <= 15 and parts[3][4:] in ("morning", "noon", "afternoon")
            assert os.path.isfile(os.path.join(d, folder, rel))
    assert manifest["splits"]["msmt17_train"]["images"] > 0


def test_cuhk03(world):
    root, _ = world
    d = os.path.join(root, "cuhk03")
    with h5py.File(os.path.join(d, "cuhk03_release", "cuhk-03.mat"), "r") as f:
        for version in ("labeled", "detected"):
            assert f[version].shape == (1, 5)
            pair = f[f[version][0][0]][:].T
            assert pair.shape[1] == 10
            img = f[pair[0][0]][:].T
            assert img.ndim == 3 and img.shape[2] == 3 and img.dtype == np.uint8
            empties = [f[r][:] for row in pair for r in row if f[r][:].ndim < 3]
            assert all(e.shape == (2,) for e in empties)
        assert f["testsets"].shape == (1, 20)
        t = f[f["testsets"][0][0]][:].T
        assert t.shape[1] == 2 and t.min() >= 1
    with open(os.path.join(d, "cuhk03_release", "cuhk-03.mat"), "rb") as fh:
        assert fh.read(19) == b"MATLAB 7.3 MAT-file"
    for version in ("labeled", "detected"):
        m = _mat(os.path.join(d, f"cuhk03_new_protocol_config_{version}.mat"))
        n = len(m["filelist"])
        assert m["labels"].shape == (n, 1) and m["labels"].dtype == np.uint16
        assert m["camId"].dtype == np.uint8 and set(m["camId"].ravel()) == {1, 2}
        idx = {k: m[k].ravel().astype(int) - 1 for k in ("train_idx", "query_idx", "gallery_idx")}
        assert sorted(np.concatenate(list(idx.values()))) == list(range(n))
        names = [str(x[0][0]) for x in m["filelist"]]
        q = [(int(m["labels"][i, 0]), int(names[i].split("_")[2])) for i in idx["query_idx"]]
        assert len(q) == len(set(q)) == 2 * len({p for p, _ in q})  # one query per view per test id
        if version == "labeled":
            assert all(os.path.isfile(os.path.join(d, "images_labeled", n)) for n in names)


def test_luperson(world):
    root, manifest = world
    d = os.path.join(root, "luperson")
    with open(os.path.join(d, "keys.pkl"), "rb") as f:
        keys = pickle.load(f)
    assert isinstance(keys, list) and keys == sorted(keys)
    assert len(keys) == manifest["splits"]["luperson_30k"]["images"]
    env = lmdb.open(os.path.join(d, "lmdb"), readonly=True, lock=False)
    with env.begin() as txn:
        assert txn.stat()["entries"] == len(keys)
        data = txn.get(keys[0].encode())
    env.close()
    assert data[:2] == b"\xff\xd8"  # JPEG
    assert [len(p) for p in keys[0].split("_")] == [2, 2, 4, 8]


def test_prw(world):
    root, _ = world
    d = os.path.join(root, "PRW")
    train = [str(x[0][0]) for x in _mat(os.path.join(d, "frame_train.mat"))["img_index_train"]]
    test = [str(x[0][0]) for x in _mat(os.path.join(d, "frame_test.mat"))["img_index_test"]]
    assert not set(train) & set(test)
    names, negative, unlabeled = set(), 0, 0
    for frame in train + test:
        m = _mat(os.path.join(d, "annotations", frame + ".jpg.mat"))
        ((name, boxes),) = m.items()
        names.add(name)
        assert boxes.dtype == np.float64 and boxes.shape[1] == 5 and len(boxes) >= 1
        negative += int((boxes[:, 1:3] < 0).any())
        unlabeled += int((boxes[:, 0] == -2).sum())
        assert set(np.unique(boxes[:, 0])) <= {-2} | set(range(1, 10**4))
    assert names == {"box_new", "anno_file", "anno_previous"} and negative and unlabeled
    sizes = {_size(os.path.join(d, "frames", f + ".jpg")) for f in train + test}
    assert len(sizes) == 2  # c6 differs from c1-c5
    with open(os.path.join(d, "query_info.txt"), "rb") as f:
        raw = f.read()
    lines = raw.split(b"\r\n")
    assert lines[-1] == b"" and all(b"\n" not in line for line in lines)
    train_ids = set(_mat(os.path.join(d, "ID_train.mat"))["ID_train"].ravel().astype(int))
    query_ids = set(_mat(os.path.join(d, "ID_test.mat"))["ID_test2"].ravel().astype(int))
    assert not train_ids & query_ids
    for line in lines[:-1]:
        pid, *_, frame = line.decode().split(" ")
        assert int(pid) in query_ids and frame in test
        assert os.path.isfile(os.path.join(d, "query_box", f"{pid}_{frame}.jpg"))


def test_cuhk_sysu(world):
    root, _ = world
    ann = os.path.join(root, "CUHK-SYSU", "annotation")
    img = _mat(os.path.join(ann, "Images.mat"))["Img"]
    assert img.shape[0] == 1 and img.dtype.names == ("imname", "nAppear", "box")
    dtypes, zero = set(), 0
    for imname, n_appear, boxes in img.squeeze():
        assert os.path.isfile(os.path.join(root, "CUHK-SYSU", "Image", "SSM", str(imname[0])))
        assert boxes.shape == (1, int(n_appear[0, 0])) and boxes.shape[1] >= 2
        for loc, _ in boxes.squeeze():
            dtypes.add(loc.dtype)
            assert loc.dtype == (np.uint8 if loc.max() < 256 else np.uint16) and loc.shape == (1, 4)
            zero += int(loc[0, 2] == 0 or loc[0, 3] == 0)
    assert dtypes == {np.dtype(np.uint8), np.dtype(np.uint16)} and zero == 1
    train = _mat(os.path.join(ann, "test", "train_test", "Train.mat"))["Train"]
    assert train.shape[1] == 1 and all(c[0, 0]["scene"].shape[1] >= 2 for c in train.squeeze())
    pool = [str(x[0][0]) for x in _mat(os.path.join(ann, "pool.mat"))["pool"]]
    protocols = sorted(glob.glob(os.path.join(ann, "test", "train_test", "TestG*.mat")))
    assert protocols and all(int(os.path.basename(p)[5:-4]) < len(pool) for p in protocols)
    galleries = {}
    for path in protocols:
        k = int(os.path.basename(path)[5:-4])
        tg = _mat(path)[f"TestG{k}"].squeeze()
        galleries[k] = []
        for query, gallery in tg:
            assert query.shape == (1, 1) and query[0, 0]["idlocate"].dtype == np.uint16
            entries = gallery.squeeze()
            assert len(entries) == k
            empty = [e["idlocate"].size == 0 for e in entries]
            assert empty == sorted(empty)  # positives first
            assert all(
                e["idlocate"].shape == (1, 0) and e["ishard"].shape == (1, 0)
                for e in entries
                if e["idlocate"].size == 0
            )
            galleries[k].append(
                (
                    [str(e["imname"][0]) for e in entries],
                    str(query[0, 0]["imname"][0]),
                    str(query[0, 0]["idname"][0]),
                )
            )
    ks = sorted(galleries)
    for small, big in zip(ks, ks[1:]):  # same queries, nested galleries
        for (gs, q, i), (gb, qb, ib) in zip(galleries[small], galleries[big]):
            assert (q, i) == (qb, ib) and gb[:small] == gs
    g50 = galleries[ks[0]]
    assert any(q in g for g, q, _ in g50)  # a query image in its own gallery
    assert any(len(set(g)) < len(g) for g, _, _ in g50)  # a duplicated gallery entry


def test_posetrack21(world):
    root, _ = world
    d = os.path.join(root, "PoseTrack21")
    data = {}
    for name in ("train", "val", "query"):
        with open(
            os.path.join(d, "posetrack_person_search", f"{name}.json"), encoding="utf-8"
        ) as f:
            data[name] = json.load(f)
    for name in ("train", "val"):
        for im in data[name]["images"]:
            assert im["file_name"].startswith(f"images/{name}/") and os.path.isfile(
                os.path.join(d, im["file_name"])
            )
            assert len(im["ignore_regions_x"]) == len(im["ignore_regions_y"])
        for a in data[name]["annotations"]:
            assert a["category_id"] == 1 and len(a["bbox"]) == 4 and len(a["keypoints"]) == 51
    val_ids = {im["id"] for im in data["val"]["images"]}
    assert {a["image_id"] for a in data["query"]["annotations"]} <= val_ids
    tr = {a["person_id"] for a in data["train"]["annotations"]}
    assert not tr & {a["person_id"] for a in data["val"]["annotations"]}
