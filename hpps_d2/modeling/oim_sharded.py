"""
OIM with its lookup table split by rows across the processes of a job (issue 13, "sharded OIM").

The replicated :class:`~hpps_d2.modeling.oim.OIMLoss` keeps the whole L x D table on every
process and materialises N x (L + Q) logits; at LUPerson scale (4M+ pseudo-identities) neither
fits. Here each of the W processes holds about L / W rows, as Partial FC does for face
recognition (deepinsight/insightface recognition/arcface_torch/partial_fc_v2.py: the row split
L56-63, the softmax normaliser all-reduced across ranks in ``DistCrossEntropyFunc.forward``
L170-195, the gradient ``(softmax - one_hot)`` of the local columns in its backward L197-220).
What differs from Partial FC, and why (ours):

* OIM's table is a buffer updated by the momentum rule, not a parameter: no gradient flows into
  it, and each process applies the update rule (:meth:`OIMLoss._update`) to its own rows only,
  from the features of every rank (the same all-gather as the replicated loss, after the
  optimizer step), so its rows equal the replicated table's row for row.
* Each rank's loss is the mean cross-entropy over **its own** labeled rows, with the normaliser
  taken over the whole table, i.e. exactly the replicated loss of that rank (person-search batches
  have a different number of labeled persons on each rank; Partial FC's mean over the global batch
  would weight them differently). The backward returns to each rank the gradient of its own loss
  for its own features, summed over the shards that hold the columns, so DDP's mean over ranks
  gives the replicated run's update.
* The circular queue of unlabeled features stays replicated (it is small, Q = 5,000) and its
  logits count once: rank 0 adds them to its part of the normaliser.
* Logits are never materialised: the log-sum-exp runs over blocks of ``chunk_rows`` table rows
  (running max and sum), and the backward recomputes each block's softmax, so activation memory is
  O(N x chunk_rows) whatever L is (Partial FC keeps N x L / W logits).

Every process must call the forward at every step (it makes collective calls, like the DDP
backward it sits in). Without a process group (W = 1) it computes the same loss as
:class:`OIMLoss`, blockwise.
"""
import contextlib
from typing import Dict, Iterator, List, Optional, Tuple

import torch
import torch.distributed as dist

from .gather import all_gather_variable
from .oim import OIMLoss, _dist_ready

#: MODEL.OIM.TABLE_DTYPE values
TABLE_DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}

__all__ = [
    "TABLE_DTYPES", "ShardedOIMLoss", "shard_range", "sharded_tables", "gathered_tables", "stage_tables",
    "unstage_tables", "shard_checkpoint_tables",
]


def shard_range(num_identities: int, world_size: int, rank: int) -> Tuple[int, int]:
    """
    Rows ``[start, start + count)`` of the table held by ``rank``: the first ``L % W`` ranks hold
    one row more (the split of Partial FC, partial_fc_v2.py L57-63).
    """
    base, extra = divmod(num_identities, world_size)
    count = base + int(rank < extra)
    start = base * rank + min(rank, extra)
    return start, count


def _world() -> Tuple[int, int]:
    if _dist_ready():
        return dist.get_world_size(), dist.get_rank()
    return 1, 0


def _blocks(table: torch.Tensor, chunk_rows: int) -> List[torch.Tensor]:
    return list(table.split(chunk_rows)) if table.shape[0] else []


def _log_sum_exp(x: torch.Tensor, blocks: List[torch.Tensor], scale: float) -> torch.Tensor:
    """(M,) log sum_j exp(scale * x . w_j) over the rows of ``blocks``, one block at a time."""
    m = x.new_full((x.shape[0],), float("-inf"))
    s = x.new_zeros(x.shape[0])
    for w in blocks:
        z = scale * (x @ w.to(x.dtype).t())
        m_new = torch.maximum(m, z.max(dim=1).values)
        # exp(-inf - finite) = 0 for the first block
        s = s * torch.exp(m - m_new) + torch.exp(z - m_new[:, None]).sum(dim=1)
        m = m_new
    return m + torch.log(s)


class _ShardedCrossEntropy(torch.autograd.Function):
    """
    Forward: this rank's mean OIM cross-entropy (see the module docstring). Inputs: ``x`` (n, D)
    this rank's labeled features, ``y`` (n,) their global identities, then the (non-differentiable)
    local table rows and the settings.
    """

    @staticmethod
    def forward(ctx, x, y, lut, cq, start, scale, chunk_rows, include_queue, group, sampler):
        world, rank = _world()
        ys_parts = all_gather_variable(y, group) if world > 1 else [y]
        sizes = [t.shape[0] for t in ys_parts]
        xs = torch.cat(all_gather_variable(x.detach(), group)) if world > 1 else x.detach()
        # logits and softmax in float32 whatever the features' dtype (autocast gives float16;
        # F.cross_entropy of the replicated loss also runs in float32 under autocast)
        ctx.x_dtype, xs = x.dtype, xs.float()
        ys = torch.cat(ys_parts)
        own = (ys >= start) & (ys < start + lut.shape[0])
        # the rows of the normaliser: all of this shard's, or (negative sampling) its positives
        # plus a random part of the others
        table = lut if sampler is None else lut[sampler(ys[own] - start)]
        blocks = _blocks(table, chunk_rows) + (_blocks(cq, chunk_rows) if include_queue else [])
        lse_local = _log_sum_exp(xs, blocks, scale)
        if world > 1:
            lse = torch.logsumexp(torch.stack(all_gather_variable(lse_local, group)), dim=0)
        else:
            lse = lse_local
        target = xs.new_zeros(xs.shape[0])
        target[own] = scale * (xs[own] * lut[ys[own] - start].to(xs.dtype)).sum(dim=1)
        if world > 1:
            dist.all_reduce(target, group=group)
        per_row = lse - target
        offsets = [0]
        for n in sizes:
            offsets.append(offsets[-1] + n)
        mine = per_row[offsets[rank] : offsets[rank + 1]]
        loss = mine.mean() if mine.numel() else per_row.new_zeros(())
        ctx.save_for_backward(xs, ys, own, lse, lut, cq, table)
        ctx.settings = (start, scale, chunk_rows, include_queue, sizes, offsets, world, rank, group)
        return loss

    @staticmethod
    def backward(ctx, grad_loss):
        xs, ys, own, lse, lut, cq, table = ctx.saved_tensors
        start, scale, chunk_rows, include_queue, sizes, offsets, world, rank, group = ctx.settings
        # d(loss_r) / d(per-row loss) = grad_r / n_r for the rows of rank r
        grads = torch.stack(all_gather_variable(grad_loss.reshape(1), group)).reshape(-1) if world > 1 else grad_loss.reshape(1)
        coef = xs.new_zeros(xs.shape[0])
        for r, n in enumerate(sizes):
            if n:
                coef[offsets[r] : offsets[r + 1]] = grads[r].to(xs.dtype) / n
        g = torch.zeros_like(xs)
        for w in _blocks(table, chunk_rows) + (_blocks(cq, chunk_rows) if include_queue else []):
            w = w.to(xs.dtype)
            p = torch.exp(scale * (xs @ w.t()) - lse[:, None])  # softmax over the whole table
            g += scale * ((coef[:, None] * p) @ w)
        g[own] -= scale * coef[own, None] * lut[ys[own] - start].to(xs.dtype)
        if world > 1:
            dist.all_reduce(g, group=group)  # every shard's columns
        return (g[offsets[rank] : offsets[rank + 1]].to(ctx.x_dtype),) + (None,) * 9


class ShardedOIMLoss(OIMLoss):
    """
    :class:`OIMLoss` whose ``lut`` buffer holds only this process's rows
    (:func:`shard_range` of the process group at construction).

    Args:
        num_identities: L, rows of the whole table (over all processes).
        chunk_rows: table rows per block of the log-sum-exp (activation memory ~ N x chunk_rows).
        table_dtype: dtype of the stored table rows (float32; float16 / bfloat16 halve the table;
            logits and updates are computed in the features' dtype / float32).
        sample_rate: 1 = the normaliser over every row (exact OIM); r < 1 = Partial FC's negative
            sampling in training: the batch's positives plus random other rows, r of each shard,
            drawn anew every forward (the table update is unchanged).
        seed: of the negative samples.
        other arguments: as :class:`OIMLoss`.
    """

    def __init__(
        self,
        num_features: int,
        num_identities: int,
        queue_size: int = 5000,
        momentum: float = 0.5,
        scale: float = 30.0,
        unlabeled: int = -1,
        chunk_rows: int = 65536,
        table_dtype: torch.dtype = torch.float32,
        sample_rate: float = 1.0,
        seed: int = 0,
    ):
        world, rank = _world()
        start, count = shard_range(num_identities, world, rank)
        # this process's rows only, in their dtype: never the whole table, not even for a moment
        super().__init__(num_features, num_identities, queue_size, momentum, scale, unlabeled, table_rows=count, table_dtype=table_dtype)
        if chunk_rows < 1:
            raise ValueError(f"chunk_rows must be at least 1, got {chunk_rows}")
        if not 0.0 < sample_rate <= 1.0:
            raise ValueError(f"sample_rate must be in (0, 1], got {sample_rate}")
        self.sample_rate, self.seed = float(sample_rate), int(seed)
        # training forwards so far: the negative sample of forward k is drawn from a generator
        # seeded by (seed, rank, k); with sampling it is a buffer (saved), so a resumed run draws
        # what the uninterrupted one would
        if self.sample_rate < 1.0:
            self.register_buffer("sample_step", torch.zeros((), dtype=torch.int64))
        else:
            self.sample_step = torch.zeros((), dtype=torch.int64)
        self.world_size, self.rank = world, rank
        self.total_identities = num_identities
        self.row_start = start
        self.chunk_rows = chunk_rows
        # The loss's collectives run in a process group of their own: in the backward they would
        # otherwise interleave with DDP's gradient all-reduces on the default group, whose order
        # differs between ranks whenever their graphs differ (a hybrid batch mixes sources per
        # rank), and gloo / NCCL pair collectives by issue order: a hang or mixed-up tensors.
        # Every process builds the model, so every process makes this (collective) call.
        self._group = dist.new_group() if self.world_size > 1 else None

    @property
    def num_identities(self) -> int:
        return self.total_identities

    def extra_repr(self):
        return (
            f"lut rows [{self.row_start}, {self.row_start + self.lut.shape[0]}) of {self.total_identities} "
            f"(shard {self.rank} of {self.world_size}, {self.lut.dtype}), cq={tuple(self.cq.shape)}, "
            f"momentum={self.momentum}, scale={self.scale}, chunk_rows={self.chunk_rows}, sample_rate={self.sample_rate}"
        )

    def forward(self, features: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """As :meth:`OIMLoss.forward`; a collective call on every process (see the module docstring)."""
        labels = self._checked(labels)
        if self.training:
            self._pending.append((features.detach(), labels.detach()))
        labeled = labels != self.unlabeled
        sampler = self._sample_rows if self.training and self.sample_rate < 1.0 else None
        loss = _ShardedCrossEntropy.apply(
            features[labeled], labels[labeled], self.lut, self.cq, self.row_start, float(self.scale),
            self.chunk_rows, self.rank == 0, self._group, sampler,
        )
        if self.training:
            self.sample_step += 1
        return loss + features.sum() * 0.0  # a graph even when this rank has no labeled row

    def _sample_rows(self, positives: torch.Tensor) -> torch.Tensor:
        """
        Local rows of this forward's normaliser (Partial FC's negative sampling,
        partial_fc_v2.py ``sample`` L80-97): every positive of the global batch in this shard
        plus random others, ``sample_rate`` of the shard in all (at least the positives); sorted.
        """
        count = self.lut.shape[0]
        if count == 0:
            return torch.zeros(0, dtype=torch.int64, device=self.lut.device)
        gen = torch.Generator().manual_seed(hash((self.seed, self.rank, int(self.sample_step))) % (2**63))
        score = torch.rand(count, generator=gen).to(self.lut.device)
        score[positives] = 2.0  # above every random score: always kept
        k = max(int(torch.unique(positives).numel()), int(self.sample_rate * count))
        self.last_sampled = torch.topk(score, k).indices.sort().values
        return self.last_sampled

    def _update(self, feats: torch.Tensor, labels: torch.Tensor) -> None:
        """The update rule on this process's rows (labels made local) and the replicated queue."""
        own = (labels >= self.row_start) & (labels < self.row_start + self.lut.shape[0])
        keep = own | (labels == self.unlabeled)
        local = torch.where(own, labels - self.row_start, labels)
        super()._update(feats[keep], local[keep])

    # ---------------------------------------------------------------------------------------- #
    # checkpoints hold the whole table, whatever W was: gathered at save, re-sharded at load
    # ---------------------------------------------------------------------------------------- #
    _staged = None  # the whole table while a checkpoint is written (gathered_tables)

    def gather_table(self, dst: int = 0) -> Optional[torch.Tensor]:
        """
        The whole (L, D) table, rows of every process in order, on process ``dst`` (None on the
        others; a collective call when W > 1). Only ``dst`` holds the whole table, for as long
        as it is written.
        """
        if self.world_size == 1:
            return self.lut
        counts = [shard_range(self.total_identities, self.world_size, r)[1] for r in range(self.world_size)]
        local = torch.zeros(max(counts), self.num_features, dtype=self.lut.dtype, device=self.lut.device)
        local[: self.lut.shape[0]] = self.lut
        parts = [torch.empty_like(local) for _ in range(self.world_size)] if self.rank == dst else None
        dist.gather(local, parts, dst=dst, group=self._group)
        if self.rank != dst:
            return None
        return torch.cat([p[:n] for p, n in zip(parts, counts)])

    def local_rows(self, table: torch.Tensor) -> torch.Tensor:
        """This process's rows of a whole (L, D) table (e.g. read from a checkpoint)."""
        if tuple(table.shape) != (self.total_identities, self.num_features):
            raise ValueError(
                f"a whole OIM table has shape ({self.total_identities}, {self.num_features}), got {tuple(table.shape)}"
            )
        return table[self.row_start : self.row_start + self.lut.shape[0]]

    def _save_to_state_dict(self, destination, prefix, keep_vars):
        super()._save_to_state_dict(destination, prefix, keep_vars)
        if self._staged is not None:
            destination[prefix + "lut"] = self._staged
        elif self.world_size > 1:
            raise RuntimeError(
                "the state dict of a sharded OIM table is written inside gathered_tables(model), "
                "which every process enters (the whole table is gathered on process 0); in training "
                "the hook hpps_d2.engine.hooks.GatherShardedTables does it before each checkpoint"
            )

    def reshard_in(self, state_dict: Dict[str, torch.Tensor], prefix: str) -> None:
        """``state_dict[prefix + "lut"]``, when it is a whole table, replaced by this process's rows;
        one of another row count (other identities) is left as it is."""
        t = state_dict.get(prefix + "lut")
        if t is not None and self.world_size > 1 and tuple(t.shape) == (self.total_identities, self.num_features):
            state_dict[prefix + "lut"] = self.local_rows(t)

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        self.reshard_in(state_dict, prefix)
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)


def sharded_tables(model: torch.nn.Module) -> Dict[str, ShardedOIMLoss]:
    """Name prefix (``"roi_heads.oim."``) -> every :class:`ShardedOIMLoss` of ``model``."""
    return {f"{name}." if name else "": m for name, m in model.named_modules() if isinstance(m, ShardedOIMLoss)}


def stage_tables(model: torch.nn.Module) -> None:
    """Gather the whole table of every sharded OIM of ``model`` on process 0, where its
    ``state_dict`` then holds it (until :func:`unstage_tables`). Every process calls it."""
    for m in sharded_tables(model).values():
        m._staged = m.gather_table(0)


def unstage_tables(model: torch.nn.Module) -> None:
    for m in sharded_tables(model).values():
        m._staged = None


@contextlib.contextmanager
def gathered_tables(model: torch.nn.Module) -> Iterator[None]:
    """
    Within it, ``model.state_dict()`` on process 0 holds the whole table of every sharded OIM.
    Every process must enter it (it gathers); only process 0 may call ``state_dict``.
    """
    stage_tables(model)
    try:
        yield
    finally:
        unstage_tables(model)


def shard_checkpoint_tables(model: torch.nn.Module, state_dict: Dict[str, torch.Tensor]) -> None:
    """
    Replace, in place, each whole sharded table of ``state_dict`` (a checkpoint's "model") by this
    process's rows, so that shapes match before a loader compares them (fvcore drops a tensor
    whose shape differs). A table with another row count (e.g. pre-training weights loaded for
    fine-tuning, whose identities differ) is left as it is.
    """
    for prefix, m in sharded_tables(model).items():
        m.reshard_in(state_dict, prefix)
