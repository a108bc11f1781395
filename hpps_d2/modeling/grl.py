"""
Gradient scaling layers: the gradient reversal layer (Ganin & Lempitsky, ICML 2015) and its
positive twin.

Both are the identity in the forward pass and multiply the gradient in the backward pass, as
DA-Faster's ``GradientScalarLayer(weight)`` (krumo/Domain-Adaptive-Faster-RCNN-PyTorch,
maskrcnn_benchmark/layers/gradient_scalar_layer.py): ``grad_reverse(x, w)`` scales by ``-w`` (the
adversarial image/instance branches, DA-Faster's ``GradientScalarLayer(-0.1)``), ``grad_scale(x, w)``
by ``+w`` (its consistency branches, ``GradientScalarLayer(+0.1)``, da_heads.py L92-95).
"""
import torch
from torch import nn

__all__ = ["GradientReversal", "grad_reverse", "grad_scale"]


class _GradScale(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, weight):
        ctx.weight = weight
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad):
        return ctx.weight * grad, None


def grad_scale(x: torch.Tensor, weight: float) -> torch.Tensor:
    """Identity in the forward pass; multiplies the gradient by ``weight`` in the backward pass."""
    return _GradScale.apply(x, float(weight))


def grad_reverse(x: torch.Tensor, weight: float = 1.0) -> torch.Tensor:
    """Identity in the forward pass; multiplies the gradient by ``-weight`` in the backward pass."""
    return grad_scale(x, -float(weight))


class GradientReversal(nn.Module):
    """Module form of :func:`grad_reverse`."""

    def __init__(self, weight: float = 1.0):
        super().__init__()
        self.weight = weight

    def forward(self, x):
        return grad_reverse(x, self.weight)

    def extra_repr(self):
        return f"weight={self.weight}"
