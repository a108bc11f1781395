"""
Reading MATLAB v5 ``.mat`` files (CUHK-SYSU, PRW, CUHK03 split configs) with clear errors.

``scipy.io.loadmat`` gives strings as 1-element arrays (possibly nested in cells), structs as numpy
structured arrays whose fields loaders read by position, and integer boxes as uint8/uint16. These
helpers turn each into a plain Python value and turn every failure into a
:class:`~.common.DatasetFormatError` that names the file and what was expected.
"""
from typing import Dict, Optional, Sequence, Tuple

import numpy as np
import scipy.io

from .common import DatasetFormatError, require_path

__all__ = [
    "Box",
    "MatValueError",
    "load_mat",
    "read_mat_variable",
    "as_string",
    "as_box",
    "struct_items",
    "mat_string",
    "mat_box",
    "mat_structs",
]

Box = Tuple[float, float, float, float]


def load_mat(path: str) -> Dict[str, object]:
    """``scipy.io.loadmat(path)``, any failure re-raised as a DatasetFormatError naming ``path``."""
    try:
        return scipy.io.loadmat(path)
    except Exception as e:  # scipy raises many unrelated types for a damaged file
        raise DatasetFormatError(
            f"{path}: not a readable MATLAB v5 .mat file ({type(e).__name__}: {e})"
        ) from None


class MatValueError(Exception):
    """A .mat value of the wrong kind; the caller adds where it was found.

    The ``as_*`` / ``struct_items`` readers raise it, for hot loops that locate errors once; the
    ``mat_*`` readers wrap them and raise DatasetFormatError with a location.
    """


def read_mat_variable(path: str, names: Sequence[str], dataset: str, section: str) -> np.ndarray:
    """
    Read the first variable of ``names`` present in a MATLAB v5 ``.mat`` file.

    Raises:
        DatasetNotFoundError: when ``path`` does not exist.
        DatasetFormatError: naming ``path`` when it cannot be parsed or holds none of ``names``.
    """
    require_path(path, dataset, section)
    mat = load_mat(path)
    for name in names:
        if name in mat:
            return mat[name]
    found = sorted(k for k in mat if not k.startswith("__"))
    raise DatasetFormatError(
        f"{path}: expected a variable named {' or '.join(map(repr, names))}, found {found}"
    )


def as_string(value) -> str:
    v = value
    while isinstance(v, np.ndarray):
        if v.size != 1:
            raise MatValueError(f"expected a string, got an array of shape {v.shape}")
        v = v.reshape(-1)[0]
    if not isinstance(v, str) or not v:
        raise MatValueError(f"expected a non-empty string, got {v!r}")
    return str(v)


def as_box(value) -> Optional[Box]:
    a = np.asarray(value)
    while a.dtype == object and a.size == 1:
        a = np.asarray(a.reshape(-1)[0])
    if a.size == 0:
        return None
    if a.size != 4 or a.dtype.kind not in "uif":
        raise MatValueError(f"expected a 1x4 numeric [x, y, w, h], got shape {a.shape} {a.dtype}")
    # Cast before any arithmetic: x + w would wrap around in uint8.
    box = tuple(float(v) for v in a.reshape(-1))
    if not all(np.isfinite(box)):
        raise MatValueError(f"expected finite [x, y, w, h], got {box}")
    return box


def mat_string(value, where: str) -> str:
    """A MATLAB string as loadmat gives it (a 1-element array, possibly nested in cells)."""
    try:
        return as_string(value)
    except MatValueError as e:
        raise DatasetFormatError(f"{where}: {e}") from None


def mat_box(value, where: str) -> Optional[Box]:
    """
    A MATLAB ``[x, y, w, h]`` box of any integer or float type.

    Returns:
        tuple[float] of length 4, or None for an empty (1, 0) array (a negative gallery entry).
    """
    try:
        return as_box(value)
    except MatValueError as e:
        raise DatasetFormatError(f"{where}: {e}") from None


def struct_items(value, fields: Sequence[str]) -> list:
    a = value
    while isinstance(a, np.ndarray) and a.dtype == object and a.size == 1:
        a = a.reshape(-1)[0]  # a struct wrapped in a cell
    if not isinstance(a, np.ndarray) or a.dtype.names is None or len(a.dtype.names) < len(fields):
        raise MatValueError(f"expected a struct array with fields {tuple(fields)}")
    return list(a.reshape(-1))


def mat_structs(value, fields: Sequence[str], where: str) -> list:
    """The elements of a MATLAB struct array of any shape; fields are read by position."""
    try:
        return struct_items(value, fields)
    except MatValueError as e:
        raise DatasetFormatError(f"{where}: {e}") from None
