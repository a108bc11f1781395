"""
The self-supervised consistency loss of hybrid pre-training (paper Eq. 5-6; SimSiam, Chen & He 2021).

Each view of an image goes through the whole person-search model; ``h`` is a person's re-ID feature
in a view and ``z = MLP(h)`` its prediction. Persons are matched across the two views by identity
(the unified pseudo-identities make every person of a detection or unlabeled re-ID image unique).
The loss is the symmetrised negative cosine with stop-gradient on the target branch::

    L_con = 1/2 C(sg(h_2), z_1) + 1/2 C(sg(h_1), z_2),   C(h, z) = - mean_k <h_k/|h_k|, z_k/|z_k|>

Eq. 5 writes C as a sum over persons; we average over matched persons so that the loss scale does not
depend on how crowded a batch is (eta then has one meaning for every batch).
"""
from typing import Optional

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["PredictionMLP", "negative_cosine", "symmetric_consistency_loss", "match_by_identity"]


class PredictionMLP(nn.Module):
    """
    SimSiam's prediction MLP: Linear(D, H) - BN - ReLU - Linear(H, D), a bottleneck (H = D / 4 in
    SimSiam: 2048 -> 512 -> 2048).

    Args:
        dim: D, the re-ID feature dimension.
        hidden_dim: H.
        norm: "BN" (SimSiam) or "" (none; for batches with a single matched person).
    """

    def __init__(self, dim: int, hidden_dim: int, norm: str = "BN"):
        super().__init__()
        layers = [nn.Linear(dim, hidden_dim, bias=not norm)]
        if norm == "BN":
            layers.append(nn.BatchNorm1d(hidden_dim))
        elif norm:
            raise ValueError(f"PredictionMLP norm must be 'BN' or '', got {norm!r}")
        layers += [nn.ReLU(inplace=True), nn.Linear(hidden_dim, dim)]
        self.net = nn.Sequential(*layers)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        """(N, D) -> (N, D)."""
        return self.net(h)


def negative_cosine(target: torch.Tensor, pred: torch.Tensor) -> torch.Tensor:
    """C(sg(target), pred): mean over rows of -cos(target, pred); no gradient reaches ``target``."""
    return -(F.normalize(target.detach(), dim=1) * F.normalize(pred, dim=1)).sum(dim=1).mean()


def symmetric_consistency_loss(h1, z1, h2, z2) -> torch.Tensor:
    """Eq. 6: 1/2 C(sg(h2), z1) + 1/2 C(sg(h1), z2); all (N, D), row k is one person in both views."""
    return 0.5 * negative_cosine(h2, z1) + 0.5 * negative_cosine(h1, z2)


def match_by_identity(ids1: torch.Tensor, ids2: torch.Tensor, valid1: Optional[torch.Tensor] = None):
    """
    Pair the rows of two views that carry the same identity.

    Args:
        ids1: (N1,) identities of view-1 rows (unique per image and view; -1 = no identity).
        ids2: (N2,) identities of view-2 rows.
        valid1: optional (N1,) bool mask of view-1 rows allowed to pair.

    Returns:
        (idx1, idx2): LongTensors of equal length K with ids1[idx1] == ids2[idx2].
    """
    ok1 = ids1 >= 0 if valid1 is None else (ids1 >= 0) & valid1
    eq = (ids1[:, None] == ids2[None, :]) & ok1[:, None]
    idx1, idx2 = eq.nonzero(as_tuple=True)
    return idx1, idx2
