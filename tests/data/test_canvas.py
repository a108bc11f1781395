import numpy as np
import pytest
from detectron2.config import get_cfg

from hpps_d2.config import add_hpps_config
from hpps_d2.data.canvas import (
    ExpandResize,
    InputCanvasSize,
    RandomPaste,
    build_canvas_size,
    build_reid_canvas,
)


def _crop(h=64, w=32):
    rng = np.random.default_rng(0)
    return rng.integers(0, 255, (h, w, 3), dtype=np.uint8)


def test_expand_resize_box_scale_and_aspect():
    op = ExpandResize((240, 320), (2.0, 3.0), fill=(0, 0, 0))
    np.random.seed(0)
    heights = []
    for _ in range(50):
        canvas, (x1, y1, x2, y2) = op(_crop())
        assert canvas.shape == (240, 320, 3)
        assert 0 <= x1 < x2 <= 320 and 0 <= y1 < y2 <= 240
        # the person spans 1/r of the canvas height, r in [2, 3]
        assert 240 / 3.0 - 1 <= y2 - y1 <= 240 / 2.0 + 1
        # aspect ratio kept (canvas aspect follows the output aspect)
        assert abs((y2 - y1) / (x2 - x1) - 2.0) < 0.1
        heights.append(y2 - y1)
    assert max(heights) - min(heights) > 20  # the scale really varies


def test_expand_resize_places_the_crop_pixels():
    crop = np.full((40, 20, 3), 200, np.uint8)
    op = ExpandResize((100, 100), (2.0, 2.0), fill=(10, 10, 10))
    np.random.seed(1)
    canvas, (x1, y1, x2, y2) = op(crop)
    # canvas 80x80 resized to 100x100: the box is 50x25 and holds the crop colour
    assert (round(y2 - y1), round(x2 - x1)) == (50, 25)
    inner = canvas[int(y1) + 2 : int(y2) - 2, int(x1) + 2 : int(x2) - 2]
    assert inner.min() == 200 and inner.max() == 200
    assert (canvas == 10).all(axis=2).mean() > 0.8  # the rest is background


def test_random_paste_keeps_crop_size():
    op = RandomPaste((120, 160), fill=(1, 2, 3))
    np.random.seed(0)
    crop = _crop(64, 32)
    canvas, (x1, y1, x2, y2) = op(crop)
    assert canvas.shape == (120, 160, 3)
    assert (x2 - x1, y2 - y1) == (32, 64)
    np.testing.assert_array_equal(canvas[int(y1) : int(y2), int(x1) : int(x2)], crop)
    assert tuple(canvas[0, 0]) in {(1, 2, 3)} or tuple(canvas[-1, -1]) == (1, 2, 3)
    # a crop larger than the canvas is shrunk to fit, keeping its aspect ratio
    canvas, (x1, y1, x2, y2) = op(_crop(240, 60))
    assert (y2 - y1, x2 - x1) == (120, 30)


def test_config_selects_the_operation():
    cfg = get_cfg()
    add_hpps_config(cfg)
    assert isinstance(build_reid_canvas(cfg), ExpandResize)
    cfg.HPPS.UNIFY.REID_CANVAS = "random_paste"
    op = build_reid_canvas(cfg)
    assert isinstance(op, RandomPaste) and op.fill == tuple(cfg.MODEL.PIXEL_MEAN)
    cfg.HPPS.UNIFY.REID_CANVAS = "paste_everywhere"
    with pytest.raises(KeyError, match="paste_everywhere"):
        build_reid_canvas(cfg)


def test_bad_arguments():
    with pytest.raises(ValueError, match="1 <= r_min <= r_max"):
        ExpandResize((10, 10), (0.5, 2.0), (0, 0, 0))
    with pytest.raises(ValueError, match=r"\(H, W, 3\)"):
        RandomPaste((10, 10), (0, 0, 0))(np.zeros((5, 5), np.uint8))


def test_canvas_is_the_model_input_size_by_default():
    """ResizeShortestEdge of a 4:3 frame, by hand: short side 900 -> 900 x 1200 (<= 1500);
    256 -> 256 x 341.33 -> 341; a 1000 cap on the long side -> 1000 x 750."""
    cfg = add_hpps_config(get_cfg())
    assert tuple(cfg.HPPS.UNIFY.CANVAS_SIZE) == ()
    cfg.INPUT.MIN_SIZE_TRAIN, cfg.INPUT.MAX_SIZE_TRAIN = (900,), 1500
    assert build_canvas_size(cfg)() == (900, 1200)
    assert InputCanvasSize((256,), 448, "choice", 4 / 3)() == (256, 341)
    assert InputCanvasSize((900,), 1000, "choice", 4 / 3)() == (750, 1000)
    np.random.seed(0)
    drawn = {InputCanvasSize((600, 900), 1500, "choice", 4 / 3)() for _ in range(50)}
    assert drawn == {(600, 800), (900, 1200)}
    cfg.HPPS.UNIFY.CANVAS_SIZE = (120, 160)
    assert build_canvas_size(cfg) == (120, 160)
    cfg.HPPS.UNIFY.CANVAS_SIZE = (120,)
    with pytest.raises(ValueError, match=r"CANVAS_SIZE must be \(\) or \(height, width\)"):
        build_canvas_size(cfg)
    with pytest.raises(ValueError, match="CANVAS_ASPECT must be > 0"):
        InputCanvasSize((900,), 1500, "choice", 0.0)


def test_expand_resize_person_is_canvas_height_over_r():
    """r fixed at 7.5 on a 900 x 1200 canvas: a 128x64 crop becomes 120 x 60 (900 / 7.5 = 120);
    r = 2.8125: 320 x 160."""
    np.random.seed(0)
    for r, (ph, pw) in ((7.5, (120, 60)), (2.8125, (320, 160))):
        canvas, (x1, y1, x2, y2) = ExpandResize((900, 1200), (r, r), (0, 0, 0))(_crop(128, 64))
        assert canvas.shape == (900, 1200, 3) and (y2 - y1, x2 - x1) == (ph, pw)
