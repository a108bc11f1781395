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
