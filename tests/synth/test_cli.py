"""The command line tool, partial regeneration, and refusal to overwrite foreign folders."""

import importlib.util
import json
import os

import pytest

from hpps_d2.synth import generate_world

_TOOL = os.path.join(os.path.dirname(__file__), "..", "..", "tools", "make_synth_data.py")


def _tool():
    spec = importlib.util.spec_from_file_location("make_synth_data", _TOOL)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_cli_writes_and_prints(tmp_path, capsys):
    out = tmp_path / "w"
    manifest = _tool().main(
        [
            "--out",
            str(out),
            "--scale",
            "0.05",
            "--datasets",
            "luperson,msmt17",
            "--workers",
            "1",
            "--noise",
            "0.5",
        ]
    )
    text = capsys.readouterr().out
    assert "msmt17_train" in text and "luperson_30k" in text and "wrote" in text
    with open(out / "manifest.json", encoding="utf-8") as f:
        written = json.load(f)
    assert written["knobs"]["noise"] == 0.5 and written["scale"] == 0.05
    assert set(written["splits"]) == set(manifest["splits"])


def test_partial_regeneration_keeps_other_entries(tmp_path):
    out = str(tmp_path / "w")
    generate_world(out, scale=0.05, datasets=["luperson", "msmt17"], workers=1)
    m = generate_world(out, scale=0.05, datasets=["luperson"], workers=1)
    assert "msmt17_train" in m["splits"] and "luperson_30k" in m["splits"]


def test_refuses_to_overwrite_foreign_data(tmp_path):
    (tmp_path / "PRW").mkdir()
    (tmp_path / "PRW" / "real_file.txt").write_text("not synthetic")
    with pytest.raises(FileExistsError):
        generate_world(str(tmp_path), scale=0.05, datasets=["prw"], workers=1)
    assert (tmp_path / "PRW" / "real_file.txt").exists()


def test_cli_size_overrides_reach_the_prw_files_and_the_manifest(tmp_path, capsys):
    import scipy.io

    out = tmp_path / "w"
    argv = ["--out", str(out), "--scale", "0.05", "--datasets", "prw", "--workers", "1"]
    for item in ("prw.train_ids=9", "prw.train_frames=30", "prw.frame_scale=0.5"):
        argv += ["--size", item]
    _tool().main(argv)
    assert "prw.train_ids=9" in capsys.readouterr().out
    with open(out / "manifest.json", encoding="utf-8") as f:
        written = json.load(f)
    assert written["sizes"] == {"prw": {"frame_scale": 0.5, "train_frames": 30, "train_ids": 9}}
    d = out / "PRW"
    frames = scipy.io.loadmat(str(d / "frame_train.mat"))["img_index_train"]
    assert len(frames) == 30
    assert scipy.io.loadmat(str(d / "ID_train.mat"))["ID_train"].size == 9
    # test sizes follow --scale as before: 200 * 0.05 -> the minimum 12
    assert len(scipy.io.loadmat(str(d / "frame_test.mat"))["img_index_test"]) == 12


@pytest.mark.parametrize(
    "item, message",
    [
        ("prw.train_ids=2", "prw.train_ids must be at least 4"),
        ("prw.nope=2", "unknown key 'nope' of prw"),
        ("nope.train_ids=20", "unknown dataset 'nope'"),
    ],
)
def test_cli_bad_size_is_a_usage_error(tmp_path, capsys, item, message):
    with pytest.raises(SystemExit) as e:
        _tool().main(["--out", str(tmp_path / "w"), "--size", item])
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert "--size" in err and message in err
    assert not (tmp_path / "w").exists()


def test_cli_size_for_a_dataset_not_written_is_a_usage_error(tmp_path, capsys):
    with pytest.raises(SystemExit) as e:
        _tool().main(
            ["--out", str(tmp_path / "w"), "--datasets", "msmt17", "--size", "prw.train_ids=9"]
        )
    assert e.value.code == 2
    assert "sizes given for ['prw'], not in --datasets msmt17" in capsys.readouterr().err


def test_partial_regeneration_keeps_each_datasets_own_sizes(tmp_path):
    out = str(tmp_path / "w")
    generate_world(out, scale=0.05, datasets=["prw", "msmt17"], workers=1,
                   sizes={"prw": {"train_frames": 14}})
    m = generate_world(out, scale=0.05, datasets=["msmt17"], workers=1)
    assert m["sizes"] == {"prw": {"train_frames": 14}}  # prw was not rewritten: its sizes stay
    assert m["splits"]["prw_train"]["images"] == 14 and "msmt17_train" in m["splits"]
    m = generate_world(out, scale=0.05, datasets=["prw"], workers=1)
    assert m["sizes"] == {} and m["splits"]["prw_train"]["images"] == 50  # 1000 * 0.05
    with pytest.raises(ValueError, match=r"sizes given for \['prw'\], which are not written"):
        generate_world(out, scale=0.05, datasets=["msmt17"], sizes={"prw": {"train_ids": 9}})
