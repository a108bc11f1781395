"""
``check_train_config(cfg)``: the mistakes of a training config that can be seen before anything is
loaded or built, all reported at once with the key and what was expected.

Called first by the trainers (:mod:`hpps_d2.engine.trainer`), so a wrong config fails in seconds,
not after the datasets are read and the model is built (or hours later in a DataLoader worker).
"""
import math
from typing import List

import torch
from detectron2.data import DatasetCatalog, MetadataCatalog

__all__ = ["ConfigError", "check_train_config"]

#: Metadata a hybrid pre-training source needs (set by hpps_d2.data.datasets.catalog for every
#: registered split; a user's own split must set them too, see datasets/README.md).
PRETRAIN_METADATA = ("task", "labeled")


class ConfigError(ValueError):
    """A config that cannot train; the message lists every problem found, one per line."""


def _dataset_problems(names, role: str, needs_metadata: bool) -> List[str]:
    registered = set(DatasetCatalog.list())
    missing = [n for n in names if n not in registered]
    out = []
    if missing:
        out.append(
            f"DATASETS.{role}: {len(missing)} dataset(s) not registered: {', '.join(missing)} "
            "(the registered names are in hpps_d2/data/datasets/catalog.py; register a dataset of "
            "your own with tools/train_net.py --register FILE.py: README.md, 'A dataset of your own')"
        )
    if needs_metadata:
        for n in names:
            if n in registered:
                lacking = [k for k in PRETRAIN_METADATA if not hasattr(MetadataCatalog.get(n), k)]
                if lacking:
                    out.append(
                        f"DATASETS.{role}: {n!r} has no metadata {lacking}: a pre-training source "
                        "needs task ('detection' or 'reid') and labeled (True/False) in its "
                        "MetadataCatalog entry"
                    )
    return out


def _ratio_problems(cfg) -> List[str]:
    ratios, names = list(cfg.HPPS.DATA.SOURCE_RATIOS), list(cfg.DATASETS.TRAIN)
    if not ratios:
        return []
    if len(ratios) != len(names):
        return [
            f"HPPS.DATA.SOURCE_RATIOS has {len(ratios)} value(s) but DATASETS.TRAIN has "
            f"{len(names)} dataset(s): give one weight per dataset, in its order, or () for "
            "weights proportional to size"
        ]
    try:
        values = [float(r) for r in ratios]
    except (TypeError, ValueError):
        return [f"HPPS.DATA.SOURCE_RATIOS must be numbers, got {ratios}"]
    if any(not math.isfinite(v) or v < 0 for v in values) or sum(values) <= 0:
        return [f"HPPS.DATA.SOURCE_RATIOS must be finite, >= 0 and not all 0, got {ratios}"]
    return []


def _device_problems(cfg) -> List[str]:
    if str(cfg.MODEL.DEVICE).startswith("cuda") and not torch.cuda.is_available():
        return [
            f"MODEL.DEVICE is {cfg.MODEL.DEVICE!r} but this machine has no usable CUDA device: add "
            "MODEL.DEVICE cpu to the command line (with --num-gpus N that starts N CPU processes)"
        ]
    return []


def check_train_config(cfg, pretraining: bool = False) -> None:
    """
    Args:
        cfg: a full config (detectron2's + :func:`add_hpps_config`).
        pretraining: the sources of DATASETS.TRAIN must carry the metadata of hybrid pre-training.

    Raises:
        ConfigError: listing every problem found (device, datasets, source ratios).
    """
    problems = _device_problems(cfg)
    if not cfg.DATASETS.TRAIN:
        problems.append("DATASETS.TRAIN is empty: name at least one registered dataset")
    problems += _dataset_problems(cfg.DATASETS.TRAIN, "TRAIN", pretraining)
    problems += _dataset_problems(cfg.DATASETS.TEST, "TEST", False)
    problems += _ratio_problems(cfg)
    if problems:
        raise ConfigError("the config cannot train:\n  " + "\n  ".join(problems))
