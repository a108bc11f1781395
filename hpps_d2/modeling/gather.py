"""
All-gather of rows whose count differs between ranks: with gradient (:func:`all_gather_rows`)
and without (:func:`all_gather_variable`, the OIM table updates).

The differentiable one serves a loss that must see the whole global batch, e.g. L_con's prediction
MLP, whose BatchNorm needs more rows than one GPU's two images give (SimSiam trains with SyncBN
over the whole batch: facebookresearch/simsiam main_simsiam.py L150-152). Every rank must call
them (they are collectives), with rows of the same trailing shape.
"""
from typing import List

import torch
import torch.distributed as dist
from detectron2.utils import comm

__all__ = ["all_gather_rows", "all_gather_variable"]


class _AllGather(torch.autograd.Function):
    """all_gather forward; backward: the sum over ranks of the gradients of this rank's slice."""

    @staticmethod
    def forward(ctx, x):
        out = [torch.empty_like(x) for _ in range(comm.get_world_size())]
        dist.all_gather(out, x.contiguous())
        return tuple(out)

    @staticmethod
    def backward(ctx, *grads):
        g = torch.stack(grads)
        dist.all_reduce(g)
        return g[comm.get_rank()]


def _sizes(n: int, device, group=None) -> List[int]:
    local = torch.tensor([n], dtype=torch.int64, device=device)
    sizes = [torch.zeros_like(local) for _ in range(comm.get_world_size() if group is None else dist.get_world_size(group))]
    dist.all_gather(sizes, local, group=group)
    return [int(s.item()) for s in sizes]


def _padded(x: torch.Tensor, sizes: List[int]) -> torch.Tensor:
    """``x`` with zero rows appended up to ``max(sizes)`` rows (all_gather needs equal shapes)."""
    n = max(sizes)
    if x.shape[0] == n:
        return x
    return torch.cat([x, x.new_zeros((n - x.shape[0],) + tuple(x.shape[1:]))])


def all_gather_variable(t: torch.Tensor, group=None) -> List[torch.Tensor]:
    """
    All-gather (no gradient) a tensor whose first dimension may differ between ranks.

    Args:
        t: (N_r, ...) on this rank.
        group: process group (None: the default one).
    Returns:
        list of world_size tensors, in rank order (``[t]`` without a process group).
    """
    if comm.get_world_size() == 1:
        return [t]
    sizes = _sizes(t.shape[0], t.device, group)
    padded = _padded(t, sizes)
    out = [torch.empty_like(padded) for _ in sizes]
    dist.all_gather(out, padded, group=group)
    return [o[:n] for o, n in zip(out, sizes)]


def all_gather_rows(x: torch.Tensor) -> torch.Tensor:
    """
    Args:
        x: (N_r, ...) rows of this rank.

    Returns:
        (sum_r N_r, ...) the rows of every rank in rank order (``x`` itself without a process
        group). The backward pass returns to each rank the gradient of its own rows summed over
        the ranks' copies of the result (as ``torch.distributed.nn.functional.all_gather``), so
        with a loss computed identically on every rank and DDP's mean over ranks the update is the
        gradient of that one global loss.
    """
    if comm.get_world_size() == 1:
        return x
    sizes = _sizes(x.shape[0], x.device)
    parts = _AllGather.apply(_padded(x, sizes))
    return torch.cat([p[:n] for p, n in zip(parts, sizes)])
