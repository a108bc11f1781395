import torch
import torch.nn.functional as F

from hpps_d2.modeling.iam import AlignmentModule


def test_consistency_loss_hand_computed():
    m = AlignmentModule(2, 2, 3, conv_dims=(), fc_dims=(), dropout=0.0)
    with torch.no_grad():
        # image head: per-location logits = fixed, input-independent (weights zero, bias set)
        m.img_head.weight.zero_()
        m.img_head.bias.copy_(torch.tensor([0.0, 0.0, 0.0]))  # uniform 1/3
        m.ins_head.weight.zero_()
        m.ins_head.bias.copy_(torch.log(torch.tensor([0.5, 0.25, 0.25])))
    f_img = torch.randn(2, 2, 3, 3)
    f_ins = torch.randn(4, 2)
    out = m(f_img, torch.tensor([0, 2]), f_ins, torch.tensor([0, 1, 2, 2]), torch.tensor([0, 0, 1, 1]))
    diff = torch.tensor([1 / 3 - 0.5, 1 / 3 - 0.25, 1 / 3 - 0.25])
    assert abs(out["cst"].item() - diff.norm().item()) < 1e-6
    assert abs(out["img"].item() - torch.log(torch.tensor(3.0)).item()) < 1e-6
    expected_ins = -(torch.log(torch.tensor([0.5, 0.25, 0.25, 0.25]))).mean()
    assert abs(out["ins"].item() - expected_ins.item()) < 1e-6


def test_padding_mask_and_gradient_reversal():
    torch.manual_seed(0)
    m = AlignmentModule(4, 6, 2, grl_weight=0.5, conv_dims=(8,), fc_dims=(8,), dropout=0.0)
    f_img = torch.randn(2, 4, 5, 5, requires_grad=True)
    f_ins = torch.randn(3, 6, requires_grad=True)
    mask = torch.zeros(2, 5, 5, dtype=torch.bool)
    mask[:, :3, :4] = True
    out = m(f_img, torch.tensor([0, 1]), f_ins, torch.tensor([0, 1, 1]), torch.tensor([0, 1, 1]), mask)
    (out["img"] + out["ins"]).backward()
    assert f_img.grad[:, :, 3:, :].abs().sum() == 0  # padding receives nothing
    # the features are pushed to *increase* the domain loss: compare with a non-reversed copy
    g_rev = f_ins.grad.clone()
    f2 = f_ins.detach().clone().requires_grad_(True)
    m.grl_weight = -1.0  # gradient multiplied by +1: plain backprop
    out2 = m(f_img.detach(), torch.tensor([0, 1]), f2, torch.tensor([0, 1, 1]), torch.tensor([0, 1, 1]), mask)
    out2["ins"].backward()
    torch.testing.assert_close(g_rev, -0.5 * f2.grad)


def test_empty_batch_composition_gives_zero_with_graph():
    m = AlignmentModule(4, 6, 3)
    out = m(torch.zeros(0, 4, 5, 5), torch.zeros(0, dtype=torch.int64), torch.zeros(0, 6), torch.zeros(0, dtype=torch.int64), torch.zeros(0, dtype=torch.int64))
    total = sum(out.values())
    assert total.item() == 0.0
    total.backward()  # every parameter is reached (DDP needs that)
    assert all(p.grad is not None for p in m.parameters())


def test_one_domain_per_task_builds_no_iam_and_says_so(caplog):
    """Fig. 6 with 2 datasets (one detection, one re-ID source): nothing to align, and a warning."""
    import logging

    from detectron2.modeling import build_model

    from tests.modeling.conftest import tiny_cfg

    cfg = tiny_cfg()
    cfg.DATASETS.TRAIN = ("t_det_a", "t_reid_a", "t_reid_b")
    with caplog.at_level(logging.WARNING, logger="hpps_d2"):
        model = build_model(cfg)
    assert model.iam_det is None and isinstance(model.iam_reid, AlignmentModule)
    assert model.iam_reid.num_domains == 2
    warned = [r.getMessage() for r in caplog.records if "HPPS.IAM." in r.getMessage()]
    assert warned == ["HPPS.IAM.DET_ENABLED is set but DATASETS.TRAIN has 1 detection domain(s): nothing to align, no detection IAM built"]


def _plain_heads(m, f_img, f_ins):
    """Domain logits of both heads computed layer by layer, without any gradient scaling."""
    return m.img_head(m.img_body(f_img)), m.ins_head(m.ins_body(f_ins))


def _plain_inconsistency(m, f_img, f_ins, ins_to_img):
    img_logits, ins_logits = _plain_heads(m, f_img, f_ins)
    p_img = img_logits.softmax(dim=1).mean(dim=(2, 3))
    return (p_img[ins_to_img] - ins_logits.softmax(dim=1)).norm(dim=1).mean()


def _plain_domain_loss(m, f_img, img_dom, f_ins, ins_dom):
    img_logits, ins_logits = _plain_heads(m, f_img, f_ins)
    b, _, h, w = img_logits.shape
    target = img_dom.view(b, 1, 1).expand(b, h, w)
    return F.cross_entropy(img_logits, target) + F.cross_entropy(ins_logits, ins_dom)


def _direction_case(seed=0):
    torch.manual_seed(seed)
    m = AlignmentModule(4, 6, 3, grl_weight=0.1, conv_dims=(8,), fc_dims=(8,), dropout=0.0)
    with torch.no_grad():  # larger head weights than DA-Faster's init, so the probabilities differ
        for p in m.parameters():
            p.normal_(0.0, 0.5)
    f_img = torch.randn(2, 4, 3, 3, requires_grad=True)
    f_ins = torch.randn(5, 6, requires_grad=True)
    img_dom, ins_dom = torch.tensor([0, 2]), torch.tensor([0, 0, 2, 2, 2])
    ins_to_img = torch.tensor([0, 0, 1, 1, 1])
    return m, f_img, img_dom, f_ins, ins_dom, ins_to_img


def test_consistency_gradient_makes_the_features_more_consistent():
    """Eq. 7's L_d.cst as DA-Faster computes it (krumo/Domain-Adaptive-Faster-RCNN-PyTorch,
    maskrcnn_benchmark/modeling/da_heads/da_heads.py L92-95, L122-130): a second pass of both
    heads through a *positive* gradient-scale layer, so the features are trained to lower the
    inconsistency, with 0.1 times its plain gradient."""
    m, f_img, img_dom, f_ins, ins_dom, ins_to_img = _direction_case()
    out = m(f_img, img_dom, f_ins, ins_dom, ins_to_img)
    out["cst"].backward()
    before = _plain_inconsistency(m, f_img, f_ins, ins_to_img)
    g_img, g_ins = torch.autograd.grad(before, [f_img, f_ins])
    # Independent re-derivation: +0.1 x the plain gradient of the inconsistency.
    torch.testing.assert_close(f_img.grad, 0.1 * g_img, rtol=1e-5, atol=1e-7)
    torch.testing.assert_close(f_ins.grad, 0.1 * g_ins, rtol=1e-5, atol=1e-7)
    with torch.no_grad():
        after = _plain_inconsistency(m, f_img - 1.0 * f_img.grad, f_ins - 1.0 * f_ins.grad, ins_to_img)
    assert after < before, f"a feature step along -grad(L_cst) raised the inconsistency {before:.4f} -> {after:.4f}"


def test_domain_terms_are_adversarial_for_features_and_minimised_by_the_heads():
    m, f_img, img_dom, f_ins, ins_dom, ins_to_img = _direction_case(1)
    out = m(f_img, img_dom, f_ins, ins_dom, ins_to_img)
    heads = list(m.parameters())
    (out["img"] + out["ins"]).backward()
    with torch.no_grad():
        before = _plain_domain_loss(m, f_img, img_dom, f_ins, ins_dom)
        feat_step = _plain_domain_loss(m, f_img - 1.0 * f_img.grad, img_dom, f_ins - 1.0 * f_ins.grad, ins_dom)
        for p in heads:
            p -= 0.05 * p.grad
        head_step = _plain_domain_loss(m, f_img, img_dom, f_ins, ins_dom)
    assert feat_step > before, "the features must be pushed to raise the domain classifiers' loss"
    assert head_step < before, "the domain heads must be trained to lower their loss"
