"""Small helpers for tests that build dataset fixtures in their real on-disk formats."""
import os

import numpy as np
from PIL import Image


def write_image(path, height, width, seed=0, fmt=None):
    """Write a random RGB image of the given size (format from the extension unless ``fmt``)."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    rng = np.random.default_rng(seed)
    Image.fromarray(rng.integers(0, 255, (height, width, 3), dtype=np.uint8)).save(path, format=fmt)
    return path
