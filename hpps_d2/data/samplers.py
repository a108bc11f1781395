"""
A deterministic, resumable stream of training samples mixed from several sources by ratio.

The k-th sample of the global stream is a pure function of ``(seed, k)``: blocks of
:data:`BLOCK` samples draw their source by ratio from ``numpy.random.default_rng([seed, block])``,
and the j-th draw from source s is element ``j mod n_s`` of a permutation of that source seeded by
``(seed, s, j // n_s)`` (every image of a source is seen once per source epoch, as detectron2's
TrainingSampler does). Rank r of W takes samples r, r + W, r + 2W, ... Resuming at global sample
``start`` therefore continues exactly where a run stopped, whatever the number of data-loader
workers; the stream yields ``(k, index)`` so the mapper can seed its augmentations with ``k`` too.
"""
import itertools
from typing import Iterator, Optional, Sequence, Tuple

import numpy as np

__all__ = ["RatioSampler", "BLOCK"]

#: samples whose sources are drawn together
BLOCK = 1024


class RatioSampler:
    """
    Args:
        sizes: number of records of each source; the records of source s are indices
            ``offsets[s] .. offsets[s] + sizes[s] - 1`` of the concatenated list.
        ratios: relative sampling weight of each source; None or empty = proportional to size
            (i.e. uniform over all records).
        seed: seed of the whole stream.
        rank, world_size: this process's share.
        start: global index of the first sample to yield (samples consumed before a resume).
    """

    def __init__(
        self,
        sizes: Sequence[int],
        ratios: Optional[Sequence[float]] = None,
        seed: int = 0,
        rank: int = 0,
        world_size: int = 1,
        start: int = 0,
    ):
        self.sizes = [int(n) for n in sizes]
        if not self.sizes or min(self.sizes) <= 0:
            raise ValueError(f"every source needs at least one record, got sizes {self.sizes}")
        weights = np.asarray(ratios if ratios else self.sizes, dtype=np.float64)
        if len(weights) != len(self.sizes) or (weights < 0).any() or weights.sum() <= 0:
            raise ValueError(f"ratios {list(weights)} do not fit sources of sizes {self.sizes}")
        self.probs = weights / weights.sum()
        self.offsets = np.concatenate([[0], np.cumsum(self.sizes)[:-1]]).astype(np.int64)
        self.seed, self.rank, self.world_size = int(seed), int(rank), int(world_size)
        self.start = int(start)

    def _sources(self, block: int) -> np.ndarray:
        rng = np.random.default_rng([self.seed, block])
        return rng.choice(len(self.sizes), size=BLOCK, p=self.probs)

    def _permutation(self, source: int, epoch: int) -> np.ndarray:
        return np.random.default_rng([self.seed, 1_000_003 + source, epoch]).permutation(self.sizes[source])

    def global_stream(self, start: int) -> Iterator[Tuple[int, int]]:
        """Yield ``(k, index)`` for every global sample k >= start, on all ranks alike."""
        block0 = start // BLOCK
        counts = np.zeros(len(self.sizes), dtype=np.int64)
        for b in range(block0):  # replay only the source counts before the start block
            counts += np.bincount(self._sources(b), minlength=len(self.sizes))
        perms = {}
        for b in itertools.count(block0):
            for i, s in enumerate(self._sources(b)):
                j = counts[s]
                counts[s] += 1
                k = b * BLOCK + i
                if k < start:
                    continue
                epoch, pos = divmod(int(j), self.sizes[s])
                if perms.get(s, (None,))[0] != epoch:
                    perms[s] = (epoch, self._permutation(s, epoch))
                yield k, int(self.offsets[s] + perms[s][1][pos])

    def __iter__(self) -> Iterator[Tuple[int, int]]:
        stream = self.global_stream(self.start - self.start % self.world_size)
        for k, index in stream:
            if k >= self.start and k % self.world_size == self.rank:
                yield k, index

    def source_of(self, index: int) -> int:
        """Source of a concatenated index."""
        return int(np.searchsorted(self.offsets, index, side="right") - 1)
