import math

import pytest
import torch
import torch.nn.functional as F

from hpps_d2.modeling.oim import OIMLoss


def _features(n, d=8, seed=0):
    g = torch.Generator().manual_seed(seed)
    return F.normalize(torch.randn(n, d, generator=g), dim=1)


def test_loss_is_cross_entropy_over_lut_and_queue():
    oim = OIMLoss(8, 4, queue_size=2, scale=10.0)
    oim.lut.copy_(_features(4, seed=1))
    oim.cq.copy_(_features(2, seed=2))
    x = _features(3, seed=3)
    y = torch.tensor([2, -1, 0])
    loss = oim(x, y)
    logits = 10.0 * x[[0, 2]] @ torch.cat([oim.lut, oim.cq]).t()
    assert abs(loss.item() - F.cross_entropy(logits, torch.tensor([2, 0])).item()) < 1e-6
    # all-unlabeled batch: zero loss that still has a graph
    x.requires_grad_(True)
    z = oim(x, torch.tensor([-1, -1, -1]))
    assert z.item() == 0.0 and z.requires_grad


def test_fresh_table_gives_log_L():
    oim = OIMLoss(8, 50, queue_size=0)
    assert abs(oim(_features(4), torch.tensor([1, 2, 3, 4])).item() - math.log(50)) < 1e-5


def test_update_rule_sequential_and_queue_fifo():
    oim = OIMLoss(8, 5, queue_size=3, momentum=0.5)
    oim.lut.copy_(_features(5, seed=4))
    oim.cq_head.fill_(2)
    ref_lut, ref_cq, head = oim.lut.clone(), oim.cq.clone(), 2
    y = torch.tensor([1, 3, 1, -1, 1, -1, 3, -1, -1])
    x = _features(len(y), seed=5).requires_grad_(True)
    oim.train()
    oim(x, y).backward()
    # tables must not change before the update is applied (the graph still needs them)
    torch.testing.assert_close(oim.lut, ref_lut)
    oim.apply_pending_updates()
    for xi, yi in zip(x.detach(), y):
        if yi >= 0:
            row = 0.5 * ref_lut[yi] + 0.5 * xi
            ref_lut[yi] = row / row.norm()
        else:
            ref_cq[head] = xi
            head = (head + 1) % 3
    torch.testing.assert_close(oim.lut, ref_lut)
    torch.testing.assert_close(oim.cq, ref_cq)
    assert int(oim.cq_head) == head == 0
    assert torch.allclose(oim.lut.norm(dim=1), torch.ones(5))


def test_eval_mode_does_not_update():
    oim = OIMLoss(8, 3, queue_size=2)
    oim.eval()
    oim(_features(2), torch.tensor([0, -1]))
    oim.apply_pending_updates()
    assert oim.lut.abs().sum() == 0 and oim.cq.abs().sum() == 0


def test_bad_labels_are_reported():
    oim = OIMLoss(8, 3)
    with pytest.raises(ValueError, match=r"OIM labels must be in \[0, 3\) or -1; got \[3, -5\]"):
        oim(_features(3), torch.tensor([0, 3, -5]))


def test_non_finite_rows_never_enter_the_tables():
    oim = OIMLoss(8, 4, queue_size=3, momentum=0.5)
    oim.lut.copy_(_features(4, seed=6))
    ref_lut, ref_cq = oim.lut.clone(), oim.cq.clone()
    x = _features(6, seed=7)
    x[1, 3] = float("nan")  # labeled, identity 2
    x[3, 0] = float("inf")  # unlabeled
    y = torch.tensor([1, 2, -1, -1, 1, 3])
    oim.train()
    oim(x, y)
    dropped = oim.apply_pending_updates()
    assert torch.isfinite(oim.lut).all() and torch.isfinite(oim.cq).all(), "a non-finite feature entered the tables"
    assert dropped == 2 and oim.num_dropped_nonfinite == 2
    # the finite rows, by the OIM rule lut[t] <- normalize(m * lut[t] + (1 - m) * x), in order
    for i in (0, 4, 5):
        row = 0.5 * ref_lut[y[i]] + 0.5 * x[i]
        ref_lut[y[i]] = row / row.norm()
    ref_cq[0] = x[2]
    torch.testing.assert_close(oim.lut, ref_lut)
    torch.testing.assert_close(oim.cq, ref_cq)
    assert int(oim.cq_head) == 1  # one finite unlabeled row entered the queue


def test_discarded_updates_leave_the_tables():
    oim = OIMLoss(8, 3, queue_size=2)
    oim.train()
    oim(_features(2), torch.tensor([0, -1]))
    assert oim.discard_pending_updates() == 2
    assert oim.apply_pending_updates() == 0
    assert oim.lut.abs().sum() == 0 and oim.cq.abs().sum() == 0


def test_forward_makes_no_collective_call(monkeypatch):
    """All ranks reach the update after backward; a forward (which a rank may skip) must not sync."""
    import torch.distributed as dist

    import hpps_d2.modeling.oim as oim_module

    calls = []

    def record(name):
        def fn(*args, **kwargs):
            calls.append(name)
            if name == "all_gather_variable":
                return [args[0]]
            raise AssertionError(f"collective {name} called")

        return fn

    monkeypatch.setattr(oim_module, "_dist_ready", lambda: True)  # as if under DDP
    monkeypatch.setattr(oim_module, "all_gather_variable", record("all_gather_variable"))
    for name in ("all_gather", "all_reduce", "broadcast", "barrier", "all_gather_object", "get_world_size"):
        monkeypatch.setattr(dist, name, record(name))
    oim = OIMLoss(8, 5, queue_size=2)
    oim.train()
    x, y = _features(3), torch.tensor([1, -1, 4])
    oim(x, y)
    oim(x, y)  # a second forward with updates still pending
    assert calls == [], f"collective calls during forward: {calls}"
    oim.apply_pending_updates()
    assert calls == ["all_gather_variable", "all_gather_variable"]  # features, labels
