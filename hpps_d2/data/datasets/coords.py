"""Checks of box coordinates read from JSON or text annotation files (one place for all loaders).

Python's ``json`` module accepts ``NaN``, ``Infinity`` and ``-Infinity``, and ``true``/``false``
decode to ``bool``, a subclass of ``int``; ``float()`` parses ``"nan"`` and ``"inf"`` in text
files. None of them is a coordinate: a NaN box fails every size test and looks "non-positive", an
infinite one is clipped silently to the image edge, and ``true`` would be read as ``1``. These
helpers reject such values with a :class:`~hpps_d2.data.datasets.common.DatasetFormatError` that
names the place (``where``), the field and the value, and says ``NaN``, ``infinite`` or
``boolean``.
"""
import math
import numbers
from typing import List, Optional

from .common import DatasetFormatError

__all__ = ["coordinate_problem", "check_coordinate", "check_box"]


def coordinate_problem(value) -> Optional[str]:
    """
    Why ``value`` is not a usable coordinate, or None when it is one.

    Returns:
        ``"boolean"``, ``"NaN"``, ``"infinite"``, ``"not a number"`` or None.
    """
    if isinstance(value, bool):
        return "boolean"
    if not isinstance(value, numbers.Real):
        return "not a number"
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "infinite"
    return None


def check_coordinate(value, where: str, field: str) -> float:
    """
    ``value`` as a float, or a :class:`DatasetFormatError` naming ``where`` and ``field``.

    Args:
        where: the file and line or record, e.g. ``"annotation_train.odgt:17 gtboxes[2]"``.
        field: the field name as the file spells it, e.g. ``"x0"`` or ``"fbox[1]"``.
    """
    problem = coordinate_problem(value)
    if problem is not None:
        raise DatasetFormatError(
            f"{where}: field '{field}' is {problem} ({value!r}); expected a finite number"
        )
    return float(value)


def check_box(box, where: str, field: str, layout: str = "[x, y, w, h]") -> List[float]:
    """
    Check a 4-number box as stored in a JSON file; returns its values as floats, unconverted.

    Args:
        box: the decoded JSON value.
        where: the file and line or record.
        field: the field name, e.g. ``"fbox"`` or ``"bbox"``.
        layout: the expected layout, for the message.

    Returns:
        list[float]: 4 values, in the stored layout.
    """
    if not (isinstance(box, (list, tuple)) and len(box) == 4):
        raise DatasetFormatError(
            f"{where}: field '{field}' must be {layout}, a list of 4 numbers, got {box!r}"
        )
    return [check_coordinate(v, where, f"{field}[{i}]") for i, v in enumerate(box)]
