"""Where the datasets are looked for, and what a missing dataset's error says about it."""
import os
import subprocess
import sys

import pytest
from detectron2.data import DatasetCatalog

from hpps_d2.data.datasets import ALL_SPLITS, DatasetNotFoundError
from hpps_d2.data.datasets.catalog import register_split
from hpps_d2.data.datasets.msmt17 import load_msmt17
from hpps_d2.data.datasets.prw import load_prw

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

_PRINT_ROOT = (
    "import hpps_d2; from detectron2.data import MetadataCatalog; "
    "from hpps_d2.data.datasets import get_datasets_root; "
    "print(get_datasets_root()); print(MetadataCatalog.get('prw_train').dataset_dir)"
)


def _root_from(cwd, **env_extra):
    env = {k: v for k, v in os.environ.items() if k != "HPPS_DATASETS"}
    env.update(PYTHONPATH=REPO, **env_extra)
    out = subprocess.run(
        [sys.executable, "-c", _PRINT_ROOT], cwd=str(cwd), env=env, capture_output=True, text=True, check=True
    )
    return out.stdout.split()


def test_unset_root_is_the_repository_datasets_folder_whatever_the_cwd(tmp_path):
    # datasets/README.md: "default: ./datasets, i.e. this folder" -- the repository's datasets/.
    root, prw_dir = _root_from(tmp_path)
    assert root == os.path.join(REPO, "datasets")
    assert prw_dir == os.path.join(REPO, "datasets", "PRW")


def test_relative_env_root_is_relative_to_the_cwd(tmp_path):
    root, prw_dir = _root_from(tmp_path, HPPS_DATASETS="mydata")
    assert root == str(tmp_path / "mydata")
    assert prw_dir == str(tmp_path / "mydata" / "PRW")


def _spec(name):
    return next(s for s in ALL_SPLITS if s.name == name)


def test_missing_dataset_through_the_catalog_names_the_searched_root_and_the_variable(tmp_path):
    root = tmp_path / "nowhere"
    name = register_split(_spec("prw_train"), str(root), prefix="rootcheck_")
    with pytest.raises(DatasetNotFoundError) as e:
        DatasetCatalog.get(name)
    msg = str(e.value)
    assert f"'{root / 'PRW'}'" in msg  # what was expected
    assert f"datasets root '{root}'" in msg  # which root was searched
    assert "HPPS_DATASETS" in msg  # how to change it
    assert msg.count("set HPPS_DATASETS=") == 1  # said once, not twice


def test_loader_specific_missing_error_through_the_catalog_names_the_root(tmp_path):
    # MSMT17 raises its own "neither V1 nor V2" error, not require_path's.
    (tmp_path / "msmt17").mkdir()
    name = register_split(_spec("msmt17_train"), str(tmp_path), prefix="rootcheck2_")
    with pytest.raises(DatasetNotFoundError) as e:
        DatasetCatalog.get(name)
    msg = str(e.value)
    assert "neither" in msg and f"datasets root '{tmp_path}'" in msg and "set HPPS_DATASETS=" in msg


def test_missing_dataset_called_directly_still_says_how_to_change_the_root(tmp_path):
    with pytest.raises(DatasetNotFoundError) as e:
        load_prw(str(tmp_path / "PRW"), "train")
    msg = str(e.value)
    assert f"'{tmp_path / 'PRW'}'" in msg and "set HPPS_DATASETS=" in msg
    assert os.path.join(REPO, "datasets") in msg or "HPPS_DATASETS is set" in msg
    with pytest.raises(DatasetNotFoundError, match="set HPPS_DATASETS="):
        load_msmt17(str(tmp_path / "msmt17"), "train")
