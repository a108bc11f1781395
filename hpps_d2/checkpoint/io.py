"""
Reading weight files: the one reader of every checkpoint this project loads.

``MODEL.WEIGHTS`` (:func:`~hpps_d2.checkpoint.init.load_init_weights`), ``--resume``'s
``last_checkpoint`` and ``--eval-only``
(:class:`~hpps_d2.checkpoint.checkpointer.SafeCheckpointer`),
``tools/export_weights.py`` and ``tools/convert_weights.py`` all read files with
:func:`load_weights_file`, which never runs code a file carries:

* torch files (``.pth`` and anything not ``.pkl``): ``torch.load(weights_only=True)``; a file that
  needs other globals is refused (:class:`UnsafeWeightsError`) unless a tool's ``--allow-pickle``
  says the file is trusted;
* ``.pkl`` files (detectron2 / Detectron model zoo: dicts of numpy arrays): a restricted unpickler
  that builds only dict / list / tuple / str / bytes / int / float / bool / None, ``OrderedDict``
  and numpy arrays, dtypes and scalars (:data:`ALLOWED_GLOBALS`); anything else is refused naming
  the global. detectron2's own reader (``pickle.load``) runs whatever the file says.

Broken files (missing, empty, truncated, not a dict, no tensors) raise an error naming the file and
what was expected, instead of a library's EOFError / miniz error / AttributeError.
"""
import os
import pickle
from collections import OrderedDict
from collections.abc import Mapping
from typing import Any, Dict

import numpy as np
import torch

from ..utils.safe_pickle import restricted_load

__all__ = [
    "ALLOWED_GLOBALS",
    "EXPECTED",
    "UnsafeWeightsError",
    "WeightsFileError",
    "as_checkpoint",
    "load_weights_file",
    "missing_weights_message",
    "read_checkpoint",
    "require_weights_file",
]

#: What a weights file should hold (quoted in errors).
EXPECTED = "a dict of tensors or numpy arrays: {'model': {name: tensor}} or {name: tensor}"


class WeightsFileError(ValueError):
    """A weights file is unreadable or does not hold weights; the message names the file."""


class UnsafeWeightsError(WeightsFileError, pickle.UnpicklingError):
    """A weights file would build objects beyond tensors, arrays and plain types (run code)."""


def _numpy_core():
    try:
        from numpy._core import multiarray, numeric  # numpy >= 2
    except ImportError:  # pragma: no cover - numpy 1.x
        from numpy.core import multiarray, numeric
    return multiarray, numeric


_MA, _NUMERIC = _numpy_core()
#: (module, name) -> object: the only globals a ``.pkl`` weights file may name. Arrays pickle as
#: ``_reconstruct(ndarray, ...)`` + state with a ``dtype`` (protocol 5: ``_frombuffer(bytes, dtype,
#: shape, order)``); numpy scalars as ``scalar(dtype, bytes)``; bytes in protocol-2 pickles as
#: ``_codecs.encode(str, "latin1")``. None of them calls anything the file names.
ALLOWED_GLOBALS = {
    ("collections", "OrderedDict"): OrderedDict,
    ("_codecs", "encode"): __import__("_codecs").encode,
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
    ("numpy.core.multiarray", "_reconstruct"): _MA._reconstruct,
    ("numpy._core.multiarray", "_reconstruct"): _MA._reconstruct,
    ("numpy.core.multiarray", "scalar"): _MA.scalar,
    ("numpy._core.multiarray", "scalar"): _MA.scalar,
}
if hasattr(_NUMERIC, "_frombuffer"):
    ALLOWED_GLOBALS[("numpy.core.numeric", "_frombuffer")] = _NUMERIC._frombuffer
    ALLOWED_GLOBALS[("numpy._core.numeric", "_frombuffer")] = _NUMERIC._frombuffer


def _refuse(path: str):
    def error(what: str) -> UnsafeWeightsError:
        return UnsafeWeightsError(
            f"{path} names the global {what}, which is not a tensor, array or "
            f"plain type: unpickling it could run code, so the file is refused. A .pkl weights "
            f"file may hold only {EXPECTED} (numpy arrays, dicts, lists, numbers, strings)"
        )

    return error


def missing_weights_message(path: str, key: str = "MODEL.WEIGHTS") -> str:
    """What to tell a user whose weights file ``path`` does not exist: the commands that make it."""
    export = (
        f"the whole hybrid pre-trained model: `python tools/export_weights.py "
        f"PRETRAIN_OUTPUT_DIR/model_final.pth --whole {path}`"
    )
    convert = (
        f"ImageNet backbone weights: `python tools/convert_weights.py --src torchvision "
        f"TORCHVISION_WEIGHTS.pth {path}`"
    )
    first, second = (export, convert) if "whole" in os.path.basename(path) else (convert, export)
    scratch = f'; {key} "" trains from scratch' if key == "MODEL.WEIGHTS" else ""
    return (
        f"{key} {path}: no such file. Make it first, {first}; or {second} "
        f"(README.md, 'Weights'){scratch}"
    )


def is_missing_file(path: str) -> bool:
    """True when ``path`` names a local file that does not exist (empty and URLs are not)."""
    return bool(path) and "://" not in path and not os.path.isfile(path)


def require_weights_file(path: str, key: str = "MODEL.WEIGHTS") -> None:
    """Raise FileNotFoundError (saying how to make it) unless ``path`` is empty, a URL or a file."""
    if is_missing_file(path):
        raise FileNotFoundError(missing_weights_message(path, key))


def _local_path(path: str) -> str:
    if "://" in path:
        from detectron2.utils.file_io import PathManager

        return PathManager.get_local_path(path)
    return path


def _first_line(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return f"{type(e).__name__}: {text[0] if text else ''}".rstrip(": ")


def _load_pickle(local: str, path: str) -> Any:
    try:
        with open(local, "rb") as f:
            # encoding latin1: Python 2 pickles of the Detectron model zoo
            return restricted_load(f, ALLOWED_GLOBALS, _refuse(path), encoding="latin1")
    except UnsafeWeightsError:
        raise
    except Exception as e:  # EOFError, UnpicklingError, ValueError, ... from broken bytes
        raise WeightsFileError(
            f"{path}: truncated or not a pickle ({_first_line(e)}); expected {EXPECTED}"
        ) from None


def _load_torch(local: str, path: str, allow_pickle: bool) -> Any:
    try:
        return torch.load(local, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        forbidden = [line.strip() for line in str(e).splitlines() if "GLOBAL" in line]
        if not forbidden:
            raise WeightsFileError(
                f"{path}: truncated or not a torch checkpoint ({_first_line(e)}); "
                f"expected {EXPECTED}"
            ) from None
        if not allow_pickle:
            raise UnsafeWeightsError(
                f"{path} holds Python objects beyond tensors and plain types, which "
                f"torch.load(weights_only=True) refuses (loading them could run code): "
                f"{' '.join(forbidden)} If you trust the file, tools/convert_weights.py and "
                f"tools/export_weights.py load it with --allow-pickle"
            ) from None
    except Exception as e:  # RuntimeError (zip/miniz), EOFError, KeyError, ... from broken bytes
        raise WeightsFileError(
            f"{path}: truncated or not a torch checkpoint ({_first_line(e)}); "
            f"expected {EXPECTED}"
        ) from None
    return torch.load(local, map_location="cpu", weights_only=False)


def load_weights_file(path: str, allow_pickle: bool = False) -> Dict:
    """
    The dict stored in weights file ``path`` (a ``.pkl`` or a torch file), loaded to the CPU
    without running code.

    Args:
        allow_pickle: torch files only: fall back to ``weights_only=False`` for trusted files
            whose extra entries are Python objects. ``.pkl`` files are always read restricted.

    Raises:
        FileNotFoundError: no such file (the message says how to make one).
        UnsafeWeightsError: the file names a global outside tensors/arrays/plain types.
        WeightsFileError: empty, truncated, not a pickle / torch file, or not a dict.
    """
    local = _local_path(path)
    if not os.path.isfile(local):
        raise FileNotFoundError(missing_weights_message(path, "weights file"))
    if os.path.getsize(local) == 0:
        raise WeightsFileError(f"{path} is empty (0 bytes): expected {EXPECTED}")
    if local.endswith(".pkl"):
        obj = _load_pickle(local, path)
    else:
        obj = _load_torch(local, path, allow_pickle)
    if not isinstance(obj, Mapping):
        raise WeightsFileError(f"{path} holds a {type(obj).__name__}: expected {EXPECTED}")
    return obj


def as_checkpoint(data: Mapping, path: str) -> Dict:
    """
    ``data`` read from ``path`` as detectron2's checkpointer sees it: ``{"model": state_dict,
    ...}``, following ``DetectionCheckpointer._load_file``'s conventions (detectron2 model zoo
    ``.pkl`` with ``__author__``; Caffe2 ``.pkl`` with ``blobs``; pycls ``.pyth``; torch files).

    Raises:
        WeightsFileError: the state dict holds no tensors/arrays, or values of other types.
    """
    data = dict(data)
    if path.endswith(".pkl") and not ("model" in data and "__author__" in data):
        blobs = data.get("blobs", data)
        if not isinstance(blobs, Mapping):
            raise WeightsFileError(
                f"{path}: 'blobs' is a {type(blobs).__name__}: expected {EXPECTED}"
            )
        model = {k: v for k, v in blobs.items() if not str(k).endswith("_momentum")}
        data = {"model": model, "__author__": "Caffe2", "matching_heuristics": True}
    elif path.endswith(".pyth"):
        if not isinstance(data.get("model_state"), Mapping):
            raise WeightsFileError(f"{path}: a pycls .pyth checkpoint must hold 'model_state'")
        model = {
            k: v for k, v in data["model_state"].items() if not k.endswith("num_batches_tracked")
        }
        data = {"model": model, "__author__": "pycls", "matching_heuristics": True}
    elif "model" not in data:
        data = {"model": data}
    model = data["model"]
    if not isinstance(model, Mapping):
        raise WeightsFileError(f"{path}: 'model' is a {type(model).__name__}: expected {EXPECTED}")
    arrays = (torch.Tensor, np.ndarray)
    if not any(isinstance(v, arrays) for v in model.values()):
        raise WeightsFileError(
            f"{path} holds no tensors (keys: {sorted(map(str, model))[:8]}): expected {EXPECTED}"
        )
    bad = [k for k, v in model.items() if not isinstance(v, arrays)]
    if bad:
        raise WeightsFileError(
            f"{path}: {len(bad)} entries of the state dict are not tensors or arrays (e.g. "
            f"{bad[0]!r}: {type(model[bad[0]]).__name__}): expected {EXPECTED}"
        )
    return data


def read_checkpoint(path: str) -> Dict:
    """:func:`load_weights_file` then :func:`as_checkpoint`: a checkpoint ``{"model": ...}``."""
    return as_checkpoint(load_weights_file(path), path)
