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

__all__ = ["ConfigError", "check_test_config", "check_train_config"]

#: evaluator_type values a DATASETS.TEST split may have: the evaluations the trainers build
#: (hpps_d2.engine.trainer._EVALUATION; a detection-only split is evaluated by no trainer).
TEST_EVALUATOR_TYPES = ("person_search", "reid")
#: role of a test split -> the metadata key naming its partner split.
TEST_PARTNER = {"query": "gallery", "gallery": "query"}

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


def _test_split_problems(names) -> List[str]:
    """A registered test split needs an evaluator_type the trainers evaluate and a registered partner."""
    registered = set(DatasetCatalog.list())
    out = []
    for n in names:
        if n not in registered:
            continue  # reported by _dataset_problems
        meta = MetadataCatalog.get(n)
        kind, role = getattr(meta, "evaluator_type", None), getattr(meta, "role", None)
        if kind not in TEST_EVALUATOR_TYPES:
            out.append(
                f"DATASETS.TEST: {n!r} has evaluator_type {kind!r}; expected one of "
                f"{list(TEST_EVALUATOR_TYPES)} (set it in the split's MetadataCatalog entry)"
            )
        if role not in TEST_PARTNER:
            out.append(
                f"DATASETS.TEST: {n!r} has role {role!r}; expected 'query' or 'gallery' with "
                "metadata naming its partner (query=... / gallery=...)"
            )
            continue
        key = TEST_PARTNER[role]
        partner = getattr(meta, key, None)
        if partner not in registered:
            out.append(
                f"DATASETS.TEST: {n!r} (role {role}) names {key} {partner!r}, which is not "
                f"registered (set {key}=<registered split> in its MetadataCatalog entry)"
            )
    return out


def check_test_config(cfg) -> None:
    """
    The problems of an evaluation alone (device; DATASETS.TEST registered, evaluable, partner
    registered), for ``--eval-only``; :func:`check_train_config` includes them.

    Raises:
        ConfigError: listing every problem found.
    """
    problems = _device_problems(cfg) + _dataset_problems(cfg.DATASETS.TEST, "TEST", False)
    problems += _test_split_problems(cfg.DATASETS.TEST)
    if not cfg.DATASETS.TEST:
        problems.append("DATASETS.TEST is empty: name the query or gallery split(s) to evaluate")
    if problems:
        raise ConfigError("the config cannot evaluate:\n  " + "\n  ".join(problems))


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


def _oim_problems(cfg) -> List[str]:
    from ..modeling.oim_sharded import TABLE_DTYPES

    o, out = cfg.MODEL.OIM, []
    if o.TABLE_DTYPE not in TABLE_DTYPES:
        out.append(f"MODEL.OIM.TABLE_DTYPE must be one of {sorted(TABLE_DTYPES)}, got {o.TABLE_DTYPE!r}")
    if not isinstance(o.CHUNK_ROWS, int) or o.CHUNK_ROWS < 1:
        out.append(f"MODEL.OIM.CHUNK_ROWS must be a positive integer (table rows per block), got {o.CHUNK_ROWS!r}")
    if not isinstance(o.SAMPLE_RATE, (int, float)) or not 0.0 < o.SAMPLE_RATE <= 1.0:
        out.append(f"MODEL.OIM.SAMPLE_RATE must be in (0, 1] (1 = no negative sampling), got {o.SAMPLE_RATE!r}")
    elif o.SAMPLE_RATE < 1.0 and not o.SHARDED:
        out.append(f"MODEL.OIM.SAMPLE_RATE {o.SAMPLE_RATE} needs MODEL.OIM.SHARDED True (negative sampling is a mode of the sharded loss)")
    return out


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
        ConfigError: listing every problem found (device, datasets, test splits, source ratios,
            OIM table settings).
    """
    problems = _device_problems(cfg)
    if not cfg.DATASETS.TRAIN:
        problems.append("DATASETS.TRAIN is empty: name at least one registered dataset")
    problems += _dataset_problems(cfg.DATASETS.TRAIN, "TRAIN", pretraining)
    problems += _dataset_problems(cfg.DATASETS.TEST, "TEST", False)
    problems += _test_split_problems(cfg.DATASETS.TEST)
    problems += _ratio_problems(cfg) + _oim_problems(cfg)
    if problems:
        raise ConfigError("the config cannot train:\n  " + "\n  ".join(problems))
