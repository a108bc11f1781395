"""
Norm-aware embedding (NAE, Chen et al., CVPR 2020; docs/datasets.md section 12).

A RoI's embedding ``x`` (D = 256) is split into its norm ``r = |x|`` and angle ``theta = x / |x|``.
The norm, through a 1-d BatchNorm "rescaler", is the person/background logit (trained with binary
cross-entropy); the angle is the re-ID feature (trained with OIM). One linear projection + BN per
input feature (NAE: pooled res4 and res5, 128 dimensions each), concatenated.

Initialisation as NAE4PS's ``NormAwareEmbeddingProj`` (lib/model/faster_rcnn_norm_aware.py
L333-339) and SeqNet's ``NormAwareEmbedding`` (models/seqnet.py L415-421): each projection's Linear
weight and BN weight (gamma) N(0, 0.01), both biases 0; the rescaler keeps PyTorch's default BN
init (gamma 1, beta 0; NAE4PS ran PyTorch 1.2, where BN weights start at 1).
"""
from typing import List, Sequence, Tuple

import torch
from torch import nn

__all__ = ["NormAwareEmbedding"]


class NormAwareEmbedding(nn.Module):
    """
    Args:
        in_channels: channels of each pooled input feature, e.g. (1024, 2048).
        dim: D, the embedding dimension, split as evenly as possible over the inputs.
    """

    def __init__(self, in_channels: Sequence[int], dim: int = 256):
        super().__init__()
        n = len(in_channels)
        dims = [dim // n + (1 if i < dim % n else 0) for i in range(n)]
        self.projectors = nn.ModuleList(
            nn.Sequential(nn.Linear(c, d), nn.BatchNorm1d(d)) for c, d in zip(in_channels, dims)
        )
        self.rescaler = nn.BatchNorm1d(1, affine=True)
        self.dim = dim
        for proj in self.projectors:
            nn.init.normal_(proj[0].weight, std=0.01)
            nn.init.zeros_(proj[0].bias)
            nn.init.normal_(proj[1].weight, std=0.01)
            nn.init.zeros_(proj[1].bias)

    def forward(self, feats: List[torch.Tensor]) -> Tuple[torch.Tensor, torch.Tensor]:
        """
        Args:
            feats: per input, (R, C_i) pooled RoI features.

        Returns:
            embeddings: (R, D), not normalised (norm = detection confidence, angle = re-ID).
            logits: (R,) person logits, ``rescaler(|x|)``.
        """
        x = torch.cat([proj(f) for proj, f in zip(self.projectors, feats)], dim=1)
        logits = self.rescaler(x.norm(dim=1, keepdim=True)).squeeze(1)
        return x, logits
