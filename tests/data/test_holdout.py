"""hpps_d2.data.holdout: the validation split carved out of a search training split, on
hand-built records whose answer is worked out by hand below."""

import copy

import pytest

from hpps_d2.data.holdout import carve_validation, select_holdout

# np.random.default_rng(0).permutation(10) == [4 6 2 7 3 5 9 0 8 1]: with 10 identities and
# fraction 0.2 (k = 2) the ranks 4 and 6 are held out.
HELD = [4, 6]


def test_selection_is_seeded_by_rank_and_invariant_to_increasing_relabels():
    assert select_holdout(range(10), 0.2, 0) == HELD
    raw = [7 * i + 100 for i in range(10)]  # e.g. PRW raw pids vs the loader's 0..N-1
    assert select_holdout(reversed(raw), 0.2, 0) == [raw[4], raw[6]]
    assert select_holdout(list(range(10)) + [3, 3, -1, -2], 0.2, 0) == HELD  # dupes, unlabeled
    # default_rng(3).permutation(10) == [9 6 0 2 1 ...]; fraction 0.3 -> k = 3
    assert select_holdout(range(10), 0.3, 3) == [0, 6, 9]
    # k = round(f * N) clipped to [1, N - 1]
    assert len(select_holdout(range(5), 0.01, 0)) == 1
    assert len(select_holdout(range(5), 0.99, 0)) == 4


@pytest.mark.parametrize("fraction", [0.0, 1.0, -0.5, 1.5])
def test_fraction_outside_0_1_is_refused(fraction):
    with pytest.raises(ValueError, match=r"fraction must be in \(0, 1\)"):
        select_holdout(range(10), fraction)


def test_fewer_than_two_identities_is_refused():
    with pytest.raises(ValueError, match="at least 2 labeled identities, got 1"):
        select_holdout([3, 3, -1])


def _box(x, y, w, h):
    return [float(x), float(y), float(x + w), float(y + h)]


def _frame(name, cam, people):
    """people: (pid, (x, y, w, h)); pid -1 = unlabeled."""
    r = {
        "file_name": f"/d/frames/{name}.jpg",
        "image_id": f"{name}.jpg",
        "height": 270,
        "width": 480,
        "annotations": [
            {"bbox": _box(*b), "bbox_mode": 0, "category_id": 0, "person_id": p, "iscrowd": 0}
            for p, b in people
        ],
    }
    if cam is not None:
        r["camera_id"] = cam
    return r


def _records(cams=True):
    c = (lambda k: k) if cams else (lambda k: None)
    return [
        _frame("f0", c(1), [(0, (0, 0, 10, 20)), (1, (50, 0, 10, 20))]),
        _frame("f1", c(1), [(4, (0, 0, 10, 20)), (0, (50, 0, 10, 20)), (-1, (90, 0, 9, 9))]),
        _frame("f2", c(2), [(4, (5, 5, 20, 40))]),
        _frame("f3", c(1), [(4, (9, 9, 30, 60)), (4, (100, 9, 50, 90))]),  # largest id-4 box second
        _frame("f4", c(3), [(6, (0, 0, 10, 20))]),  # id 6: one frame only -> no query
        _frame("f5", c(2), [(2, (0, 0, 10, 20)), (3, (40, 0, 10, 20)), (-1, (80, 0, 5, 5))]),
        _frame("f6", c(3), [(p, (20 * k, 0, 10, 20)) for k, p in enumerate([5, 7, 8, 9, 1])]),
    ]


def _ids(records):
    return [[a["person_id"] for a in r["annotations"]] for r in records]


def test_frames_queries_and_labels_worked_out_by_hand():
    records = _records()
    before = copy.deepcopy(records)
    train, query, gallery = carve_validation(records, 0.2, 0)
    assert records == before  # the input is not modified
    # Frames: every frame showing 4 or 6 is a val gallery frame, in input order; others train.
    assert [r["image_id"] for r in gallery] == ["f1.jpg", "f2.jpg", "f3.jpg", "f4.jpg"]
    assert [r["image_id"] for r in train] == ["f0.jpg", "f5.jpg", "f6.jpg"]
    # Train ids {0,1,2,3,5,7,8,9} -> 0..7 ascending; unlabeled stays -1.
    assert _ids(train) == [[0, 1], [2, 3, -1], [4, 5, 6, 7, 1]]
    # Val gallery keeps only held-out ids labeled (id 0 in f1 becomes unlabeled).
    assert _ids(gallery) == [[4, -1, -1], [4], [4, 4], [6]]
    assert [r["annotations"] for r in train][0][0]["bbox"] == _box(0, 0, 10, 20)
    # Query: id 4 only (6 is in one frame). Its frames f1 (cam 1), f2 (cam 2), f3 (cam 1):
    # f2 has 2 frames of id 4 in other cameras, f1 and f3 one each -> f2, though f3 is larger.
    assert query == [
        {
            "file_name": "/d/frames/f2.jpg",
            "image_id": "f2.jpg",
            "height": 270,
            "width": 480,
            "camera_id": 2,
            "query": {"bbox": _box(5, 5, 20, 40), "person_id": 4},
        }
    ]


def test_without_cameras_the_largest_first_box_wins():
    _, query, _ = carve_validation(_records(cams=False), 0.2, 0)
    # f3's first id-4 box (30x60) beats f2's (20x40) and f1's; f3's second, larger box is not
    # a target (the protocol's target is a frame's first box with the pid).
    assert [(q["image_id"], q["query"]["bbox"]) for q in query] == [("f3.jpg", _box(9, 9, 30, 60))]
    assert "camera_id" not in query[0]


def test_no_identity_in_both_parts():
    # Check with the images' people, not the labels (train ids are relabeled): the boxes of
    # held-out people never appear in a train frame.
    records = _records()
    held_boxes = {
        (r["image_id"], tuple(a["bbox"]))
        for r in records
        for a in r["annotations"]
        if a["person_id"] in HELD
    }
    train, _, gallery = carve_validation(records, 0.2, 0)
    train_boxes = {(r["image_id"], tuple(a["bbox"])) for r in train for a in r["annotations"]}
    assert not held_boxes & train_boxes
    assert not {r["image_id"] for r in train} & {r["image_id"] for r in gallery}
    assert len(train) + len(gallery) == len(records)


def test_a_record_without_annotations_is_refused():
    bad = _records() + [{"image_id": "q.jpg", "query": {"bbox": [0, 0, 1, 1], "person_id": 4}}]
    with pytest.raises(ValueError, match=r"record 7 \(q.jpg\).*scene records with 'annotations'"):
        carve_validation(bad)
