"""
Which parameters get weight decay, and at which learning rate, against hand-listed expectations.

NAE4PS (lib/utils/misc.py get_optimizer, run with its defaults double_bias=0, bias_decay=False):
every trainable parameter whose name contains "bias" has lr x1 and no weight decay, every other
one (conv, linear and norm weights) has the weight decay 5e-4. SeqNet (train.py): one group, every
trainable parameter decayed. Frozen parameters (requires_grad False) are in neither optimizer.
"""
import os

import torch
from detectron2.config import get_cfg
from detectron2.modeling import build_model

from hpps_d2.config import add_hpps_config

from hpps_d2.engine.trainer import PersonSearchTrainer
from tests.modeling.conftest import tiny_cfg

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# ResNet-18 NAE, FREEZE_AT 2 with frozen BN (the Base-PersonSearch-C4 backbone settings): stem and
# res2 are frozen; frozen BN has no parameters.
FROZEN = [
    "backbone.stem.conv1.weight",
    "backbone.res2.0.conv1.weight", "backbone.res2.0.conv2.weight",
    "backbone.res2.1.conv1.weight", "backbone.res2.1.conv2.weight",
]
WEIGHTS = [
    "backbone.res3.0.shortcut.weight", "backbone.res3.0.conv1.weight", "backbone.res3.0.conv2.weight",
    "backbone.res3.1.conv1.weight", "backbone.res3.1.conv2.weight",
    "backbone.res4.0.shortcut.weight", "backbone.res4.0.conv1.weight", "backbone.res4.0.conv2.weight",
    "backbone.res4.1.conv1.weight", "backbone.res4.1.conv2.weight",
    "proposal_generator.rpn_head.conv.weight", "proposal_generator.rpn_head.objectness_logits.weight",
    "proposal_generator.rpn_head.anchor_deltas.weight",
    "roi_heads.trunk.0.shortcut.weight", "roi_heads.trunk.0.conv1.weight", "roi_heads.trunk.0.conv2.weight",
    "roi_heads.trunk.1.conv1.weight", "roi_heads.trunk.1.conv2.weight",
    "roi_heads.embedding.projectors.0.0.weight", "roi_heads.embedding.projectors.1.0.weight",
    "roi_heads.box_predictor.0.weight",
]
NORM_WEIGHTS = [  # BatchNorm1d of the embedding, the norm rescaler and the box regressor
    "roi_heads.embedding.projectors.0.1.weight", "roi_heads.embedding.projectors.1.1.weight",
    "roi_heads.embedding.rescaler.weight", "roi_heads.box_predictor.1.weight",
]
BIASES = [
    "proposal_generator.rpn_head.conv.bias", "proposal_generator.rpn_head.objectness_logits.bias",
    "proposal_generator.rpn_head.anchor_deltas.bias",
    "roi_heads.embedding.projectors.0.0.bias", "roi_heads.embedding.projectors.0.1.bias",
    "roi_heads.embedding.projectors.1.0.bias", "roi_heads.embedding.projectors.1.1.bias",
    "roi_heads.embedding.rescaler.bias", "roi_heads.box_predictor.0.bias", "roi_heads.box_predictor.1.bias",
]


def _model_and_groups(*opts):
    cfg = tiny_cfg(meta="PersonSearchRCNN")
    cfg.merge_from_file(os.path.join(REPO, "configs", "synth", "Base-Synth-R18.yaml"))
    # SOLVER comes from configs/Base-PersonSearch-C4.yaml, as in every NAE config
    cfg.merge_from_list(["MODEL.BACKBONE.FREEZE_AT", "2", "MODEL.RESNETS.NORM", "FrozenBN", *opts])
    model = build_model(cfg)
    optimizer = PersonSearchTrainer.build_optimizer(cfg, model)
    by_param = {}
    for group in optimizer.param_groups:
        for p in group["params"]:
            assert p not in by_param, "a parameter is in two groups"
            by_param[p] = (group["lr"] / cfg.SOLVER.BASE_LR, group["weight_decay"])
    names = dict(model.named_parameters())
    return names, {n: by_param[p] for n, p in names.items() if p in by_param}, optimizer


def test_nae_configs_decay_weights_and_not_biases():
    names, got, _ = _model_and_groups()
    assert sorted(names) == sorted(FROZEN + WEIGHTS + NORM_WEIGHTS + BIASES)  # the hand list is complete
    assert not any(n in got for n in FROZEN), [n for n in FROZEN if n in got]
    expected = {**{n: (1.0, 5e-4) for n in WEIGHTS + NORM_WEIGHTS}, **{n: (1.0, 0.0) for n in BIASES}}
    wrong = {n: (got.get(n), e) for n, e in expected.items() if got.get(n) != e}
    assert not wrong, f"(lr factor, weight decay) got vs expected: {wrong}"
    # NAE4PS tests "bias" in the full name, detectron2 the parameter's own name: same set here
    assert {n for n in names if "bias" in n} == {n for n in names if n.rsplit(".", 1)[-1] == "bias"}


def test_every_finetune_config_has_the_nae_rule():
    keys = ("WEIGHT_DECAY", "WEIGHT_DECAY_NORM", "WEIGHT_DECAY_BIAS", "BIAS_LR_FACTOR")
    folder = os.path.join(REPO, "configs", "finetune")
    for name in sorted(os.listdir(folder)):
        cfg = add_hpps_config(get_cfg())
        cfg.merge_from_file(os.path.join(folder, name))
        assert tuple(cfg.SOLVER[k] for k in keys) == (5e-4, 5e-4, 0.0, 1.0), name


def test_seqnet_alternative_decays_every_trainable_parameter():
    _, got, _ = _model_and_groups("SOLVER.WEIGHT_DECAY_NORM", "0.0005", "SOLVER.WEIGHT_DECAY_BIAS", "None")
    assert got == {n: (1.0, 5e-4) for n in WEIGHTS + NORM_WEIGHTS + BIASES}


def test_frozen_parameters_do_not_move():
    names, _, optimizer = _model_and_groups()
    before = {n: p.detach().clone() for n, p in names.items()}
    for p in names.values():
        p.grad = torch.ones_like(p)  # even a stray gradient on a frozen parameter
    optimizer.step()
    assert all(torch.equal(names[n], before[n]) for n in FROZEN)
    assert not any(torch.equal(names[n], before[n]) for n in WEIGHTS + BIASES)
