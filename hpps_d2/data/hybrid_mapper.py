"""
The mapper of hybrid pre-training: one unified record in, two augmented views out.

Each view is a full detectron2 model input (image tensor + ``Instances``), the views of one image
share their identities (``gt_pids``), so the consistency loss (Eq. 5-6) can match a person's boxes
across views by identity, and every output carries the domain label for the alignment modules.
"""
import logging
from typing import List, Optional

import numpy as np
import torch
from detectron2.config import configurable
from detectron2.data import transforms as T
from detectron2.structures import Boxes, BoxMode, Instances

from .canvas import build_reid_canvas
from .image_io import read_image
from .transforms import ColorJitter, GaussianBlur, RandomCropKeepBoxes, RandomGrayscale

__all__ = ["HybridDatasetMapper", "build_view_augmentation"]

logger = logging.getLogger(__name__)


def build_view_augmentation(cfg, canvas: bool = False) -> List[T.Augmentation]:
    """
    The augmentation of one view: random crop, resize, flip, colour jitter, grayscale, blur.

    Geometric sizes come from ``cfg.INPUT`` (as detectron2's DatasetMapper); the view-specific
    probabilities from ``cfg.HPPS.VIEWS``.

    Args:
        canvas: the augmentation of a re-ID canvas (ours). A canvas is built at model-input scale
            (:mod:`.canvas`), so it is not resized again, and its crop
            (:class:`~.transforms.RandomCropKeepBoxes`, same crop sizes) keeps the person's whole
            box: the person keeps the height the canvas operation gave it and is never lost.
    """
    v, fmt = cfg.HPPS.VIEWS, cfg.INPUT.FORMAT
    augs: List[T.Augmentation] = []
    crop_size = tuple(v.CROP_MIN_SIZE)
    if canvas:
        if v.CROP_PROB > 0:
            keep_person = RandomCropKeepBoxes("relative_range", crop_size)
            augs.append(T.RandomApply(keep_person, v.CROP_PROB))
    else:
        if v.CROP_PROB > 0:
            augs.append(T.RandomApply(T.RandomCrop("relative_range", crop_size), v.CROP_PROB))
        i = cfg.INPUT
        augs.append(
            T.ResizeShortestEdge(i.MIN_SIZE_TRAIN, i.MAX_SIZE_TRAIN, i.MIN_SIZE_TRAIN_SAMPLING)
        )
    if v.HFLIP_PROB > 0:
        augs.append(T.RandomFlip(prob=v.HFLIP_PROB, horizontal=True))
    if v.COLOR_JITTER_PROB > 0:
        augs.append(T.RandomApply(ColorJitter(*v.COLOR_JITTER, image_format=fmt), v.COLOR_JITTER_PROB))
    if v.GRAYSCALE_PROB > 0:
        augs.append(RandomGrayscale(v.GRAYSCALE_PROB, image_format=fmt))
    if v.BLUR_PROB > 0:
        augs.append(GaussianBlur(v.BLUR_PROB, tuple(v.BLUR_SIGMA)))
    return augs


def _box_array(annos: List[dict]) -> np.ndarray:
    if not annos:
        return np.zeros((0, 4), dtype=np.float32)
    return np.array(
        [BoxMode.convert(a["bbox"], a.get("bbox_mode", BoxMode.XYXY_ABS), BoxMode.XYXY_ABS) for a in annos],
        dtype=np.float32,
    ).reshape(-1, 4)


class HybridDatasetMapper:
    """
    Map a unified record (:mod:`hpps_d2.data.unify`) to ``num_views`` augmented views.

    Returns a dict::

        {
            "file_name", "image_id", "source", "task", "domain", "losses",   # from the record
            "views": [                     # num_views entries, independently augmented
                {
                    "image": Tensor (3, H, W) uint8, in cfg.INPUT.FORMAT,
                    "height": H, "width": W,
                    "instances": Instances with gt_boxes (N, 4), gt_classes (N,) zeros,
                                 gt_pids (N,) int64 global identities,
                    "ignore_boxes": Boxes (K, 4), ignore regions of this view,
                }, ...
            ],
        }

    A person box that a view's crop leaves less than ``min_visible`` of its area becomes an ignore
    region in that view (neither person nor background). Re-ID crops (``record["crop"]``) are first
    placed on a canvas by the configured operation (expand_resize / random_paste); both views share
    that canvas, and augment it with ``canvas_augmentations`` (no resize, a crop that keeps the
    person: :func:`build_view_augmentation` with ``canvas=True``), so the person's height at the
    model input is the one the canvas operation gave it.
    """

    @configurable
    def __init__(
        self,
        *,
        augmentations: List[T.Augmentation],
        reid_canvas,
        canvas_augmentations: Optional[List[T.Augmentation]] = None,
        image_format: str = "BGR",
        num_views: int = 2,
        min_visible: float = 0.5,
    ):
        """
        Args:
            augmentations: of a scene's views.
            reid_canvas: the canvas operation of :mod:`.canvas`.
            canvas_augmentations: of a re-ID canvas's views; ``None``: ``augmentations``.
        """
        self.augmentations = T.AugmentationList(augmentations)
        self.canvas_augmentations = (
            self.augmentations
            if canvas_augmentations is None
            else T.AugmentationList(canvas_augmentations)
        )
        self.reid_canvas = reid_canvas
        self.image_format = image_format
        self.num_views = num_views
        self.min_visible = min_visible
        logger.info(
            f"HybridDatasetMapper: {num_views} views, augmentations {augmentations}, "
            f"re-ID canvas {reid_canvas.__class__.__name__} then {canvas_augmentations}"
        )

    @classmethod
    def from_config(cls, cfg):
        return {
            "augmentations": build_view_augmentation(cfg),
            "canvas_augmentations": build_view_augmentation(cfg, canvas=True),
            "reid_canvas": build_reid_canvas(cfg),
            "image_format": cfg.INPUT.FORMAT,
            "num_views": cfg.HPPS.VIEWS.NUM,
            "min_visible": cfg.HPPS.VIEWS.MIN_VISIBLE,
        }

    def scene(self, record: dict):
        """The image and annotations of a record, placing a re-ID crop on its canvas."""
        image = read_image(record, self.image_format)
        if record.get("crop"):
            image, box = self.reid_canvas(image)
            annos = [{"bbox": box, "bbox_mode": BoxMode.XYXY_ABS, "person_id": record["person_id"], "iscrowd": 0}]
        else:
            h, w = image.shape[:2]
            if (record.get("height", h), record.get("width", w)) != (h, w):
                raise ValueError(
                    f"{record['file_name']}: image is {h}x{w} but its annotation says "
                    f"{record['height']}x{record['width']}"
                )
            annos = record["annotations"]
        return image, annos

    def view(
        self,
        image: np.ndarray,
        boxes: np.ndarray,
        pids: np.ndarray,
        crowd: np.ndarray,
        canvas: bool = False,
    ) -> dict:
        """
        One augmented view.

        Args:
            image: (H, W, 3) uint8.
            boxes: (N, 4) float32 XYXY of every annotation.
            pids: (N,) int64 global identities.
            crowd: (N,) bool, True for ignore regions.
            canvas: the image is a re-ID canvas (augmented by ``canvas_augmentations``).
        """
        aug_input = T.AugInput(image, boxes=boxes[~crowd] if len(boxes) else None)
        transforms = (self.canvas_augmentations if canvas else self.augmentations)(aug_input)
        img = aug_input.image
        h, w = img.shape[:2]
        if len(boxes):
            moved = transforms.apply_box(boxes).astype(np.float32)
            clipped = moved.copy()
            clipped[:, 0::2] = clipped[:, 0::2].clip(0, w)
            clipped[:, 1::2] = clipped[:, 1::2].clip(0, h)
        else:
            moved = clipped = boxes
        area = lambda b: (b[:, 2] - b[:, 0]).clip(min=0) * (b[:, 3] - b[:, 1]).clip(min=0)  # noqa: E731
        kept_area = area(clipped)
        visible = kept_area > 0
        full = area(moved)
        person = visible & ~crowd & (kept_area >= self.min_visible * np.maximum(full, 1e-6))
        ignore = visible & ~person

        inst = Instances((h, w))
        inst.gt_boxes = Boxes(torch.as_tensor(clipped[person]).reshape(-1, 4))
        inst.gt_classes = torch.zeros(int(person.sum()), dtype=torch.int64)
        inst.gt_pids = torch.as_tensor(pids[person], dtype=torch.int64)
        return {
            "image": torch.as_tensor(np.ascontiguousarray(img.transpose(2, 0, 1))),
            "height": h,
            "width": w,
            "instances": inst,
            "ignore_boxes": Boxes(torch.as_tensor(clipped[ignore]).reshape(-1, 4)),
        }

    def __call__(self, record: dict) -> dict:
        image, annos = self.scene(record)
        boxes = _box_array(annos)
        pids = np.array([a.get("person_id", -1) for a in annos], dtype=np.int64)
        crowd = np.array([bool(a.get("iscrowd", 0)) for a in annos], dtype=bool)
        out = {k: record[k] for k in ("file_name", "image_id", "source", "task", "domain", "losses") if k in record}
        canvas = bool(record.get("crop"))
        out["views"] = [self.view(image, boxes, pids, crowd, canvas) for _ in range(self.num_views)]
        return out
