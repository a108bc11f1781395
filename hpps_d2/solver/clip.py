"""
Gradient clipping, applied by the trainer step (after the AMP loss scale is divided out).

``SOLVER.CLIP_GRADIENTS.CLIP_TYPE``:

* ``"full_model"``: one L-``NORM_TYPE`` norm over all gradients together is bounded by
  ``CLIP_VALUE`` (``torch.nn.utils.clip_grad_norm_(all parameters, ...)``): every gradient is
  scaled by the same factor, so the update keeps its direction. This is what NAE4PS
  (lib/utils/trainer.py L77-78, ``--clip_gradient`` 10 in configs/res50_faster_rcnn.py L90-91)
  and SeqNet (engine.py L54-55, ``SOLVER.CLIP_GRADIENTS = 10.0`` in defaults.py L64-65) do. The
  name is the one DETR's detectron2 adapter gives it (facebookresearch/detr d2/train_net.py
  L73-88, ``maybe_add_full_model_gradient_clipping``).
* ``"norm"``: detectron2 v0.6's per-tensor rule (detectron2/solver/build.py L58-62, L103-106):
  each parameter's own gradient norm is bounded, so tensors are scaled by different factors.
* ``"value"``: detectron2's element-wise clamp to ``[-CLIP_VALUE, CLIP_VALUE]``.

The clippers are applied in the trainer step rather than by wrapping the optimizer (detectron2's
and DETR's way): the step then reads the same for every type, and the unscale -> clip -> step order
under AMP is explicit. (A wrapped optimizer would also see unscaled gradients: torch's
``GradScaler.step`` unscales before calling ``optimizer.step``.)
"""
from typing import Callable, Dict, Iterable, Optional

import torch
from detectron2.config import CfgNode

__all__ = ["CLIP_TYPES", "build_gradient_clipper"]

#: Called with the parameters of the optimizer's groups; clips their ``.grad`` in place.
GradientClipper = Callable[[Iterable[torch.nn.Parameter]], None]


def _full_model(value: float, norm_type: float) -> GradientClipper:
    def clip(params: Iterable[torch.nn.Parameter]) -> None:
        torch.nn.utils.clip_grad_norm_(list(params), value, norm_type)

    return clip


def _per_tensor_norm(value: float, norm_type: float) -> GradientClipper:
    def clip(params: Iterable[torch.nn.Parameter]) -> None:
        for p in params:
            torch.nn.utils.clip_grad_norm_(p, value, norm_type)

    return clip


def _value(value: float, norm_type: float) -> GradientClipper:
    del norm_type

    def clip(params: Iterable[torch.nn.Parameter]) -> None:
        torch.nn.utils.clip_grad_value_(list(params), value)

    return clip


#: CLIP_TYPE -> factory(CLIP_VALUE, NORM_TYPE) of the clipper
CLIP_TYPES: Dict[str, Callable[[float, float], GradientClipper]] = {
    "full_model": _full_model,
    "norm": _per_tensor_norm,
    "value": _value,
}


def build_gradient_clipper(cfg: CfgNode) -> Optional[GradientClipper]:
    """The clipper of ``cfg.SOLVER.CLIP_GRADIENTS``, or None when clipping is off."""
    c = cfg.SOLVER.CLIP_GRADIENTS
    if not c.ENABLED:
        return None
    if c.CLIP_TYPE not in CLIP_TYPES:
        raise ValueError(
            f"SOLVER.CLIP_GRADIENTS.CLIP_TYPE must be one of {sorted(CLIP_TYPES)}, "
            f"got {c.CLIP_TYPE!r}"
        )
    if not c.CLIP_VALUE > 0:
        raise ValueError(
            f"SOLVER.CLIP_GRADIENTS.CLIP_VALUE must be > 0 when clipping is enabled, "
            f"got {c.CLIP_VALUE}"
        )
    return CLIP_TYPES[c.CLIP_TYPE](float(c.CLIP_VALUE), float(c.NORM_TYPE))
