"""
Intra-task alignment module, IAM (paper Fig. 4, Eq. 7), generalised from DA-Faster (Chen et al. 2018)
to N domains and any batch composition.

An IAM sees image-level features ``f_img`` (feature maps) and instance-level features ``f_ins``
(vectors) through a gradient reversal layer, and classifies which source dataset (domain) they come
from: cascaded 1x1 convolutions then ``Img_head`` (a per-location domain classifier), and FC layers
then ``Ins_head``. The model's features are trained to fool both (adversarial alignment):

* ``img``: multi-class cross-entropy at every valid location of every map, averaged;
* ``ins``: multi-class cross-entropy per instance, averaged;
* ``cst``: consistency between the two levels, ``mean_n || mean_loc p_img(map(n)) - p_ins(n) ||_2``
  over instances n, where ``map(n)`` is the map the instance belongs to (DA-Faster's regulariser, its
  binary probabilities replaced by N-class probability vectors). As in DA-Faster
  (krumo/Domain-Adaptive-Faster-RCNN-PyTorch, maskrcnn_benchmark/modeling/da_heads/da_heads.py
  L92-95, L122-130), the probabilities of ``cst`` come from a second pass of both heads on the
  features through a *positive* gradient-scale layer (+``grl_weight``), not through the reversal:
  heads and features are both trained to make the two levels agree. (Computing ``cst`` on the
  reversed branch would train the features to make them disagree.)

The detection IAM uses (encoder feature maps, detection-head instance features) and classifies among
detection datasets; the re-ID IAM uses (RoI-aligned maps, re-ID-head features) and classifies among
re-ID datasets. The optional inter-task module (paper Tab. 5) is the same block with the task as the
domain label.
"""
from typing import Dict, Optional, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from .grl import grad_reverse, grad_scale

__all__ = ["AlignmentModule"]


class AlignmentModule(nn.Module):
    """
    Args:
        img_channels: C of ``f_img``.
        ins_dim: D of ``f_ins``.
        num_domains: K >= 2.
        grl_weight: gradient reversal weight (DA-Faster: 0.1).
        conv_dims: output channels of the cascaded 1x1 convolutions before ``Img_head``.
        fc_dims: output sizes of the FC layers before ``Ins_head``.
        dropout: dropout after each FC layer (DA-Faster: 0.5).
    """

    def __init__(
        self,
        img_channels: int,
        ins_dim: int,
        num_domains: int,
        grl_weight: float = 0.1,
        conv_dims: Sequence[int] = (512,),
        fc_dims: Sequence[int] = (1024, 1024),
        dropout: float = 0.5,
    ):
        super().__init__()
        if num_domains < 2:
            raise ValueError(f"an alignment module needs at least 2 domains, got {num_domains}")
        self.num_domains = num_domains
        self.grl_weight = grl_weight
        convs, c = [], img_channels
        for d in conv_dims:
            convs += [nn.Conv2d(c, d, 1), nn.ReLU(inplace=True)]
            c = d
        self.img_body = nn.Sequential(*convs)
        self.img_head = nn.Conv2d(c, num_domains, 1)
        fcs, c = [], ins_dim
        for d in fc_dims:
            fcs += [nn.Linear(c, d), nn.ReLU(inplace=True), nn.Dropout(dropout)]
            c = d
        self.ins_body = nn.Sequential(*fcs)
        self.ins_head = nn.Linear(c, num_domains)
        for m in self.modules():  # DA-Faster's initialisation
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                nn.init.normal_(m.weight, std=0.001 if isinstance(m, nn.Conv2d) else 0.01)
                nn.init.zeros_(m.bias)
        nn.init.normal_(self.ins_head.weight, std=0.05)

    def forward(
        self,
        f_img: torch.Tensor,
        img_domains: torch.Tensor,
        f_ins: torch.Tensor,
        ins_domains: torch.Tensor,
        ins_to_img: torch.Tensor,
        img_mask: Optional[torch.Tensor] = None,
    ) -> Dict[str, torch.Tensor]:
        """
        Args:
            f_img: (B, C, H, W) image-level feature maps.
            img_domains: (B,) int64 domain of each map.
            f_ins: (N, D) instance features.
            ins_domains: (N,) int64 domain of each instance.
            ins_to_img: (N,) int64 index of the map each instance belongs to.
            img_mask: optional (B, H, W) bool, True at valid (non-padding) locations.

        Returns:
            dict with scalar "img", "ins", "cst" losses (0 with a graph when B or N is 0).
        """
        zero = self._zero(f_img, f_ins)
        out = {"img": zero, "ins": zero, "cst": zero}
        if f_img.shape[0] == 0:
            return out
        img_logits = self.img_head(self.img_body(grad_reverse(f_img, self.grl_weight)))  # B,K,H,W
        b, k, h, w = img_logits.shape
        if img_mask is None:
            img_mask = torch.ones((b, h, w), dtype=torch.bool, device=f_img.device)
        target = img_domains.view(b, 1, 1).expand(b, h, w)
        ce = F.cross_entropy(img_logits, target, reduction="none")  # B,H,W
        out["img"] = (ce * img_mask).sum() / img_mask.sum().clamp_min(1)
        if f_ins.shape[0] == 0:
            return out
        ins_logits = self.ins_head(self.ins_body(grad_reverse(f_ins, self.grl_weight)))  # N,K
        out["ins"] = F.cross_entropy(ins_logits, ins_domains)
        # Consistency on a second pass through +grl_weight (DA-Faster da_heads.py L94-95, L122-130).
        cst_img = self.img_head(self.img_body(grad_scale(f_img, self.grl_weight)))
        cst_ins = self.ins_head(self.ins_body(grad_scale(f_ins, self.grl_weight)))
        p_img = cst_img.softmax(dim=1) * img_mask[:, None]
        p_img = p_img.sum(dim=(2, 3)) / img_mask.sum(dim=(1, 2)).clamp_min(1)[:, None]  # B,K
        p_ins = cst_ins.softmax(dim=1)
        out["cst"] = (p_img[ins_to_img] - p_ins).norm(dim=1).mean()
        return out

    def _zero(self, *tensors) -> torch.Tensor:
        # A zero that still involves every parameter, so DDP sees them all used in every step.
        z = sum(p.sum() for p in self.parameters()) * 0.0
        for t in tensors:
            z = z + t.sum() * 0.0
        return z
