"""
Initialising a model from a checkpoint: the whole pre-trained model, or its backbone only.

The paper (Fig. 5) finds that initialising the whole person-search model from hybrid pre-training
beats initialising the backbone alone; ``cfg.HPPS.FINETUNE.INIT`` flips between the two with the
same ``MODEL.WEIGHTS``:

* ``"whole"``: every key the model has, except the pre-training-only modules (SimSiam predictor,
  IAMs) and the OIM tables, whose size is the pre-training identity count;
* ``"backbone"``: only the backbone and the per-RoI trunk (ResNet res5 / ShuffleNet stage4+conv5),
  i.e. exactly what a torchvision-style backbone checkpoint holds.

External backbone weights converted by ``tools/convert_weights.py`` hold only backbone keys, so
both modes load them the same way.

Channel order: a checkpoint that records the ``"input_format"`` its first conv reads (the
converter's and the exporter's files do) is refused by a model of the other ``INPUT.FORMAT``, and a
model whose ``pixel_mean`` / ``pixel_std`` are ImageNet's in the other channel order is refused
too (:func:`hpps_d2.data.image_io.check_pixel_statistics`): both would silently feed the frozen
stem colours it was not trained on.

Files are read by :func:`hpps_d2.checkpoint.io.read_checkpoint` (no file runs code; broken files
name themselves). A checkpoint that fits less than half of what the mode loads is an error
(:func:`check_coverage`): a wrong-architecture file would otherwise leave the model at random
initialisation with only a warning. A converted ImageNet backbone passes in both modes: the
backbone and per-RoI trunk are most of the model's tensors.
"""
import logging
from typing import Dict

from detectron2.checkpoint import DetectionCheckpointer

from ..data.image_io import check_pixel_statistics
from .convert import OIM_PREFIX, PRETRAIN_ONLY_PREFIXES
from .io import WeightsFileError, read_checkpoint

__all__ = [
    "INIT_MODES",
    "check_coverage",
    "check_input_format",
    "select_init_keys",
    "load_init_weights",
]

logger = logging.getLogger(__name__)

#: Key prefixes kept by each ``HPPS.FINETUNE.INIT`` mode (None = everything but the exclusions).
INIT_MODES = {"whole": None, "backbone": ("backbone.", "roi_heads.trunk.")}


def select_init_keys(state_dict: Dict, mode: str) -> Dict:
    """The entries of a model state dict that initialisation ``mode`` loads."""
    if mode not in INIT_MODES:
        raise ValueError(f"HPPS.FINETUNE.INIT must be one of {sorted(INIT_MODES)}, got {mode!r}")
    keep = INIT_MODES[mode]
    out = {}
    for k, v in state_dict.items():
        if k.startswith(PRETRAIN_ONLY_PREFIXES) or k.startswith(OIM_PREFIX):
            continue
        if keep is None or k.startswith(keep):
            out[k] = v
    return out


def check_input_format(model, checkpoint: Dict, path: str) -> None:
    """
    Raise ValueError when ``checkpoint`` (loaded from ``path``) records an ``"input_format"``
    other than the model's ``input_format`` (``cfg.INPUT.FORMAT`` of detectron2's meta
    architectures), or when the model's pixel statistics are ImageNet's in the other order.
    Models without these attributes are not checked.
    """
    model_format = getattr(model, "input_format", None)
    if model_format is None:
        return
    if hasattr(model, "pixel_mean") and hasattr(model, "pixel_std"):
        check_pixel_statistics(
            model_format,
            model.pixel_mean.detach().cpu().flatten().tolist(),
            model.pixel_std.detach().cpu().flatten().tolist(),
            where="the model",
        )
    weights_format = checkpoint.get("input_format")
    if weights_format is not None and weights_format != model_format:
        raise ValueError(
            f"{path} holds weights for {weights_format} input, but the model reads INPUT.FORMAT "
            f"{model_format!r}: convert the source weights again with tools/convert_weights.py "
            f"--input-format {model_format}, or set INPUT.FORMAT {weights_format!r} with "
            f"MODEL.PIXEL_MEAN/PIXEL_STD in that order"
        )


def check_coverage(model, incompatible, path: str, mode: str) -> int:
    """
    Raise WeightsFileError when fewer than half of the model's tensors that ``mode`` loads (see
    :func:`select_init_keys`; BatchNorm counters not counted) came from ``path`` with the right
    name and shape.

    Args:
        incompatible: what the checkpointer's ``_load_model`` returned (``missing_keys`` holds
            the model keys not loaded, shape mismatches included; ``unexpected_keys`` and
            ``incorrect_shapes`` the file's tensors that did not fit).

    Returns:
        the number of the model's tensors loaded.
    """
    # BatchNorm's num_batches_tracked counters are not weights (detectron2 never reports them)
    target = sorted(
        k for k in select_init_keys(model.state_dict(), mode) if not k.endswith("num_batches_tracked")
    )
    missing = set(incompatible.missing_keys)
    matched = sum(k not in missing for k in target)
    if 2 * matched < len(target):
        unexpected = list(incompatible.unexpected_keys)
        shapes = [k for k, *_ in incompatible.incorrect_shapes]
        raise WeightsFileError(
            f"{path} fits only {matched} of the model's {len(target)} tensors that "
            f"HPPS.FINETUNE.INIT {mode!r} loads (at least half must be found with the right name "
            f"and shape): it holds weights of another architecture or config. "
            f"{len(unexpected)} of its tensors are not in the model (e.g. {unexpected[:3]}), "
            f"{len(shapes)} have other shapes (e.g. {shapes[:3]}); the model misses e.g. "
            f"{[k for k in target if k in missing][:3]}"
        )
    return matched


def load_init_weights(checkpointer: DetectionCheckpointer, path: str, mode: str) -> Dict:
    """
    Load ``path`` into ``checkpointer.model`` following ``mode`` (model weights only).

    The file is read by :func:`~hpps_d2.checkpoint.io.read_checkpoint` whatever the checkpointer.

    Returns:
        dict with ``loaded`` (number of tensors loaded) and ``skipped`` (keys left out by the mode).

    Raises:
        FileNotFoundError, WeightsFileError (UnsafeWeightsError): see :mod:`.io`; WeightsFileError
            also when less than half of the model fits (:func:`check_coverage`).
    """
    checkpoint = read_checkpoint(path)
    check_input_format(checkpointer.model, checkpoint, path)
    model_sd = checkpoint["model"] if "model" in checkpoint else checkpoint
    kept = select_init_keys(model_sd, mode)
    skipped = sorted(set(model_sd) - set(kept))
    checkpoint = dict(checkpoint, model=kept)
    logger.info(
        f"initialising from {path} ({mode}): {len(kept)} tensors; left out {len(skipped)} "
        f"(pre-training-only modules, OIM tables{', everything but the backbone' if mode == 'backbone' else ''})"
    )
    incompatible = checkpointer._load_model(checkpoint)
    if incompatible is not None:
        checkpointer._log_incompatible_keys(incompatible)
        check_coverage(checkpointer.model, incompatible, path, mode)
    return {"loaded": len(kept), "skipped": skipped}
