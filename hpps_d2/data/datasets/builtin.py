"""
Register every dataset split of the paper in detectron2's catalogs, at ``import hpps_d2``.

The root folder is ``$HPPS_DATASETS``, or the repository's ``datasets/`` folder when it is not set
(:func:`~.common.get_datasets_root`, whatever the working directory); the synthetic world lives in
``<root>/synth`` and is registered with the prefix ``synth_`` (``synth_prw_train``, ...), read by
the very same loaders. Registration only records functions: nothing is read until a split is used.
"""
import os

from . import crowdhuman, cuhk03, cuhk_sysu, ecp, imagenet, luperson, msmt17, posetrack21, prw
from . import validation
from .catalog import register_split
from .common import get_datasets_root

__all__ = ["ALL_SPLITS", "SYNTH_PREFIX", "get_datasets_root", "register_all"]

#: Every split, in the order of the paper: detection, re-ID, person search, then ImageNet.
ALL_SPLITS = (
    crowdhuman.SPLITS
    + ecp.SPLITS
    + msmt17.SPLITS
    + cuhk03.SPLITS
    + luperson.SPLITS
    + prw.SPLITS
    + validation.SPLITS  # prw_val_*: carved from prw_train (hpps_d2/data/holdout.py)
    + cuhk_sysu.SPLITS
    + posetrack21.SPLITS
    + imagenet.SPLITS  # generic (ImageNet) pre-training of the backbone: classification
)

SYNTH_PREFIX = "synth_"


def register_all(root: str, prefix: str = "") -> list:
    """Register every split in :data:`ALL_SPLITS` under ``root``; returns the catalog names."""
    return [register_split(spec, root, prefix) for spec in ALL_SPLITS]


_root = get_datasets_root()
register_all(_root)
register_all(os.path.join(_root, "synth"), prefix=SYNTH_PREFIX)
