import copy

import pytest
from detectron2.structures import BoxMode

from hpps_d2.data.datasets.common import UNLABELED
from hpps_d2.data.unify import unify


def _scene(i, boxes):
    return {
        "file_name": f"img{i}.jpg",
        "image_id": f"img{i}",
        "height": 100,
        "width": 100,
        "annotations": [
            {"bbox": b, "bbox_mode": BoxMode.XYXY_ABS, "category_id": 0, "person_id": pid, "iscrowd": crowd}
            for b, pid, crowd in boxes
        ],
    }


def _crop(i, pid, cam=0):
    return {"file_name": f"crop{i}.jpg", "image_id": f"crop{i}", "person_id": pid, "camera_id": cam}


@pytest.fixture
def sources():
    det_a = [
        _scene(0, [([0, 0, 10, 20], UNLABELED, 0), ([5, 5, 30, 60], UNLABELED, 1)]),
        _scene(1, [([1, 1, 9, 19], UNLABELED, 0), ([2, 2, 8, 18], UNLABELED, 0)]),
    ]
    det_b = [_scene(2, [([0, 0, 10, 20], UNLABELED, 0)])]
    reid_a = [_crop(0, 5), _crop(1, 9), _crop(2, 5)]
    reid_b = [_crop(3, 0), _crop(4, 1)]
    unl = [_crop(5, UNLABELED), _crop(6, UNLABELED)]
    return [
        ("det_a", det_a, "detection", False),
        ("reid_a", reid_a, "reid", True),
        ("det_b", det_b, "detection", False),
        ("reid_b", reid_b, "reid", True),
        ("unl", unl, "reid", False),
    ]


def test_identities_domains_losses(sources):
    before = copy.deepcopy(sources)
    data = unify(sources)
    assert sources == before  # inputs untouched
    # labeled ids first, one block per labeled dataset in the given order
    assert data.num_labeled == 4
    recs = {r["image_id"]: r for r in data.records}
    assert [recs[f"crop{i}"]["person_id"] for i in range(5)] == [0, 1, 0, 2, 3]
    # then one pseudo-identity per detection box (ignore regions get none) and per unlabeled crop
    assert [a["person_id"] for a in recs["img0"]["annotations"]] == [4, UNLABELED]
    assert [a["person_id"] for a in recs["img1"]["annotations"]] == [5, 6]
    assert [a["person_id"] for a in recs["img2"]["annotations"]] == [7]
    assert [recs["crop5"]["person_id"], recs["crop6"]["person_id"]] == [8, 9]
    assert data.num_identities == 10 and data.num_pseudo == 6
    # domains numbered within each task
    assert [(r["source"], r["task"], r["domain"]) for r in (recs["img0"], recs["img2"])] == [
        ("det_a", "detection", 0),
        ("det_b", "detection", 1),
    ]
    assert [recs[k]["domain"] for k in ("crop0", "crop3", "crop5")] == [0, 1, 2]
    assert data.domains("reid") == ["reid_a", "reid_b", "unl"]
    # which losses each image feeds
    assert recs["img0"]["losses"] == ("det", "oim", "ssl")
    assert recs["crop0"]["losses"] == ("det", "oim")
    assert recs["crop5"]["losses"] == ("det", "oim", "ssl")
    assert all(recs[f"crop{i}"]["crop"] for i in range(7))
    ranges = {s.name: s.id_range for s in data.sources}
    assert ranges == {"reid_a": (0, 2), "reid_b": (2, 4), "det_a": (4, 7), "det_b": (7, 8), "unl": (8, 10)}


def test_unify_rejects_search_and_duplicates(sources):
    with pytest.raises(ValueError, match="prw_train: cannot unify a 'search' dataset"):
        unify([("prw_train", [], "search", True)])
    with pytest.raises(ValueError, match="listed twice"):
        unify([sources[0], sources[0]])


def test_labeled_crop_without_identity_is_an_error():
    with pytest.raises(ValueError, match="labeled re-ID crop crop0.jpg has no identity"):
        unify([("reid", [_crop(0, UNLABELED), _crop(1, 3)], "reid", True)])
