"""LARS against hand-computed steps (SPEC section 4)."""
import pytest
import torch

from r2o_mm.engine.lars import LARS


def test_lars_step_matches_hand_computation():
    weight = torch.nn.Parameter(torch.tensor([[3.0, 4.0]]))   # ||w|| = 5
    bias = torch.nn.Parameter(torch.tensor([1.0]))
    zero = torch.nn.Parameter(torch.zeros(1, 2))
    optimizer = LARS([weight, bias, zero], lr=2.0, momentum=0.9, weight_decay=0.1, eta=0.01)
    weight.grad = torch.tensor([[0.6, 0.8]])                   # ||g|| = 1
    bias.grad = torch.tensor([0.5])
    zero.grad = torch.tensor([[1.0, -1.0]])
    optimizer.step()
    # trust = 0.01 * 5 / (1 + 0.1 * 5) = 1/30; d = (g + 0.1 w) * 2 / 30 = [0.06, 0.08]
    assert torch.allclose(weight, torch.tensor([[2.94, 3.92]]))
    # bias: no weight decay, no adaptation: d = g * lr = 1.0
    assert torch.allclose(bias, torch.tensor([0.0]))
    # zero weight norm: trust 1, d = (g + 0) * 2
    assert torch.allclose(zero, torch.tensor([[-2.0, 2.0]]))

    optimizer.step()  # same gradients, momentum 0.9
    # ||w|| = 4.9; trust = 0.049 / 1.49; buffer = 0.9 * [0.06, 0.08] + d
    trust = 0.01 * 4.9 / (1 + 0.1 * 4.9)
    d = (torch.tensor([0.6, 0.8]) + 0.1 * torch.tensor([2.94, 3.92])) * 2 * trust
    expected = torch.tensor([2.94, 3.92]) - (0.9 * torch.tensor([0.06, 0.08]) + d)
    assert torch.allclose(weight[0], expected, atol=1e-6)
    assert torch.allclose(bias, torch.tensor([0.0 - (0.9 * 1.0 + 1.0)]))


def test_lars_skips_parameters_without_gradient_and_checks_arguments():
    frozen = torch.nn.Parameter(torch.ones(2, 2))
    LARS([frozen], lr=1.0).step()
    assert torch.equal(frozen, torch.ones(2, 2))
    with pytest.raises(ValueError, match='eta'):
        LARS([frozen], lr=1.0, eta=0.0)
