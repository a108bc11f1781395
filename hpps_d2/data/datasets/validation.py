"""
Validation splits carved out of a search training split (:mod:`hpps_d2.data.holdout`), for
calibration that never touches the test split.

PRW (real and synthetic, same rule): ``prw_val_train`` (the training frames without a held-out
identity, ids ``0..N'-1``), ``prw_val_query`` and ``prw_val_gallery`` (every training frame with a
held-out identity), linked to each other like ``prw_query`` / ``prw_gallery`` and evaluated by the
same PRW protocol (domain ``prw``, evaluator ``person_search``). Registered with every other split
(``builtin.py``), so the synthetic world has ``synth_prw_val_*``::

    tools/train_net.py --config-file configs/synth/finetune_prw_shufflenet.yaml \\
        DATASETS.TRAIN "('synth_prw_val_train',)" DATASETS.TEST "('synth_prw_val_query',)"

The held-out share and seed are :data:`~hpps_d2.data.holdout.DEFAULT_FRACTION` (20%) and
:data:`~hpps_d2.data.holdout.DEFAULT_SEED`; each split reads ``frame_train.mat`` and carves it
again (deterministic), so the three splits always agree.
"""

from typing import List, Optional

from ..holdout import DEFAULT_FRACTION, DEFAULT_SEED, carve_validation
from .catalog import SplitSpec
from .common import UNLABELED
from .prw import load_prw

__all__ = ["load_prw_val", "SPLITS", "VAL_SPLITS"]

#: ``split`` argument -> position in :func:`~hpps_d2.data.holdout.carve_validation`'s result.
VAL_SPLITS = {"val_train": 0, "val_query": 1, "val_gallery": 2}


def load_prw_val(dataset_dir: str, split: str, boxes: Optional[str] = None) -> List[dict]:
    """
    One validation split of PRW's training frames.

    Args:
        dataset_dir: the PRW folder.
        split: ``"val_train"``, ``"val_query"`` or ``"val_gallery"``.
        boxes: as :func:`~.prw.load_prw`.
    """
    if split not in VAL_SPLITS:
        raise ValueError(f"PRW validation split must be one of {list(VAL_SPLITS)}, got {split!r}")
    records = load_prw(dataset_dir, "train", boxes)
    carved = carve_validation(records, DEFAULT_FRACTION, DEFAULT_SEED, unlabeled=UNLABELED)
    return carved[VAL_SPLITS[split]]


def _spec(role: str, links: dict) -> SplitSpec:
    return SplitSpec(
        name=f"prw_val_{role}",
        loader=load_prw_val,
        subdir="PRW",
        split=f"val_{role}",
        task="search",
        role=role,
        domain="prw",
        labeled=True,
        evaluator_type=None if role == "train" else "person_search",
        readme_section="PRW",
        links=links,
    )


SPLITS = [
    _spec("train", {}),
    _spec("query", {"gallery": "prw_val_gallery"}),
    _spec("gallery", {"query": "prw_val_query"}),
]
