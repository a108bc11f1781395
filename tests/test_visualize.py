"""The pictures of tools/visualize_data.py: boxes of the three kinds drawn distinctly, with a legend."""
import numpy as np

from hpps_d2.utils.visualize import IGNORE_RGB, LABELED_RGB, LEGEND, UNLABELED_RGB, draw_record

H, W = 120, 160
BOXES = {"labeled": [10, 20, 50, 80], "unlabeled": [60, 20, 100, 80], "ignore": [110, 20, 150, 80]}


def _record():
    return {
        "file_name": "x.jpg",
        "height": H,
        "width": W,
        "annotations": [
            {"bbox": BOXES["labeled"], "bbox_mode": 0, "person_id": 7, "iscrowd": 0},
            {"bbox": BOXES["unlabeled"], "bbox_mode": 0, "person_id": -1, "iscrowd": 0},
            {"bbox": BOXES["ignore"], "bbox_mode": 0, "person_id": -1, "iscrowd": 1},
        ],
    }


def _has(pixels, rgb):
    return bool((np.abs(pixels.astype(int) - np.array(rgb)).max(axis=-1) <= 10).any())


def test_record_picture_has_a_legend_strip_and_three_distinct_box_colours():
    image = np.full((H, W, 3), 40, np.uint8)
    out = draw_record(_record(), image, "RGB")
    assert out.dtype == np.uint8 and out.ndim == 3
    assert out.shape[0] > H and out.shape[1] >= W  # the legend strip below the picture
    colours = {"labeled": LABELED_RGB, "unlabeled": UNLABELED_RGB, "ignore": IGNORE_RGB}
    assert len({tuple(c) for c in colours.values()}) == 3
    for kind, (x1, y1, x2, y2) in BOXES.items():
        left_edge = out[y1 + 15 : y2 - 5, x1 - 1 : x1 + 2]
        assert _has(left_edge, colours[kind]), kind
        for other, c in colours.items():  # no other kind's colour on this box's edge
            if other != kind:
                assert not _has(left_edge, c), (kind, other)
    # the ignore region is dashed: its left edge has gaps of the background
    ignore_edge = out[BOXES["ignore"][1] : BOXES["ignore"][3], BOXES["ignore"][0]]
    assert (np.abs(ignore_edge.astype(int) - 40).max(axis=-1) == 0).any()
    strip = out[H:]
    for kind, c in colours.items():  # a swatch of each colour in the legend
        assert _has(strip, c), kind
    assert [name for name, _ in LEGEND] == ["labeled person (id)", "unlabeled person (?)", "ignore region"]
