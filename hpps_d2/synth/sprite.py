"""A drawn object ready to be pasted into a scene: BGR pixels, a coverage mask and its geometry."""

import dataclasses
from typing import Dict, Optional, Tuple

import numpy as np

__all__ = ["Sprite", "SHIFT", "pt", "tight_box"]

#: Fractional bits used for sub-pixel cv2 drawing (coordinates are multiplied by ``1 << SHIFT``).
SHIFT = 3
_S = 1 << SHIFT


def pt(x: float, y: float) -> Tuple[int, int]:
    """A sub-pixel point for cv2 drawing calls made with ``shift=SHIFT``."""
    return int(round(x * _S)), int(round(y * _S))


def tight_box(mask: np.ndarray) -> Tuple[int, int, int, int]:
    """Tight box ``(x0, y0, x1, y1)`` (exclusive ends) of the True pixels of a 2-D mask."""
    rows = np.flatnonzero(mask.any(axis=1))
    cols = np.flatnonzero(mask.any(axis=0))
    if rows.size == 0:
        return 0, 0, 0, 0
    return int(cols[0]), int(rows[0]), int(cols[-1]) + 1, int(rows[-1]) + 1


@dataclasses.dataclass(eq=False)
class Sprite:
    """
    Attributes:
        image: (h, w, 3) uint8 BGR.
        mask: (h, w) bool, the pixels the object covers.
        anchor: (x, y) sprite point that stands on the ground (the feet of a person).
        box: (x0, y0, x1, y1) tight box of ``mask`` in sprite pixels, exclusive ends.
        head: (x0, y0, x1, y1) head box in sprite pixels (persons only).
        joints: name -> (x, y) sprite coordinates of the 17 COCO keypoints (persons only).
        alpha: opacity when pasted; below 1 the sprite tints the scene and occludes nothing.
        meta: free-form facts about the drawing (persons: ``facing``, ``sitting``).
    """

    image: np.ndarray
    mask: np.ndarray
    anchor: Tuple[float, float]
    box: Tuple[int, int, int, int]
    head: Optional[Tuple[float, float, float, float]] = None
    joints: Optional[Dict[str, Tuple[float, float]]] = None
    alpha: float = 1.0
    meta: Optional[dict] = None

    @property
    def area(self) -> int:
        return int(self.mask.sum())

    @classmethod
    def from_drawing(cls, image: np.ndarray, mask: np.ndarray, anchor=None, **kw) -> "Sprite":
        """Build a sprite and compute its tight box; ``anchor`` defaults to the bottom centre."""
        box = tight_box(mask)
        if anchor is None:
            anchor = ((box[0] + box[2]) / 2.0, float(box[3]))
        return cls(image=image, mask=mask, anchor=anchor, box=box, **kw)
