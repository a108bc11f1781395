import torch

from hpps_d2.modeling.grl import grad_reverse
from hpps_d2.modeling.simsiam import (
    PredictionMLP,
    match_by_identity,
    negative_cosine,
    symmetric_consistency_loss,
)


def test_gradient_reversal_identity_forward_negated_backward():
    x = torch.randn(4, 3, requires_grad=True)
    y = grad_reverse(x, 0.3)
    assert torch.equal(y, x)
    g = torch.randn(4, 3)
    y.backward(g)
    torch.testing.assert_close(x.grad, -0.3 * g)


def test_stop_gradient_blocks_the_target_branch():
    h = torch.randn(5, 8, requires_grad=True)
    z = torch.randn(5, 8, requires_grad=True)
    negative_cosine(h, z).backward()
    assert h.grad is None
    assert z.grad is not None and z.grad.abs().sum() > 0


def test_symmetric_loss_value_and_gradients():
    h1 = torch.tensor([[1.0, 0.0], [0.0, 2.0]], requires_grad=True)
    h2 = torch.tensor([[1.0, 1.0], [0.0, -1.0]], requires_grad=True)
    z1 = torch.tensor([[2.0, 2.0], [0.0, 3.0]], requires_grad=True)
    z2 = torch.tensor([[1.0, 0.0], [1.0, 0.0]], requires_grad=True)
    loss = symmetric_consistency_loss(h1, z1, h2, z2)
    # C(sg(h2), z1) = -mean(cos 0 = 1, cos 180 = -1) = 0; C(sg(h1), z2) = -mean(1, 0) = -0.5
    expected = 0.5 * 0.0 + 0.5 * -0.5
    assert abs(loss.item() - expected) < 1e-6
    loss.backward()
    assert h1.grad is None and h2.grad is None  # only through the predictions
    assert z1.grad is not None and z2.grad is not None


def test_prediction_mlp_shapes_and_match():
    mlp = PredictionMLP(16, 4)
    assert mlp(torch.randn(3, 16)).shape == (3, 16)
    i1, i2 = match_by_identity(torch.tensor([5, 7, -1, 9]), torch.tensor([9, 5, 8]))
    assert sorted(zip(i1.tolist(), i2.tolist())) == [(0, 1), (3, 0)]
