"""tools/check_datasets.py: a non-zero exit, one whole line each, for anything wrong."""
import importlib.util
import os
import uuid

import pytest

from hpps_d2.data.datasets import register_all
from tests.data.check_fixtures import write_crowdhuman, write_ecp, write_msmt17

_TOOL = os.path.join(os.path.dirname(__file__), "..", "tools", "check_datasets.py")


def _main(argv):
    spec = importlib.util.spec_from_file_location("check_datasets", _TOOL)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod.main(argv)


def _register(root) -> str:
    """Register every split under ``root`` with a fresh prefix (the catalog is process-wide)."""
    prefix = f"t{uuid.uuid4().hex[:8]}_"
    register_all(str(root), prefix=prefix)
    return prefix


def _lines(text, start):
    return [line for line in text.splitlines() if line.startswith(start)]


def test_decode_reports_each_damaged_image_and_fails(tmp_path, capsys):
    crops = write_msmt17(tmp_path)
    frames = write_ecp(tmp_path)
    write_crowdhuman(tmp_path)
    p = _register(tmp_path)
    rc = _main(["--prefix", p, "--only", "msmt17_train", "ecp_day_train", "crowdhuman_train",
                "--decode", "--workers", "2"])
    out = capsys.readouterr().out
    assert rc == 1
    unreadable = _lines(out, "UNREADABLE")
    assert len(unreadable) == 3
    for name in ("zero_byte", "truncated", "folder"):
        assert [line for line in unreadable if crops[name] in line and f"{p}msmt17_train" in line]
    mis_sized = _lines(out, "MIS-SIZED")
    assert len(mis_sized) == 1
    assert frames["berlin_00001"] in mis_sized[0] and f"{p}ecp_day_train" in mis_sized[0]
    assert "decoded 7 images of 3 splits" in out
    assert "4 problems" in out


def test_empty_split_fails_with_a_clear_line(tmp_path, capsys):
    write_crowdhuman(tmp_path, empty_val=True)
    p = _register(tmp_path)
    rc = _main(["--prefix", p, "--only", "crowdhuman_"])
    out = capsys.readouterr().out
    assert rc == 1
    assert _lines(out, "EMPTY") == [
        f"EMPTY {p}crowdhuman_val: loaded 0 records from {tmp_path / 'CrowdHuman'} "
        "(the real dataset has 4370 images)"
    ]


def test_missing_dataset_fails_naming_it_with_the_whole_path(tmp_path, capsys):
    write_msmt17(tmp_path, damaged=False)
    p = _register(tmp_path)
    rc = _main(["--prefix", p, "--only", "msmt17_", "prw_train"])
    out = capsys.readouterr().out
    assert rc == 1
    missing = _lines(out, "MISSING")
    assert len(missing) == 1 and missing[0].startswith(f"MISSING {p}prw_train: PRW: expected")
    # the note is whole, never cut mid-path
    assert f"'{tmp_path / 'PRW'}" in missing[0]
    assert f"Searched the datasets root '{tmp_path}'" in missing[0]
    assert missing[0].endswith(
        "set HPPS_DATASETS=/path/to/datasets (the folder holding PRW/, CUHK-SYSU/, ...)."
    )


def test_only_that_selects_nothing_fails(tmp_path, capsys):
    p = _register(tmp_path)
    assert _main(["--prefix", p, "--only", "no_such_dataset"]) == 1
    assert "no registered split starts with 'no_such_dataset'" in capsys.readouterr().out


def test_clean_datasets_pass(tmp_path, capsys):
    write_msmt17(tmp_path, damaged=False)
    write_ecp(tmp_path, mis_sized=False)
    p = _register(tmp_path)
    rc = _main(["--prefix", p, "--only", "msmt17_", "ecp_day_train", "--decode", "--workers", "1"])
    out = capsys.readouterr().out
    assert rc == 0, out
    assert "decoded 4 images of 4 splits" in out and "0 problems" in out
    assert not _lines(out, ("UNREADABLE", "MIS-SIZED", "MISSING", "EMPTY", "ERROR"))


def test_bad_arguments_are_refused_naming_them(tmp_path, capsys):
    with pytest.raises(SystemExit) as e:
        _main(["--decode", "--workers", "0"])
    assert e.value.code == 2 and "--workers must be at least 1, got 0" in capsys.readouterr().err
    with pytest.raises(SystemExit) as e:
        _main(["--expected", str(tmp_path / "manifest.json")])
    err = capsys.readouterr().err
    assert e.value.code == 2 and f"--expected {tmp_path / 'manifest.json'}: " in err
    (tmp_path / "bad.json").write_text("{")
    with pytest.raises(SystemExit) as e:
        _main(["--expected", str(tmp_path / "bad.json")])
    assert e.value.code == 2
    assert "not a JSON manifest with a 'splits' object" in capsys.readouterr().err
