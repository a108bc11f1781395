"""
``build_optimizer``: detectron2's SGD and parameter groups, without detectron2's clipping wrapper.

Parameter groups are detectron2 v0.6's ``get_default_optimizer_params``
(detectron2/solver/build.py L134-218): parameters with ``requires_grad`` False (the frozen stages of
``MODEL.BACKBONE.FREEZE_AT``) are left out (L206-207); parameters of normalisation layers get
``SOLVER.WEIGHT_DECAY_NORM`` (L214-215); then every parameter named ``bias`` gets lr
``BASE_LR * SOLVER.BIAS_LR_FACTOR`` and ``SOLVER.WEIGHT_DECAY_BIAS`` (L176-187, L216; it wins over
the norm rule). The configs choose NAE4PS's rule with these keys
(configs/Base-PersonSearch-C4.yaml).

Clipping (``SOLVER.CLIP_GRADIENTS``) is done by the trainer step (:mod:`hpps_d2.solver.clip`),
so the optimizer is never wrapped and no type clips twice.
"""
import torch
from detectron2.config import CfgNode
from detectron2.solver.build import get_default_optimizer_params

__all__ = ["build_optimizer"]


def build_optimizer(cfg: CfgNode, model: torch.nn.Module) -> torch.optim.Optimizer:
    """SGD with momentum over the trainable parameters of ``model``, grouped as above."""
    params = get_default_optimizer_params(
        model,
        base_lr=cfg.SOLVER.BASE_LR,
        weight_decay_norm=cfg.SOLVER.WEIGHT_DECAY_NORM,
        bias_lr_factor=cfg.SOLVER.BIAS_LR_FACTOR,
        weight_decay_bias=cfg.SOLVER.WEIGHT_DECAY_BIAS,
    )
    return torch.optim.SGD(
        params,
        lr=cfg.SOLVER.BASE_LR,
        momentum=cfg.SOLVER.MOMENTUM,
        nesterov=cfg.SOLVER.NESTEROV,
        weight_decay=cfg.SOLVER.WEIGHT_DECAY,
    )
