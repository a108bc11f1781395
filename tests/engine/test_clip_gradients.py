"""
Gradient clipping in the trainer step: NAE4PS and SeqNet clip the norm of ALL gradients together
(``clip_grad_norm_(model.parameters(), 10)``); detectron2's "norm" clips each tensor on its own.

The toy model's two parameters get the gradients a = (6, 6) (norm 8.49) and b = (7,) (norm 7):
each alone is under the bound 10, together their norm is sqrt(36 + 36 + 49) = 11. Clipping the
joint norm to 10 scales both by 10 / 11; per-tensor clipping leaves them as they are. SGD with lr 1
and no momentum or weight decay moves each parameter by exactly minus its (clipped) gradient.
"""
import os

import pytest
import torch
from detectron2.config import get_cfg
from detectron2.utils.events import EventStorage
from torch import nn

from hpps_d2.config import add_hpps_config
from hpps_d2.engine.trainer import DeterministicStepTrainer, PersonSearchTrainer
from hpps_d2.solver import build_gradient_clipper

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

GRAD_A = torch.tensor([6.0, 6.0])
GRAD_B = torch.tensor([7.0])


class _Toy(nn.Module):
    """loss = a . (6, 6) + 7 b: gradients (6, 6) and (7,), whatever the parameter values."""

    def __init__(self):
        super().__init__()
        self.a = nn.Parameter(torch.zeros(2))
        self.b = nn.Parameter(torch.zeros(1))

    def forward(self, batch):
        del batch
        return {"loss": (self.a * GRAD_A).sum() + (self.b * GRAD_B).sum()}

    # the trainer's OIM hooks; the toy has no tables
    def apply_pending_updates(self):
        return 0

    def discard_pending_updates(self):
        return 0


def _cfg(*opts):
    cfg = add_hpps_config(get_cfg())
    cfg.merge_from_file(os.path.join(REPO, "configs", "Base-PersonSearch-C4.yaml"))
    cfg.merge_from_list(["SOLVER.BASE_LR", "1.0", "SOLVER.MOMENTUM", "0.0", "SOLVER.WEIGHT_DECAY", "0.0", *opts])
    return cfg


def _one_step(cfg, grad_scaler=None):
    """One real DeterministicStepTrainer step; returns the parameter moves (-lr * clipped grad)."""
    model = _Toy()
    optimizer = PersonSearchTrainer.build_optimizer(cfg, model)
    trainer = DeterministicStepTrainer(
        model, [{}] * 2, optimizer, seed=0, clip_gradients=build_gradient_clipper(cfg), grad_scaler=grad_scaler
    )
    with EventStorage(0):
        trainer.run_step()
    return -model.a.detach(), -model.b.detach()


def test_base_config_clips_the_joint_norm_and_keeps_the_direction():
    cfg = _cfg()
    assert cfg.SOLVER.CLIP_GRADIENTS.ENABLED and cfg.SOLVER.CLIP_GRADIENTS.CLIP_VALUE == 10.0
    ga, gb = _one_step(cfg)
    joint = torch.cat([ga, gb]).norm().item()
    assert abs(joint - 10.0) < 1e-4, f"joint gradient norm after clipping is {joint:.4f}, expected 10"
    # direction kept: both scaled by 10 / 11 (hand-computed)
    torch.testing.assert_close(ga, torch.tensor([60.0 / 11, 60.0 / 11]))
    torch.testing.assert_close(gb, torch.tensor([70.0 / 11]))


def test_joint_norm_is_clipped_after_unscaling_the_amp_loss_scale():
    # A CPU GradScaler multiplies the loss by 1024: clipping before unscale_ would leave the true
    # gradients at 10 / 1024 of their clipped size.
    scaler = torch.amp.GradScaler("cpu", init_scale=1024.0)
    ga, gb = _one_step(_cfg(), grad_scaler=scaler)
    torch.testing.assert_close(ga, torch.tensor([60.0 / 11, 60.0 / 11]))
    torch.testing.assert_close(gb, torch.tensor([70.0 / 11]))


def test_detectron2_per_tensor_types_stay_available():
    # "norm": each tensor's own norm is bounded (a: 8.49 -> 8, b: 7 -> 7 untouched).
    ga, gb = _one_step(_cfg("SOLVER.CLIP_GRADIENTS.CLIP_TYPE", "norm", "SOLVER.CLIP_GRADIENTS.CLIP_VALUE", "8.0"))
    torch.testing.assert_close(ga, GRAD_A * (8.0 / GRAD_A.norm()))
    torch.testing.assert_close(gb, GRAD_B)
    # "value": every element is clamped to [-6.5, 6.5]
    ga, gb = _one_step(_cfg("SOLVER.CLIP_GRADIENTS.CLIP_TYPE", "value", "SOLVER.CLIP_GRADIENTS.CLIP_VALUE", "6.5"))
    torch.testing.assert_close(ga, torch.tensor([6.0, 6.0]))
    torch.testing.assert_close(gb, torch.tensor([6.5]))
    # disabled: the raw gradients
    ga, gb = _one_step(_cfg("SOLVER.CLIP_GRADIENTS.ENABLED", "False"))
    torch.testing.assert_close(torch.cat([ga, gb]), torch.cat([GRAD_A, GRAD_B]))


def test_optimizer_is_not_also_wrapped():
    # full_model clipping lives in the trainer step; a wrapped optimizer would clip a second time
    optimizer = PersonSearchTrainer.build_optimizer(_cfg(), _Toy())
    assert type(optimizer) is torch.optim.SGD


@pytest.mark.parametrize(
    "opts, message",
    [
        (("SOLVER.CLIP_GRADIENTS.CLIP_TYPE", "global"), r"SOLVER.CLIP_GRADIENTS.CLIP_TYPE must be one of"),
        (("SOLVER.CLIP_GRADIENTS.CLIP_VALUE", "0.0"), r"SOLVER.CLIP_GRADIENTS.CLIP_VALUE must be > 0"),
    ],
)
def test_bad_clip_settings_are_reported(opts, message):
    with pytest.raises(ValueError, match=message):
        build_gradient_clipper(_cfg(*opts))
