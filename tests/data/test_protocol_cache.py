"""The protocol cache (hpps_d2/data/protocol_cache.py) and the query loaders that use it."""
import json
import logging
import os

import numpy as np
import pytest

from hpps_d2.data import protocol_cache
from hpps_d2.data.datasets import cuhk_sysu, posetrack21
from hpps_d2.data.datasets import prw as prw_loader
from hpps_d2.data.datasets.common import confine_paths
from tests.data.test_cuhk_sysu import GALLERY_50, GALLERY_100, IMAGES, Q0, Q1
from tests.data.test_cuhk_sysu import _write_images_mat, _write_protocol
from tests.data.test_cuhk_sysu import cuhk  # noqa: F401  (fixture)
from tests.data.test_posetrack21 import QUERY, _write_json
from tests.data.test_posetrack21 import pt21  # noqa: F401  (fixture)
from tests.data.test_prw import QUERY_LINES, _write_annotation, _write_queries
from tests.data.test_prw import prw  # noqa: F401  (fixture)

HOUR_NS = 3600 * 10**9
NO_MATCH = "query without a gallery match (no other test frame shows its person id; kept)"


@pytest.fixture(autouse=True)
def _fresh_memo(monkeypatch):
    monkeypatch.delenv(protocol_cache.CACHE_ENV, raising=False)
    protocol_cache.clear_memo()
    yield
    protocol_cache.clear_memo()


def _load(dataset, root, **kwargs):
    if dataset == "cuhk":
        return cuhk_sysu.load_cuhk_sysu(str(root), "query")
    if dataset == "prw":
        return prw_loader.load_prw(str(root), "query", **kwargs)
    return posetrack21.load_posetrack21(str(root), "query")


def _same(a, b, where="records"):
    """Equal field for field: same types, dict keys in the same order, arrays of equal dtype."""
    assert type(a) is type(b), f"{where}: {type(a)} != {type(b)}"
    if isinstance(a, dict):
        assert list(a) == list(b), where
        for k in a:
            _same(a[k], b[k], f"{where}[{k!r}]")
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b)):
            _same(x, y, f"{where}[{i}]")
    elif isinstance(a, np.ndarray):
        assert (a.dtype, a.shape) == (b.dtype, b.shape), where
        np.testing.assert_array_equal(a, b, err_msg=where)
    else:
        assert a == b, where


def _warnings(caplog):
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]


def _cache_files(root):
    folder = os.path.join(str(root), ".hpps_cache")
    if not os.path.isdir(folder):
        return []
    return sorted(os.path.join(folder, f) for f in os.listdir(folder))


def _counting(monkeypatch, module, name):
    """Wrap ``module.name`` to count its calls."""
    calls = []
    original = getattr(module, name)

    def counted(*args, **kwargs):
        calls.append(args)
        return original(*args, **kwargs)

    monkeypatch.setattr(module, name, counted)
    return calls


def _refuse(monkeypatch, module, *names):
    for name in names:

        def refused(*args, _name=name, **kwargs):
            raise AssertionError(f"{_name} called: the protocol was parsed again")

        monkeypatch.setattr(module, name, refused)


@pytest.mark.parametrize(
    "dataset, kwargs",
    [("cuhk", {}), ("prw", {"boxes": "int32"}), ("prw", {"boxes": "float"}), ("pt21", {})],
)
def test_cached_records_equal_the_parsed_ones(dataset, kwargs, request, caplog):
    root = request.getfixturevalue(dataset)
    with caplog.at_level(logging.WARNING):
        parsed = _load(dataset, root, **kwargs)
    parsed_logs = _warnings(caplog)
    assert parsed and len(_cache_files(root)) == 1
    for clear in (False, True):  # the in-process memo, then the disk cache (a new process)
        if clear:
            protocol_cache.clear_memo()
        caplog.clear()
        with caplog.at_level(logging.WARNING):
            cached = _load(dataset, root, **kwargs)
        _same(parsed, cached)
        assert _warnings(caplog) == parsed_logs  # the same skip summary and warnings
    if dataset == "cuhk":  # the lists are shared views: read-only
        with pytest.raises(ValueError):
            cached[0]["gallery_lists"][50]["images"][0] = 7


def test_cuhk_sysu_cached_load_parses_no_mat_file(cuhk, monkeypatch):  # noqa: F811
    parsed = _load("cuhk", cuhk)
    protocol_cache.clear_memo()
    _refuse(monkeypatch, cuhk_sysu, "_read_protocol", "_read_images", "_read_pool")
    _same(parsed, _load("cuhk", cuhk))


def test_prw_cached_load_parses_no_file(prw, monkeypatch):  # noqa: F811
    parsed = _load("prw", prw)
    protocol_cache.clear_memo()
    _refuse(monkeypatch, prw_loader, "read_prw_annotation", "parse_query_line", "_read_frame_list")
    _same(parsed, _load("prw", prw))


def test_posetrack21_cached_load_parses_no_json(pt21, monkeypatch):  # noqa: F811
    parsed = _load("pt21", pt21)
    protocol_cache.clear_memo()
    _refuse(monkeypatch, posetrack21, "_read_json", "_parse_images")
    _same(parsed, _load("pt21", pt21))


def test_memo_reads_no_cache_file(cuhk, monkeypatch):  # noqa: F811
    parsed = _load("cuhk", cuhk)
    _refuse(monkeypatch, protocol_cache, "_read")
    _refuse(monkeypatch, cuhk_sysu, "_read_protocol")
    _same(parsed, _load("cuhk", cuhk))


def _testg(root, k):
    return root / "annotation" / "test" / "train_test" / f"TestG{k}.mat"


def _age(root, ns=HOUR_NS):
    """Set every file's mtime back by ``ns``: the cache then judges them by size and mtime only."""
    for folder, _, names in os.walk(root):
        for name in names:
            path = os.path.join(folder, name)
            st = os.stat(path)
            os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns - ns))


@pytest.mark.parametrize("aged", [False, True], ids=["fresh", "aged"])
def test_cuhk_sysu_touched_or_edited_file_rebuilds(cuhk, monkeypatch, aged):  # noqa: F811
    if aged:
        _age(cuhk)
    calls = _counting(monkeypatch, cuhk_sysu, "_read_protocol")
    _load("cuhk", cuhk)
    _load("cuhk", cuhk)
    assert len(calls) == 2  # TestG50 and TestG100, once

    # touched: same content, new mtime
    path = _testg(cuhk, 100)
    st = os.stat(path)
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    del calls[:]
    _load("cuhk", cuhk)
    assert len(calls) == 2

    # edited, same size: query 0's list of size 100 starts with s10 instead of s11
    before = os.path.getsize(path)
    galleries = [[GALLERY_100[0][1], GALLERY_100[0][0]] + GALLERY_100[0][2:], GALLERY_100[1]]
    _write_protocol(cuhk, 100, [Q0, Q1], galleries)
    assert os.path.getsize(path) == before
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 2 * 10**9))
    del calls[:]
    protocol_cache.clear_memo()  # from the disk cache too
    records = _load("cuhk", cuhk)
    assert len(calls) == 2
    np.testing.assert_array_equal(records[0]["gallery_lists"][100]["images"], [1, 2, 3, 3, 0])
    np.testing.assert_array_equal(records[0]["gallery_lists"][100]["pos_index"], [0, 1])


def test_cuhk_sysu_same_size_edit_within_the_mtime_tick_rebuilds(cuhk, monkeypatch):  # noqa: F811
    """A file written just before the build is checked by content: a same-size edit that keeps
    size and mtime (a coarse clock) is still seen."""
    _load("cuhk", cuhk)
    path = _testg(cuhk, 100)
    st = os.stat(path)
    galleries = [[GALLERY_100[0][1], GALLERY_100[0][0]] + GALLERY_100[0][2:], GALLERY_100[1]]
    _write_protocol(cuhk, 100, [Q0, Q1], galleries)
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert (os.stat(path).st_size, os.stat(path).st_mtime_ns) == (st.st_size, st.st_mtime_ns)
    for clear in (False, True):
        if clear:
            protocol_cache.clear_memo()
        images = _load("cuhk", cuhk)[0]["gallery_lists"][100]["images"]
        np.testing.assert_array_equal(images, [1, 2, 3, 3, 0])


def test_cuhk_sysu_added_or_deleted_protocol_file_rebuilds(cuhk):  # noqa: F811
    assert list(_load("cuhk", cuhk)[0]["gallery_lists"]) == [50, 100]
    galleries = [g + [("s13.jpg", None)] * 3 for g in GALLERY_100]
    _write_protocol(cuhk, 500, [Q0, Q1], galleries)
    records = _load("cuhk", cuhk)
    assert list(records[0]["gallery_lists"]) == [50, 100, 500]
    images = records[1]["gallery_lists"][500]["images"]
    np.testing.assert_array_equal(images, [2, 2, 1, 3, 0, 0, 0, 0])
    os.remove(_testg(cuhk, 100))
    protocol_cache.clear_memo()
    assert list(_load("cuhk", cuhk)[0]["gallery_lists"]) == [50, 500]
    assert len(_cache_files(cuhk)) == 1  # one entry per dataset, replaced


def test_cuhk_sysu_edited_images_mat_rebuilds(cuhk):  # noqa: F811
    """``Images.mat`` decides whether a query is valid: a query image removed from it is an error
    on the next load, not a stale success."""
    _load("cuhk", cuhk)
    _write_images_mat(cuhk, [im for im in IMAGES if im[0] != "s10.jpg"])
    with pytest.raises(cuhk_sysu.DatasetFormatError, match=r"'s10.jpg', which Images.mat lacks"):
        _load("cuhk", cuhk)


def test_prw_edited_sources_rebuild(prw, caplog):  # noqa: F811
    records = _load("prw", prw)
    assert len(records) == 3
    _write_queries(prw, QUERY_LINES[:2])  # a line fewer
    assert len(_load("prw", prw)) == 2
    # an annotation found through frame_test.mat: pid 8 also in c1s2_000010 -> line 2 has a match
    with caplog.at_level(logging.WARNING):
        _load("prw", prw)
    assert f"{NO_MATCH}: 1 (e.g. {prw / 'query_info.txt'}:2)" in caplog.text
    _write_annotation(prw, "c1s2_000010", "box_new", [[7, 1, 1, 10, 20], [8, 20, 1, 10, 20]])
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        _load("prw", prw)
    assert "query box clipped at 0: 1" in caplog.text and NO_MATCH not in caplog.text
    # an optional file removed: the train-frame check changes
    os.remove(prw / "frame_train.mat")
    protocol_cache.clear_memo()
    assert len(_load("prw", prw)) == 2


def test_prw_box_conventions_cached_apart(prw):  # noqa: F811
    int32 = _load("prw", prw, boxes="int32")
    floats = _load("prw", prw, boxes="float")
    assert int32[2]["query"]["bbox"] != floats[2]["query"]["bbox"]
    _same(int32, _load("prw", prw, boxes="int32"))
    assert len(_cache_files(prw)) == 2


def test_posetrack21_edited_json_rebuilds(pt21):  # noqa: F811
    assert [r["query_id"] for r in _load("pt21", pt21)] == [500, 501]
    query = dict(QUERY, annotations=[dict(a, id=a["id"] + 100) for a in QUERY["annotations"]])
    _write_json(pt21, "query.json", query)
    assert [r["query_id"] for r in _load("pt21", pt21)] == [600, 601]


@pytest.mark.parametrize("damage", ["truncated", "garbage", "empty", "member missing", "bad key"])
def test_damaged_cache_file_is_rebuilt(cuhk, monkeypatch, caplog, damage):  # noqa: F811
    parsed = _load("cuhk", cuhk)
    (path,) = _cache_files(cuhk)
    data = open(path, "rb").read()
    if damage == "truncated":
        open(path, "wb").write(data[: len(data) // 2])
    elif damage == "garbage":
        open(path, "wb").write(data[:100] + bytes(b ^ 0xFF for b in data[100:200]) + data[200:])
    elif damage == "empty":
        open(path, "wb").close()
    else:
        with np.load(path) as z:
            members = {k: z[k] for k in z.files}
        if damage == "member missing":
            del members["__meta__"]
        else:
            members["__key__"] = np.frombuffer(b"[not json", dtype=np.uint8)
        np.savez(path, **members)
    protocol_cache.clear_memo()
    calls = _counting(monkeypatch, cuhk_sysu, "_read_protocol")
    with caplog.at_level(logging.WARNING):
        rebuilt = _load("cuhk", cuhk)
    assert len(calls) == 2
    assert "unreadable" in caplog.text and "rebuilding" in caplog.text
    _same(parsed, rebuilt)
    protocol_cache.clear_memo()
    _refuse(monkeypatch, cuhk_sysu, "_read_protocol")
    _same(parsed, _load("cuhk", cuhk))  # and the rebuilt file is good


@pytest.mark.parametrize("dataset", ["cuhk", "prw", "pt21"])
def test_cache_file_holds_no_pickle(dataset, request):
    root = request.getfixturevalue(dataset)
    _load(dataset, root)
    for path in _cache_files(root):
        with np.load(path, allow_pickle=False) as z:
            members = {k: z[k] for k in z.files}  # would raise on an object array
        assert all(a.dtype != object for a in members.values())
        key = json.loads(members["__key__"].tobytes().decode("utf-8"))
        assert key["format"] == 1 and key["files"]
        json.loads(members["__meta__"].tobytes().decode("utf-8"))


def test_cache_location(cuhk, tmp_path, monkeypatch):  # noqa: F811
    assert protocol_cache.cache_dir(str(cuhk)) == os.path.join(str(cuhk), ".hpps_cache")
    monkeypatch.setenv(protocol_cache.CACHE_ENV, str(tmp_path / "elsewhere"))
    parsed = _load("cuhk", cuhk)
    assert len(os.listdir(tmp_path / "elsewhere")) == 1 and not _cache_files(cuhk)
    monkeypatch.setenv(protocol_cache.CACHE_ENV, "off")
    protocol_cache.clear_memo()
    _same(parsed, _load("cuhk", cuhk))
    assert not _cache_files(cuhk)
    monkeypatch.delenv(protocol_cache.CACHE_ENV)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    monkeypatch.setattr(os, "access", lambda path, mode: False)  # a read-only dataset folder
    assert protocol_cache.cache_dir(str(cuhk)) == str(tmp_path / "xdg" / "hpps_d2")


def test_confined_and_direct_loads_cached_apart(cuhk):  # noqa: F811
    """A build made outside the catalog's path confinement is never reused inside it."""
    direct = _load("cuhk", cuhk)
    with confine_paths(str(cuhk), "cuhk_sysu_query"):
        confined = _load("cuhk", cuhk)
    _same(direct, confined)
    assert len(_cache_files(cuhk)) == 2


def test_source_changed_during_the_build_is_not_cached(tmp_path):
    source = tmp_path / "list.txt"
    source.write_text("1 2 3")

    def build(depend):
        values = np.array([int(v) for v in source.read_text().split()])
        source.write_text("1 2 3 4")  # changed while being read
        return {"values": values}, {}

    protocol_cache.load_or_build("test.list", 1, str(tmp_path), [str(source)], build)
    assert not os.path.exists(tmp_path / ".hpps_cache")
    arrays, _ = protocol_cache.load_or_build(
        "test.list", 1, str(tmp_path), [str(source)], lambda depend: ({"values": np.arange(4)}, {})
    )
    np.testing.assert_array_equal(arrays["values"], np.arange(4))


def test_object_arrays_refused(tmp_path):
    def build(depend):
        return {"x": np.array([{}], dtype=object)}, {}

    with pytest.raises(TypeError, match="object arrays"):
        protocol_cache.load_or_build("test.obj", 1, str(tmp_path), [], build)


# ------------------------------------------------------------------------------------------- #
# The CUHK-SYSU gallery split
# ------------------------------------------------------------------------------------------- #
def _gallery(root):
    return cuhk_sysu.load_cuhk_sysu(str(root), "gallery")


def test_cuhk_sysu_gallery_cached_equals_parsed(cuhk, monkeypatch, caplog):  # noqa: F811
    """Records and skip summary of the gallery split are the parsed ones, from memo and disk;
    a cached load parses no .mat file (image paths are still confined, sizes still read)."""
    with caplog.at_level(logging.WARNING):
        parsed = _gallery(cuhk)
    parsed_logs = _warnings(caplog)
    assert parsed and any("dropped/repaired" in m for m in parsed_logs)  # skips are replayed
    assert len(_cache_files(cuhk)) == 1
    sizes = _counting(monkeypatch, cuhk_sysu, "image_size")
    for clear in (False, True):
        if clear:
            protocol_cache.clear_memo()
            _refuse(monkeypatch, cuhk_sysu, "_read_protocol", "_read_images", "_read_pool")
        caplog.clear()
        with caplog.at_level(logging.WARNING):
            cached = _gallery(cuhk)
        _same(parsed, cached)
        assert _warnings(caplog) == parsed_logs
    assert len(sizes) == 2 * len(parsed)


def test_cuhk_sysu_gallery_and_query_cached_apart(cuhk):  # noqa: F811
    queries, gallery = _load("cuhk", cuhk), _gallery(cuhk)
    assert len(_cache_files(cuhk)) == 2
    protocol_cache.clear_memo()
    _same(queries, _load("cuhk", cuhk))
    _same(gallery, _gallery(cuhk))


def test_cuhk_sysu_gallery_edited_sources_rebuild(cuhk, monkeypatch):  # noqa: F811
    _age(cuhk)
    calls = _counting(monkeypatch, cuhk_sysu, "_read_images")
    before = _gallery(cuhk)
    _gallery(cuhk)
    assert len(calls) == 1
    # touched TestG50: rebuilt, same records
    path = _testg(cuhk, 50)
    st = os.stat(path)
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    _same(before, _gallery(cuhk))
    assert len(calls) == 2
    # Images.mat edited: a gallery image loses its boxes (disk cache too)
    images = [im if im[0] != "s12.jpg" else (im[0], im[1], [], im[3]) for im in IMAGES]
    _write_images_mat(cuhk, images)
    protocol_cache.clear_memo()
    after = _gallery(cuhk)
    assert len(calls) == 3
    s12 = next(r for r in after if r["image_id"] == "s12.jpg")
    assert s12["annotations"] == [] and len(after) == len(before)
    # TestG50 edited: query 1's list loses its positives, whose boxes become unlabeled
    _write_protocol(cuhk, 50, [Q0, Q1], [GALLERY_50[0], [(n, None) for n, _ in GALLERY_100[1]]])
    protocol_cache.clear_memo()
    pids = {r["image_id"]: [a["person_id"] for a in r["annotations"]] for r in _gallery(cuhk)}
    old = {r["image_id"]: [a["person_id"] for a in r["annotations"]] for r in after}
    assert old["s11.jpg"] == [0, 1, 1] and pids["s11.jpg"] == [0, -1, -1]
