"""
Differentiable all-gather of rows whose count differs between ranks.

Used where a loss must see the whole global batch, e.g. L_con's prediction MLP, whose BatchNorm
needs more rows than one GPU's two images give (SimSiam trains its predictor with SyncBN over the
whole batch: facebookresearch/simsiam main_simsiam.py L150-152 converts the whole model to SyncBatchNorm).
Every rank must call it (it is a collective), with rows of the same trailing shape.
"""
from typing import List

import torch
import torch.distributed as dist
from detectron2.utils import comm

__all__ = ["all_gather_rows"]


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


def _sizes(n: int, device) -> List[int]:
    local = torch.tensor([n], dtype=torch.int64, device=device)
    sizes = [torch.zeros_like(local) for _ in range(comm.get_world_size())]
    dist.all_gather(sizes, local)
    return [int(s.item()) for s in sizes]


def all_gather_rows(x: torch.Tensor) -> torch.Tensor:
    """
    Args:
        x: (N_r, ...) rows of this rank.

    Returns:
        (sum_r N_r, ...) the rows of every rank in rank order (``x`` itself without a process
        group). The backward pass returns to each rank the gradient of its own rows summed over the
        ranks' copies of the result (as ``torch.distributed.nn.functional.all_gather``), so with a loss
        computed identically on every rank and DDP's mean over ranks the update is the gradient of
        that one global loss.
    """
    if comm.get_world_size() == 1:
        return x
    sizes = _sizes(x.shape[0], x.device)
    padded = x.new_zeros((max(sizes),) + tuple(x.shape[1:]))
    padded = torch.cat([x, padded[x.shape[0] :]]) if x.shape[0] < max(sizes) else x
    parts = _AllGather.apply(padded)
    return torch.cat([p[:n] for p, n in zip(parts, sizes)])
