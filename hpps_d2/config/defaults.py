"""
``add_hpps_config(cfg)``: every key this project adds to detectron2's config.

Each key has a comment with its meaning, the paper's symbol where there is one, and where the paper
("Divide and Conquer: Hybrid Pre-training for Person Search", AAAI 2024) is silent, the reference
its default comes from (docs/anchors.md, table b) or "ours" when no reference exists.
"""
from detectron2.config import CfgNode as CN

__all__ = ["add_hpps_config"]


def add_hpps_config(cfg: CN) -> CN:
    """Add the ``HPPS`` subtree to a detectron2 config, in place; returns ``cfg``."""
    _C = cfg
    _C.HPPS = CN()

    # ---------------------------------------------------------------------------------------- #
    # Data unification (paper, "Data unification"; Fig. 3b)
    # ---------------------------------------------------------------------------------------- #
    _C.HPPS.UNIFY = CN()
    # How a re-ID crop becomes a scene: "expand_resize" (the paper's choice: crop on a canvas whose
    # size is a random ratio of the crop's, then resized to CANVAS_SIZE) or "random_paste" (crop
    # pasted at its own size at a random place on a CANVAS_SIZE canvas). Paper Tab. 4 compares them.
    _C.HPPS.UNIFY.REID_CANVAS = "expand_resize"
    # (height, width) of the fixed-size canvas in pixels. The paper does not give it; ours: a 3:4
    # landscape frame like the search scenes, so that a crop of expand ratio r spans 1/r of its
    # height (persons of 120-320 px with the default ratios, the range of PRW/CUHK-SYSU persons after
    # the test resize).
    _C.HPPS.UNIFY.CANVAS_SIZE = (480, 640)
    # expand_resize: range [r_min, r_max] of the ratio canvas height / crop height, drawn uniformly
    # per sample. The canvas width follows from CANVAS_SIZE's aspect ratio (never below the crop
    # width), so the person is not distorted. Paper silent; ours (no public hit for expand_resize,
    # docs/anchors.md table b).
    _C.HPPS.UNIFY.EXPAND_RATIO = (1.5, 4.0)
    # Canvas background: "pixel_mean" (MODEL.PIXEL_MEAN, i.e. zero after normalisation) or "black".
    # Paper silent; ours.
    _C.HPPS.UNIFY.CANVAS_FILL = "pixel_mean"

    # ---------------------------------------------------------------------------------------- #
    # The two augmented views Aug_1(x), Aug_2(x) of every image (paper, "Self-supervised learning")
    # ---------------------------------------------------------------------------------------- #
    _C.HPPS.VIEWS = CN()
    # Number of views per image; the paper uses 2 (SimSiam pair). 1 turns the pair off.
    _C.HPPS.VIEWS.NUM = 2
    # Random crop of each view, applied with CROP_PROB; each side keeps a fraction drawn uniformly
    # from [CROP_MIN_SIZE, 1] of the image's (h, w) (detectron2 RandomCrop "relative_range").
    # SimSiam uses RandomResizedCrop(scale 0.2-1) on object-centric images (docs/anchors.md
    # table b); on scenes we keep most of the frame so that persons survive. Ours.
    _C.HPPS.VIEWS.CROP_PROB = 0.5
    _C.HPPS.VIEWS.CROP_MIN_SIZE = (0.6, 0.6)
    # A person box cut by the view's crop keeps its label only if at least this fraction of its
    # area stays inside; otherwise it becomes an ignore region in that view. Ours.
    _C.HPPS.VIEWS.MIN_VISIBLE = 0.5
    # Horizontal flip probability (SimSiam: 0.5).
    _C.HPPS.VIEWS.HFLIP_PROB = 0.5
    # Colour jitter (brightness, contrast, saturation, hue) applied with probability
    # COLOR_JITTER_PROB. SimSiam: (0.4, 0.4, 0.4, 0.1) with p = 0.8 (docs/anchors.md table b).
    _C.HPPS.VIEWS.COLOR_JITTER = (0.4, 0.4, 0.4, 0.1)
    _C.HPPS.VIEWS.COLOR_JITTER_PROB = 0.8
    # Random grayscale probability. SimSiam: 0.2.
    _C.HPPS.VIEWS.GRAYSCALE_PROB = 0.2
    # Gaussian blur with sigma drawn from BLUR_SIGMA (in pixels of the view), probability
    # BLUR_PROB. SimSiam: sigma in [0.1, 2.0], p = 0.5.
    _C.HPPS.VIEWS.BLUR_PROB = 0.5
    _C.HPPS.VIEWS.BLUR_SIGMA = (0.1, 2.0)
    return cfg
