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
from typing import List, Optional, Tuple

import torch
import torch.distributed as dist

from .gather import all_gather_variable
from .oim import OIMLoss, _dist_ready

__all__ = ["ShardedOIMLoss", "shard_range"]


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
    def forward(ctx, x, y, lut, cq, start, scale, chunk_rows, include_queue):
        world, rank = _world()
        sizes = [t.shape[0] for t in all_gather_variable(y)] if world > 1 else [y.shape[0]]
        xs = torch.cat(all_gather_variable(x.detach())) if world > 1 else x.detach()
        ys = torch.cat(all_gather_variable(y)) if world > 1 else y
        blocks = _blocks(lut, chunk_rows) + (_blocks(cq, chunk_rows) if include_queue else [])
        lse_local = _log_sum_exp(xs, blocks, scale)
        if world > 1:
            lse = torch.logsumexp(torch.stack(all_gather_variable(lse_local)), dim=0)
        else:
            lse = lse_local
        own = (ys >= start) & (ys < start + lut.shape[0])
        target = xs.new_zeros(xs.shape[0])
        target[own] = scale * (xs[own] * lut[ys[own] - start].to(xs.dtype)).sum(dim=1)
        if world > 1:
            dist.all_reduce(target)
        per_row = lse - target
        offsets = [0]
        for n in sizes:
            offsets.append(offsets[-1] + n)
        mine = per_row[offsets[rank] : offsets[rank + 1]]
        loss = mine.mean() if mine.numel() else per_row.new_zeros(())
        ctx.save_for_backward(xs, ys, lse, lut, cq)
        ctx.settings = (start, scale, chunk_rows, include_queue, sizes, offsets, world, rank)
        return loss

    @staticmethod
    def backward(ctx, grad_loss):
        xs, ys, lse, lut, cq = ctx.saved_tensors
        start, scale, chunk_rows, include_queue, sizes, offsets, world, rank = ctx.settings
        # d(loss_r) / d(per-row loss) = grad_r / n_r for the rows of rank r
        grads = torch.stack(all_gather_variable(grad_loss.reshape(1))).reshape(-1) if world > 1 else grad_loss.reshape(1)
        coef = xs.new_zeros(xs.shape[0])
        for r, n in enumerate(sizes):
            if n:
                coef[offsets[r] : offsets[r + 1]] = grads[r].to(xs.dtype) / n
        g = torch.zeros_like(xs)
        for w in _blocks(lut, chunk_rows) + (_blocks(cq, chunk_rows) if include_queue else []):
            w = w.to(xs.dtype)
            p = torch.exp(scale * (xs @ w.t()) - lse[:, None])  # softmax over the whole table
            g += scale * ((coef[:, None] * p) @ w)
        own = (ys >= start) & (ys < start + lut.shape[0])
        g[own] -= scale * coef[own, None] * lut[ys[own] - start].to(xs.dtype)
        if world > 1:
            dist.all_reduce(g)  # every shard's columns
        return g[offsets[rank] : offsets[rank + 1]], None, None, None, None, None, None, None


class ShardedOIMLoss(OIMLoss):
    """
    :class:`OIMLoss` whose ``lut`` buffer holds only this process's rows
    (:func:`shard_range` of the process group at construction).

    Args:
        num_identities: L, rows of the whole table (over all processes).
        chunk_rows: table rows per block of the log-sum-exp (activation memory ~ N x chunk_rows).
        table_dtype: dtype of the stored table rows (float32; float16 / bfloat16 halve the table;
            logits and updates are computed in the features' dtype / float32).
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
    ):
        super().__init__(num_features, num_identities, queue_size, momentum, scale, unlabeled)
        if chunk_rows < 1:
            raise ValueError(f"chunk_rows must be at least 1, got {chunk_rows}")
        self.world_size, self.rank = _world()
        self.total_identities = num_identities
        self.row_start, count = shard_range(num_identities, self.world_size, self.rank)
        self.chunk_rows = chunk_rows
        self.lut = torch.zeros(count, num_features, dtype=table_dtype)

    @property
    def num_identities(self) -> int:
        return self.total_identities

    def extra_repr(self):
        return (
            f"lut rows [{self.row_start}, {self.row_start + self.lut.shape[0]}) of {self.total_identities} "
            f"(shard {self.rank} of {self.world_size}, {self.lut.dtype}), cq={tuple(self.cq.shape)}, "
            f"momentum={self.momentum}, scale={self.scale}, chunk_rows={self.chunk_rows}"
        )

    def forward(self, features: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """As :meth:`OIMLoss.forward`; a collective call on every process (see the module docstring)."""
        labels = self._checked(labels)
        if self.training:
            self._pending.append((features.detach(), labels.detach()))
        labeled = labels != self.unlabeled
        loss = _ShardedCrossEntropy.apply(
            features[labeled], labels[labeled], self.lut, self.cq, self.row_start, float(self.scale),
            self.chunk_rows, self.rank == 0,
        )
        return loss + features.sum() * 0.0  # a graph even when this rank has no labeled row

    def _update(self, feats: torch.Tensor, labels: torch.Tensor) -> None:
        """The update rule on this process's rows (labels made local) and the replicated queue."""
        own = (labels >= self.row_start) & (labels < self.row_start + self.lut.shape[0])
        keep = own | (labels == self.unlabeled)
        local = torch.where(own, labels - self.row_start, labels)
        super()._update(feats[keep], local[keep])
