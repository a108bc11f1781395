"""
The OIM tables follow the optimizer: a real DeterministicStepTrainer step of a tiny PersonSearchRCNN
with a CPU GradScaler updates them when the parameters are updated, and leaves them alone when the
scaler skips the step (inf gradients); features left over from a forward outside a step are
dropped, never applied later.
"""
import torch
from detectron2.modeling import build_model
from detectron2.structures import Boxes, Instances
from detectron2.utils.events import EventStorage

from hpps_d2.engine.trainer import DeterministicStepTrainer
from hpps_d2.solver import build_optimizer
from tests.modeling.conftest import tiny_cfg


def _batch():
    g = torch.Generator().manual_seed(0)
    img = (torch.rand(3, 160, 213, generator=g) * 255).to(torch.uint8)
    inst = Instances((160, 213))
    inst.gt_boxes = Boxes(torch.tensor([[10.0, 20, 50, 120], [60, 20, 100, 130], [120, 10, 170, 140]]))
    inst.gt_classes = torch.zeros(3, dtype=torch.int64)
    inst.gt_pids = torch.tensor([3, 7, -1])
    return [{"image": img, "instances": inst}]


def _setup(seed=0):
    cfg = tiny_cfg(meta="PersonSearchRCNN", num_ids=10)
    cfg.SOLVER.CLIP_GRADIENTS.ENABLED = False
    torch.manual_seed(seed)
    model = build_model(cfg)
    model.train()
    seen = []  # the (features, labels) each OIM forward received
    model.roi_heads.oim.register_forward_hook(lambda m, args, out: seen.append([a.detach().clone() for a in args]))
    trainer = DeterministicStepTrainer(
        model, [_batch()] * 3, build_optimizer(cfg, model), seed=0, grad_scaler=torch.amp.GradScaler("cpu", init_scale=8.0)
    )
    return model, trainer, seen


def _oim_rule(lut, cq, head, feats, labels, m=0.5):
    """The OIM update, one row at a time (Xiao et al. 2017): lut[t] <- normalize(m lut[t] + (1-m) x)."""
    lut, cq = lut.clone(), cq.clone()
    for x, t in zip(feats, labels):
        if t >= 0:
            row = m * lut[t] + (1 - m) * x
            lut[t] = row / row.norm()
        else:
            cq[head] = x
            head = (head + 1) % cq.shape[0]
    return lut, cq


def test_a_skipped_amp_step_leaves_the_tables_and_a_good_step_updates_them():
    model, trainer, seen = _setup()
    oim = model.roi_heads.oim
    params = {n: p.detach().clone() for n, p in model.named_parameters()}
    lut0, cq0 = oim.lut.clone(), oim.cq.clone()
    # inf gradients: the scaler skips the optimizer step and halves its scale
    handle = model.roi_heads.embedding.rescaler.weight.register_hook(lambda g: g * float("inf"))
    with EventStorage(0):
        trainer.run_step()
    handle.remove()
    assert trainer.grad_scaler.get_scale() == 4.0, "the scaler did not skip the step"
    assert all(torch.equal(p, params[n]) for n, p in model.named_parameters()), "a skipped step moved parameters"
    assert torch.equal(oim.lut, lut0) and torch.equal(oim.cq, cq0), "a skipped step updated the OIM tables"
    assert seen and (seen[-1][1] >= 0).any()  # there were labeled features to (not) apply
    # a good step: parameters move and the tables take exactly this step's features
    with EventStorage(1):
        trainer.iter = 1
        trainer.run_step()
    assert trainer.grad_scaler.get_scale() == 4.0
    assert any(not torch.equal(p, params[n]) for n, p in model.named_parameters())
    lut, cq = _oim_rule(lut0, cq0, 0, *seen[-1])
    torch.testing.assert_close(oim.lut, lut)
    torch.testing.assert_close(oim.cq, cq)
    assert oim.lut.abs().sum() > 0


def test_features_from_a_forward_outside_a_step_are_not_applied():
    model, trainer, seen = _setup()
    oim = model.roi_heads.oim
    lut0, cq0 = oim.lut.clone(), oim.cq.clone()
    with EventStorage(0):
        model(_batch())  # e.g. a hook's forward in train mode, never followed by a step
        trainer.run_step()
    assert len(seen) == 2
    lut, cq = _oim_rule(lut0, cq0, 0, *seen[-1])  # the step's own features only
    torch.testing.assert_close(oim.lut, lut)
    torch.testing.assert_close(oim.cq, cq)
