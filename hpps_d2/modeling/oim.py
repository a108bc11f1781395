"""
Online Instance Matching loss (Xiao et al., CVPR 2017), with identities of any count and DDP sync.

The lookup table ``lut`` (L x D) holds one L2-normalised feature per identity (labeled and, in
hybrid pre-training, pseudo-identities: about 600k rows at paper scale), the circular queue ``cq``
(Q x D) the latest features of unlabeled persons. Both are buffers of the module: one tensor each, in
the model's dtype and device, saved in checkpoints, never copied. Logits are
``scale * x @ [lut; cq]^T`` and the loss is the cross-entropy towards the identity's row; unlabeled
persons give no loss term but enter the queue (docs/datasets.md section 11).

Table updates (``lut[t] <- normalize(m * lut[t] + (1 - m) * x)``; queue FIFO) must not happen in
place while the loss graph still needs the tables, so each training forward records its (detached)
features and labels, and the trainer decides after the optimizer step what becomes of them:

* :meth:`OIMLoss.apply_pending_updates` when the parameters were updated. Under DDP the pending
  features and labels of every rank are all-gathered and applied in rank order, so every rank holds
  the same tables (the blocker SeqNet's users hit, docs/anchors.md complaint 3). Every rank calls it
  at the same point of the step; a forward never makes a collective call (a rank whose forward is
  skipped, or an extra forward on one rank, would otherwise hang the others).
* :meth:`OIMLoss.discard_pending_updates` when the step was skipped (the AMP grad scaler found
  inf/NaN gradients): the tables stay consistent with the parameters, which did not move. The
  trainer also discards, with a warning, whatever a forward outside a step left behind (such
  features come from other parameters or another batch than the step that would apply them).

Rows with a non-finite feature are dropped from the update, counted in
``OIMLoss.num_dropped_nonfinite`` and logged: one NaN row would poison its identity's table row
(or a queue slot) and through the logits every later loss.

The update rule is the references' (NAE4PS lib/loss/oim.py L36-43, SeqNet models/oim.py L26-32).
When it runs is ours: both update inside the autograd backward, before (and whether or not) the
optimizer steps, with every row, and SeqNet all-gathers in the forward (models/oim.py L66-69).
"""
import logging
from typing import List, Optional, Tuple

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn

from .gather import all_gather_variable

__all__ = ["OIMLoss", "all_gather_variable"]

logger = logging.getLogger(__name__)


def _dist_ready() -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


class OIMLoss(nn.Module):
    """
    Args:
        num_features: D, the embedding dimension.
        num_identities: L, rows of the lookup table (counted from the training data).
        queue_size: Q, rows of the circular queue (0 disables it).
        momentum: m of the table update (OIM: 0.5).
        scale: logit scale, 1 / temperature (NAE/SeqNet ports: 30; original Caffe: 10).
        unlabeled: the label of an unlabeled person.
    """

    def __init__(
        self,
        num_features: int,
        num_identities: int,
        queue_size: int = 5000,
        momentum: float = 0.5,
        scale: float = 30.0,
        unlabeled: int = -1,
        *,
        table_rows: Optional[int] = None,
        table_dtype: torch.dtype = torch.float32,
    ):
        """``table_rows`` / ``table_dtype``: the rows and dtype of the ``lut`` buffer this process
        allocates (default: every identity, float32); :class:`~.oim_sharded.ShardedOIMLoss`
        allocates its shard only."""
        super().__init__()
        if num_identities < 1:
            raise ValueError(f"OIM needs at least one identity, got num_identities={num_identities}")
        self.num_features = num_features
        self.momentum = momentum
        self.scale = scale
        self.unlabeled = unlabeled
        rows = num_identities if table_rows is None else table_rows
        self.register_buffer("lut", torch.zeros(rows, num_features, dtype=table_dtype))
        self.register_buffer("cq", torch.zeros(queue_size, num_features))
        self.register_buffer("cq_head", torch.zeros((), dtype=torch.int64))
        self._pending: List[Tuple[torch.Tensor, torch.Tensor]] = []
        #: rows left out of table updates because their feature was not finite (all ranks')
        self.num_dropped_nonfinite = 0

    @property
    def num_identities(self) -> int:
        return self.lut.shape[0]

    def extra_repr(self):
        return (
            f"lut={tuple(self.lut.shape)}, cq={tuple(self.cq.shape)}, momentum={self.momentum}, "
            f"scale={self.scale}"
        )

    def forward(self, features: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """
        Args:
            features: (N, D) L2-normalised embeddings of person RoIs (background excluded).
            labels: (N,) int64 identity in [0, L) or ``unlabeled``.

        Returns:
            scalar loss: mean cross-entropy over labeled rows (0 with a graph when there are none).
        """
        labels = self._checked(labels)
        if self.training:
            self._pending.append((features.detach(), labels.detach()))
        labeled = labels != self.unlabeled
        if not labeled.any():
            return features.sum() * 0.0
        x = features[labeled]
        # One product per table (no concatenated copy of the 600k-row table); only the (N, L + Q)
        # logits are materialised.
        logits = x @ self.lut.to(x.dtype).t()
        if self.cq.shape[0]:
            logits = torch.cat([logits, x @ self.cq.to(x.dtype).t()], dim=1)
        return F.cross_entropy(self.scale * logits, labels[labeled])

    def _checked(self, labels: torch.Tensor) -> torch.Tensor:
        """``labels`` as int64; a ValueError when one is neither an identity nor ``unlabeled``."""
        labels = labels.to(torch.int64)
        bad = (labels >= self.num_identities) | ((labels < 0) & (labels != self.unlabeled))
        if bad.any():
            raise ValueError(
                f"OIM labels must be in [0, {self.num_identities}) or {self.unlabeled}; "
                f"got {labels[bad][:5].tolist()}"
            )
        return labels

    @torch.no_grad()
    def apply_pending_updates(self) -> int:
        """
        Update the tables with the features recorded since the last apply or discard (all ranks'
        under DDP: a collective call, made by every rank after the optimizer step).

        Returns:
            the number of rows (all ranks') dropped because their feature was not finite.
        """
        if not self._pending and not _dist_ready():
            return 0
        if self._pending:
            # at least float32 for the update arithmetic (a float16 / bfloat16 table stores it)
            feats = torch.cat([f for f, _ in self._pending]).to(torch.promote_types(self.lut.dtype, torch.float32))
            labels = torch.cat([l for _, l in self._pending])
        else:
            feats = self.lut.new_zeros((0, self.num_features), dtype=torch.promote_types(self.lut.dtype, torch.float32))
            labels = torch.zeros(0, dtype=torch.int64, device=self.lut.device)
        self._pending = []
        dropped = 0
        for f, l in zip(all_gather_variable(feats), all_gather_variable(labels)):
            finite = torch.isfinite(f).all(dim=1)
            n_bad = int(f.shape[0] - finite.sum())
            if n_bad:
                f, l = f[finite], l[finite]
                dropped += n_bad
            self._update(f, l)
        if dropped:
            self.num_dropped_nonfinite += dropped
            logger.warning(
                f"OIM: {dropped} non-finite feature row(s) left out of the table update "
                f"({self.num_dropped_nonfinite} so far)"
            )
        return dropped

    def discard_pending_updates(self) -> int:
        """Forget the recorded features, tables unchanged (no collective); returns their count."""
        n = sum(int(f.shape[0]) for f, _ in self._pending)
        self._pending = []
        return n

    def _update(self, feats: torch.Tensor, labels: torch.Tensor) -> None:
        """
        Apply the OIM update rule in input order, vectorised.

        A repeated identity compounds exactly as a sequential loop would: the k-th occurrences of all
        identities are applied together in pass k (within a pass the identities are distinct).
        """
        labeled = labels != self.unlabeled
        x, y = feats[labeled], labels[labeled]
        if y.numel():
            order = torch.sort(y, stable=True).indices
            ys = y[order]
            starts = torch.ones_like(ys, dtype=torch.bool)
            starts[1:] = ys[1:] != ys[:-1]
            group_start = torch.cummax(torch.where(starts, torch.arange(len(ys), device=ys.device), 0), 0).values
            occurrence = torch.empty_like(ys)
            occurrence[order] = torch.arange(len(ys), device=ys.device) - group_start
            for k in range(int(occurrence.max()) + 1):
                sel = occurrence == k
                rows = self.momentum * self.lut[y[sel]].to(x.dtype) + (1.0 - self.momentum) * x[sel]
                self.lut[y[sel]] = (rows / rows.norm(dim=1, keepdim=True).clamp_min(1e-12)).to(self.lut.dtype)
        q = self.cq.shape[0]
        unl = feats[~labeled]
        if q == 0 or unl.shape[0] == 0:
            return
        n, head = unl.shape[0], int(self.cq_head)
        # Only the last q entries survive this update; they land where a FIFO would put them.
        first = head + max(0, n - q)
        idx = (first + torch.arange(min(n, q), device=unl.device)) % q
        self.cq[idx] = unl[-q:].to(self.cq.dtype)
        self.cq_head.fill_((head + n) % q)
