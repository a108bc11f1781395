"""
Read the image of a dataset record, wherever its pixels are stored.

Most records name an image file (``record["file_name"]``). Two datasets keep their pixels inside
one container, described by ``record["image_source"]`` (see :mod:`hpps_d2.data.datasets`):

* ``{"type": "lmdb", "path": <LMDB folder>, "key": str}``: LUPerson; the value is encoded JPEG
  bytes, decoded with OpenCV.
* ``{"type": "hdf5", "path": <cuhk-03.mat>, "dataset": <HDF5 object name>}``: CUHK03 raw release;
  MATLAB stores the (H, W, 3) RGB array transposed, so the object holds (3, W, H).

**EXIF orientation is ignored**: every image is decoded in its stored pixel order, never turned
by an EXIF ``Orientation`` tag. The loaders take image sizes from file headers
(:func:`hpps_d2.data.datasets.common.image_size`, which reports the stored size) and every
benchmark's boxes are drawn on the stored pixels, so applying the tag would rotate the image
away from its own annotations and its size (the training mapper would then stop at the first
such image: its decoded size no longer matches the record's). detectron2's ``read_image``
(detectron2/data/detection_utils.py, v0.6: ``read_image`` L166-185 calls
``_apply_exif_orientation`` L119-163 at L184) does apply the tag, so it is not used here; OpenCV's
``imdecode`` applies it too unless given ``IMREAD_IGNORE_ORIENTATION``.

Opened LMDB environments and HDF5 files are cached per process: the cache is keyed by
``os.getpid()``, so a data-loader worker started by ``fork`` opens its own handles instead of
using the ones inherited from its parent (LMDB forbids using an environment after ``fork``). An
inherited LMDB environment is closed in the child first, because py-lmdb refuses to open an
environment twice in one process; this only unmaps the child's copy. Code that needs an LMDB
environment in the same process (the LUPerson loader) must take it from :func:`open_lmdb` for
the same reason.
"""

import os
from typing import Dict, Tuple

import cv2
import h5py
import lmdb
import numpy as np
from detectron2.data import detection_utils
from PIL import Image, UnidentifiedImageError

from .datasets.common import ImageReadError

__all__ = [
    "IMAGENET_MEAN_RGB",
    "IMAGENET_STD_RGB",
    "SUPPORTED_FORMATS",
    "check_pixel_statistics",
    "open_lmdb",
    "read_image",
]

#: OpenCV decoding flags: 3-channel BGR in the stored pixel order (no EXIF rotation).
_CV2_FLAGS = cv2.IMREAD_COLOR | cv2.IMREAD_IGNORE_ORIENTATION

#: Channel orders :func:`read_image` returns (detectron2's ``INPUT.FORMAT`` values).
SUPPORTED_FORMATS = ("BGR", "RGB")
#: torchvision's ImageNet normalisation, on the 0-255 scale, RGB order: its models are trained on
#: ``Normalize(mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225))`` of ``x / 255`` RGB images
#: (pytorch/vision references/classification/presets.py L11-12; detectron2
#: tools/convert-torchvision-to-d2.py L18-26 gives these 0-255 values with ``FORMAT: "RGB"``).
IMAGENET_MEAN_RGB = (123.675, 116.28, 103.53)
IMAGENET_STD_RGB = (58.395, 57.12, 57.375)

# (pid, kind, path) -> lmdb.Environment or h5py.File. HDF5 entries of other pids (a forked
# parent's) stay referenced and are never used by this process.
_HANDLES: Dict[Tuple[int, str, str], object] = {}


def check_pixel_statistics(input_format: str, pixel_mean, pixel_std, where: str = "config") -> None:
    """
    Refuse ImageNet's pixel statistics written in the channel order opposite to ``input_format``.

    ``MODEL.PIXEL_MEAN`` / ``MODEL.PIXEL_STD`` are applied channel by channel to images in
    ``INPUT.FORMAT`` order, so with RGB images they must be given R, G, B. ImageNet's values (see
    :data:`IMAGENET_MEAN_RGB`) are the ones recognisable in the wrong order; other statistics (a
    caffe-style std of 1, a dataset's own mean) cannot be checked and pass.

    Args:
        input_format: ``cfg.INPUT.FORMAT``.
        pixel_mean, pixel_std: 3 values each (``cfg.MODEL.PIXEL_*`` or a model's buffers).
        where: named in the error (the config file, the checkpoint, the caller).

    Raises:
        ValueError: unknown ``input_format``, or ImageNet's mean or std in the other order.
    """
    if input_format not in SUPPORTED_FORMATS:
        raise ValueError(
            f"{where}: INPUT.FORMAT must be one of {SUPPORTED_FORMATS}, got {input_format!r}"
        )
    other = "BGR" if input_format == "RGB" else "RGB"
    for key, values, rgb in (
        ("MODEL.PIXEL_MEAN", pixel_mean, IMAGENET_MEAN_RGB),
        ("MODEL.PIXEL_STD", pixel_std, IMAGENET_STD_RGB),
    ):
        values = np.asarray(values, dtype=np.float64).reshape(-1)
        if values.shape != (3,):
            continue
        right = list(rgb if input_format == "RGB" else rgb[::-1])
        reversed_ = np.allclose(values, right[::-1], atol=0.05)
        if reversed_ and not np.allclose(values, right, atol=0.05):
            shown = [round(float(v), 3) for v in values]
            raise ValueError(
                f"{where}: {key} {shown} is ImageNet's in {other} order, but INPUT.FORMAT is "
                f"{input_format!r}: use {key} {right} (or INPUT.FORMAT {other!r} with these "
                f"values and weights converted for {other} input)"
            )


def _handle(kind: str, path: str):
    pid = os.getpid()
    key = (pid, kind, path)
    if key not in _HANDLES:
        if not os.path.exists(path):
            raise ImageReadError(f"image container not found: {path}")
        if kind == "lmdb":
            for stale in [k for k in _HANDLES if k[1:] == (kind, path) and k[0] != pid]:
                _HANDLES.pop(stale).close()  # inherited through fork: never use, close our copy
            try:
                _HANDLES[key] = lmdb.open(
                    path,
                    subdir=os.path.isdir(path),
                    readonly=True,
                    lock=False,
                    readahead=False,
                    meminit=False,
                )
            except lmdb.Error as e:
                raise ImageReadError(f"cannot open LMDB {path}: {e}") from None
        else:
            try:
                _HANDLES[key] = h5py.File(path, "r")
            except OSError as e:
                raise ImageReadError(f"cannot open HDF5 file {path}: {e}") from None
    return _HANDLES[key]


def open_lmdb(path: str) -> lmdb.Environment:
    """
    The read-only LMDB environment at ``path``, opened once per process.

    Raises:
        ImageReadError: when ``path`` does not exist or is not an LMDB environment.
    """
    return _handle("lmdb", path)


def _read_lmdb(path: str, key: str) -> np.ndarray:
    env = open_lmdb(path)
    try:
        with env.begin() as txn:
            buf = txn.get(key.encode("utf-8"))
    except lmdb.Error as e:
        raise ImageReadError(f"cannot read key {key!r} of LMDB {path}: {e}") from None
    if buf is None:
        raise ImageReadError(f"key {key!r} not found in LMDB {path}")
    image = cv2.imdecode(np.frombuffer(buf, dtype=np.uint8), _CV2_FLAGS)
    if image is None:
        raise ImageReadError(f"cannot decode the image bytes of key {key!r} in LMDB {path}")
    return image  # BGR


def _read_hdf5(path: str, dataset: str) -> np.ndarray:
    f = _handle("hdf5", path)
    try:
        obj = f[dataset]
        if not isinstance(obj, h5py.Dataset):
            raise KeyError(f"{dataset} is a group")
        array = obj[()]
    except (KeyError, ValueError, OSError, TypeError) as e:
        raise ImageReadError(f"cannot read dataset {dataset!r} of HDF5 file {path}: {e}") from None
    image = np.asarray(array).T
    if image.ndim != 3 or image.shape[2] != 3 or image.size == 0 or image.dtype != np.uint8:
        raise ImageReadError(
            f"dataset {dataset!r} of HDF5 file {path} is not an image: expected a transposed "
            f"(H, W, 3) uint8 array, got {image.dtype} of shape {image.shape}"
        )
    return image[:, :, ::-1]  # RGB -> BGR


def _read_file(file_name: str, format: str) -> np.ndarray:
    # As detectron2's read_image, without its _apply_exif_orientation (see the module docstring).
    try:
        with Image.open(file_name) as image:
            return detection_utils.convert_PIL_to_numpy(image, format)
    except FileNotFoundError:
        raise ImageReadError(f"image file not found: {file_name}") from None
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as e:
        raise ImageReadError(f"cannot decode image {file_name}: {e}") from None


def read_image(record: dict, format: str = "BGR") -> np.ndarray:
    """
    Read the image of a record.

    Args:
        record: a dataset record; ``record["image_source"]`` is used when present, else
            ``record["file_name"]``.
        format: ``"BGR"`` (detectron2's default) or ``"RGB"``.

    Returns:
        np.ndarray: (H, W, 3) uint8 image in the given channel order.

    Raises:
        ImageReadError: naming the file (and the LMDB key or HDF5 dataset) when the image is
            missing or cannot be decoded.
    """
    if format not in SUPPORTED_FORMATS:
        raise ValueError(f"format must be one of {SUPPORTED_FORMATS}, got {format!r}")
    source = record.get("image_source")
    if source is None:
        image = _read_file(record["file_name"], format)
        return np.ascontiguousarray(image)
    kind = source.get("type")
    if kind == "lmdb":
        image = _read_lmdb(source["path"], source["key"])
    elif kind == "hdf5":
        image = _read_hdf5(source["path"], source["dataset"])
    else:
        raise ValueError(f"image_source type must be 'lmdb' or 'hdf5', got {kind!r}")
    if format == "RGB":
        image = image[:, :, ::-1]
    return np.ascontiguousarray(image)
