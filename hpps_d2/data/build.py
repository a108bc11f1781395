"""
Training data loaders whose sample order and augmentations are a pure function of (seed, sample).

Both the hybrid pre-training loader and the fine-tuning loader draw keys ``(k, index)`` from a
:class:`~hpps_d2.data.samplers.RatioSampler`; before mapping sample k, ``np.random`` (which
detectron2's augmentations use) is seeded from ``(seed, k)``. A run resumed from a checkpoint
therefore sees exactly the batches an uninterrupted run would have seen, for any number of workers.
The loader's state (seed, samples consumed) is saved in checkpoints.
"""
import logging
import random
from typing import Callable, List, Optional, Sequence

import numpy as np
import torch
from detectron2.data.common import DatasetFromList
from detectron2.utils import comm

from .crop_records import ChainedRecords, CropRecords
from .samplers import RatioSampler

__all__ = [
    "SeededMapDataset",
    "DeterministicTrainLoader",
    "sample_seed",
    "filter_empty_scenes",
    "train_subset",
]

logger = logging.getLogger(__name__)


def sample_seed(seed: int, k: int) -> int:
    """A 32-bit seed for sample ``k`` of a stream seeded with ``seed``."""
    return int(np.random.SeedSequence([int(seed), int(k)]).generate_state(1)[0])


def filter_empty_scenes(records: Sequence[dict], name: str = "") -> Sequence[dict]:
    """Drop scene records without any person box (ignore regions alone do not count); log how many."""
    if isinstance(records, CropRecords):  # crops only: nothing to drop
        return records
    kept = [r for r in records if "annotations" not in r or any(not a.get("iscrowd", 0) for a in r["annotations"])]
    if len(kept) != len(records):
        logger.info(f"{name}: removed {len(records) - len(kept)} images without person boxes for training")
    return kept


def _as_list(batch):
    return batch


def train_subset(records: List[dict], fraction: float) -> List[dict]:
    """
    A deterministic, nested fraction of a training set (DATASETS.TRAIN_FRACTION).

    The first ``max(1, round(fraction * N))`` records of one permutation (seed 0) of the records
    sorted by ``image_id``, returned in their original order: a smaller fraction is always a subset
    of a larger one, whatever the run's seed.
    """
    if not 0.0 < fraction <= 1.0:
        raise ValueError(f"DATASETS.TRAIN_FRACTION must be in (0, 1], got {fraction}")
    if fraction == 1.0 or not len(records):
        return records
    n = len(records)
    keep = max(1, int(round(fraction * n)))
    order = np.random.default_rng(0).permutation(n)
    if isinstance(records, CropRecords):
        # image_id is the key: its UTF-8 bytes sort as the str does
        ids = np.argsort(records.keys, kind="stable")
        return records.take(np.sort(ids[order[:keep]]))
    ids = sorted(range(n), key=lambda i: str(records[i]["image_id"]))
    chosen = {ids[i] for i in order[:keep]}
    return [r for i, r in enumerate(records) if i in chosen]


def _shared_records(records: Sequence[dict]):
    """``records`` in a form that data-loader workers share without copy-on-read growth: lists
    serialised by detectron2's ``DatasetFromList`` (one byte buffer), compact crops
    (:class:`~.crop_records.CropRecords`, already arrays) as they are."""
    if isinstance(records, list):
        return DatasetFromList(records, copy=False, serialize=True)
    parts = records.parts if isinstance(records, ChainedRecords) else [records]
    return ChainedRecords([p if isinstance(p, CropRecords) else DatasetFromList(list(p), copy=False, serialize=True) for p in parts])


class SeededMapDataset(torch.utils.data.Dataset):
    """
    Map-style dataset indexed by ``(k, index)`` keys: record ``index`` mapped with ``np.random`` and
    ``random`` seeded from ``(seed, k)``. Records are serialised once (detectron2's
    ``DatasetFromList``) so that workers share them without copy-on-read growth.
    """

    def __init__(self, records: Sequence[dict], mapper: Callable[[dict], dict], seed: int):
        self.records = _shared_records(records)
        self.mapper = mapper
        self.seed = seed

    def __len__(self):
        return len(self.records)

    def __getitem__(self, key):
        k, index = key
        s = sample_seed(self.seed, k)
        np.random.seed(s)
        random.seed(s)
        return self.mapper(self.records[index])


class DeterministicTrainLoader:
    """
    Infinite iterable of per-rank batches (lists of mapped samples).

    Args:
        records: every training record, sources concatenated in order.
        sizes: records per source (sums to ``len(records)``).
        mapper: record -> model input.
        batch_size: total over all ranks (SOLVER.IMS_PER_BATCH).
        seed: stream seed.
        ratios: per-source sampling weights (None = proportional to size).
        num_workers: data-loader worker processes.
    """

    def __init__(
        self,
        records: List[dict],
        sizes: Sequence[int],
        mapper: Callable[[dict], dict],
        batch_size: int,
        seed: int,
        ratios: Optional[Sequence[float]] = None,
        num_workers: int = 0,
    ):
        world = comm.get_world_size()
        if batch_size % world:
            raise ValueError(f"SOLVER.IMS_PER_BATCH ({batch_size}) must be divisible by the number of processes ({world})")
        self.dataset = SeededMapDataset(records, mapper, seed)
        self.sizes, self.ratios = list(sizes), list(ratios) if ratios else None
        self.batch_size, self.per_rank = batch_size, batch_size // world
        self.seed, self.num_workers = seed, num_workers
        self.consumed = 0  # global samples handed to the trainer

    def state_dict(self) -> dict:
        return {"seed": int(self.seed), "consumed": int(self.consumed)}

    def load_state_dict(self, state: dict) -> None:
        if int(state["seed"]) != self.seed:
            logger.warning(f"resuming the data stream with its saved seed {state['seed']} (config: {self.seed})")
            self.seed = self.dataset.seed = int(state["seed"])
        self.consumed = int(state["consumed"])

    def __iter__(self):
        # A generator: nothing starts (no worker process, no prefetch) until the first batch is
        # requested, so a resume can still set ``consumed`` after the trainer is built.
        sampler = RatioSampler(
            self.sizes, self.ratios, self.seed, comm.get_rank(), comm.get_world_size(), start=self.consumed
        )
        batches = torch.utils.data.BatchSampler(sampler, self.per_rank, drop_last=True)
        loader = torch.utils.data.DataLoader(
            self.dataset,
            batch_sampler=batches,
            num_workers=self.num_workers,
            collate_fn=_as_list,
        )
        for batch in loader:
            self.consumed += self.batch_size
            yield batch
