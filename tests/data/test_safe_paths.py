"""A record path built from annotation content must stay inside its dataset root."""
import json
import os
import uuid

import pytest
from detectron2.data import DatasetCatalog, MetadataCatalog

from hpps_d2.data.datasets import crowdhuman, posetrack21
from hpps_d2.data.datasets.catalog import register_split
from hpps_d2.data.datasets.common import DatasetFormatError
from tests.helpers import write_image

PT_REL = "images/train/000001_bonn_train/000000.jpg"


def _spec(splits, name):
    (spec,) = [s for s in splits if s.name == name]
    return spec


@pytest.fixture
def load(tmp_path):
    """Register a spec under ``tmp_path / "ds"`` with a unique prefix and load it by name."""
    names = []

    def _load(spec):
        name = register_split(spec, str(tmp_path / "ds"), prefix=f"t{uuid.uuid4().hex[:8]}_")
        names.append(name)
        return DatasetCatalog.get(name)

    yield _load
    for name in names:
        DatasetCatalog.remove(name)
        MetadataCatalog.remove(name)


def _posetrack(tmp_path, file_name):
    root = tmp_path / "ds" / "PoseTrack21"
    os.makedirs(root / "posetrack_person_search")
    write_image(str(root / PT_REL), 60, 100)
    images = [{"id": 1, "file_name": PT_REL}, {"id": 2, "file_name": file_name}]
    anns = [{"id": 1, "image_id": 1, "bbox": [1, 1, 10, 20], "person_id": 3, "category_id": 1}]
    with open(root / "posetrack_person_search" / "train.json", "w") as f:
        json.dump({"images": images, "annotations": anns}, f)
    return root


def test_posetrack21_absolute_system_file_refused(tmp_path, load):
    root = _posetrack(tmp_path, "/etc/hostname")
    with pytest.raises(DatasetFormatError) as e:
        load(_spec(posetrack21.SPLITS, "posetrack21_train"))
    message = str(e.value)
    assert "posetrack21_train" in message and "'/etc/hostname'" in message
    assert f"leaves the dataset root '{root}'" in message
    assert "'PoseTrack21'" in message  # the datasets/README.md section of the layout


@pytest.mark.parametrize("outside", ["../../x.jpg", "ABS"])
def test_posetrack21_outside_image_refused(tmp_path, load, outside):
    write_image(str(tmp_path / "x.jpg"), 60, 100)  # a real image, so only the path check stops it
    file_name = str(tmp_path / "x.jpg") if outside == "ABS" else outside
    root = _posetrack(tmp_path, file_name)
    with pytest.raises(DatasetFormatError) as e:
        load(_spec(posetrack21.SPLITS, "posetrack21_train"))
    message = str(e.value)
    assert "posetrack21_train" in message and file_name in message
    assert f"leaves the dataset root '{root}'" in message


def _crowdhuman(tmp_path, image_id):
    root = tmp_path / "ds" / "CrowdHuman"
    write_image(str(root / "Images" / "273271,c9db000d5146c15.jpg"), 100, 200)
    lines = [
        {"ID": "273271,c9db000d5146c15", "gtboxes": [{"tag": "person", "fbox": [1, 2, 30, 40]}]},
        {"ID": image_id, "gtboxes": [{"tag": "person", "fbox": [1, 2, 30, 40]}]},
    ]
    with open(root / "annotation_train.odgt", "w") as f:
        f.write("".join(json.dumps(o) + "\n" for o in lines))
    return root


def test_crowdhuman_dotdot_id_refused(tmp_path, load):
    write_image(str(tmp_path / "ds" / "etc" / "x.jpg"), 100, 200)  # exists: the path check stops it
    root = _crowdhuman(tmp_path, "../../etc/x")
    with pytest.raises(DatasetFormatError) as e:
        load(_spec(crowdhuman.SPLITS, "crowdhuman_train"))
    message = str(e.value)
    assert "crowdhuman_train" in message and "../../etc/x.jpg" in message
    assert f"leaves the dataset root '{root}'" in message


def test_normal_fixtures_and_symlinked_folders_pass(tmp_path, load):
    root = _crowdhuman(tmp_path, "284193,faa9000f2678b5e")
    write_image(str(root / "Images" / "284193,faa9000f2678b5e.jpg"), 80, 60)
    recs = load(_spec(crowdhuman.SPLITS, "crowdhuman_train"))
    assert [r["image_id"] for r in recs] == ["273271,c9db000d5146c15", "284193,faa9000f2678b5e"]
    # A folder the user linked in (images on another disk) is theirs, not the annotations'.
    os.rename(root / "Images", tmp_path / "elsewhere")
    os.symlink(tmp_path / "elsewhere", root / "Images")
    assert len(load(_spec(crowdhuman.SPLITS, "crowdhuman_train"))) == 2


def test_check_record_paths_every_path_field(tmp_path):
    from hpps_d2.data.datasets.common import UnsafePathError, check_record_paths

    root = str(tmp_path / "ds" / "MSMT17")
    good = {"file_name": os.path.join(root, "train/0000/a.jpg"), "image_id": "a"}
    lmdb = {
        "file_name": os.path.join(root, "lmdb/k"),
        "image_id": "k",
        "image_source": {"type": "lmdb", "path": os.path.join(root, "..", "lmdb"), "key": "k"},
    }
    check_record_paths([good], root, "msmt17_train")
    with pytest.raises(UnsafePathError) as e:
        check_record_paths([good, lmdb], root, "msmt17_train")
    message = str(e.value)
    assert "msmt17_train: record 1 (image_id 'k')" in message
    assert "field 'image_source.path'" in message and f"leaves the dataset root '{root}'" in message
    bad = {"file_name": os.path.join(root, "train/../../../b.jpg"), "image_id": "b"}
    with pytest.raises(UnsafePathError, match=r"record 0 \(image_id 'b'\): field 'file_name'"):
        check_record_paths([bad], root, "msmt17_train")
    assert issubclass(UnsafePathError, DatasetFormatError)


def test_path_inside_rule(tmp_path, monkeypatch):
    from hpps_d2.data.datasets.common import path_inside

    root = "/data/PRW"
    assert path_inside("/data/PRW/frames/c1s1_000151.jpg", root)
    assert path_inside("/data/PRW", root) and path_inside("/data/PRW/./frames/a.jpg", root + "/")
    assert not path_inside("/etc/hostname", root)
    assert not path_inside("/data/PRW2/a.jpg", root)  # a sibling sharing the prefix
    assert not path_inside("/data/PRW/frames/../../x.jpg", root)
    # '..' is refused even when it lands back inside: through a linked folder it may not
    assert not path_inside("/data/PRW/frames/../frames/a.jpg", root)
    assert path_inside("/data/../data/PRW/a.jpg", "/data/PRW")  # a root spelled with '..'
    monkeypatch.chdir(tmp_path)
    assert path_inside("datasets/PRW/a.jpg", "datasets/PRW")  # relative roots ($HPPS_DATASETS)
    assert path_inside(str(tmp_path / "datasets/PRW/a.jpg"), "datasets/PRW")
    assert not path_inside("datasets/PRW/../x.jpg", "datasets/PRW")
