"""LARS against hand-computed steps (docs/method.md section 4)."""
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


def test_zero_gradient_trust_ratio_released_and_ndim():
    """Q10: with ||g|| = 0 the released trust ratio is eta / wd, not 1.
    w = [3, 4], wd 0.1, eta 0.01, lr 2: released trust = 0.01 * 5 / (0 + 0.5)
    = 0.1, d = 0.1 * w * 2 * 0.1 = [0.06, 0.08]; ndim rule: trust 1,
    d = 0.1 * w * 2 = [0.6, 0.8]."""
    for exclusion, expected in (('released', [[2.94, 3.92]]), ('ndim', [[2.4, 3.2]])):
        weight = torch.nn.Parameter(torch.tensor([[3.0, 4.0]]))
        optimizer = LARS([weight], lr=2.0, momentum=0.9, weight_decay=0.1, eta=0.01, exclusion=exclusion)
        weight.grad = torch.zeros(1, 2)
        optimizer.step()
        assert torch.allclose(weight, torch.tensor(expected)), exclusion
    with pytest.raises(ValueError, match='exclusion'):
        LARS([weight], lr=1.0, exclusion='names')


def tiny_r2o():
    from r2o_mm.models.r2o import R2O
    return R2O(depth=18, projector_hidden=16, projection_dim=8, predictor_hidden=16)


@pytest.mark.parametrize('exclusion', ['released', 'ndim'])
def test_constructor_groups_by_name_and_steps_the_stem_bn_weight(exclusion):
    """The released name rule adapts and decays the stem BN weight; the ndim
    rule excludes it. Stem BN weight = ones(64) (norm 8), gradient 0.5
    everywhere (norm 4), wd 0.1, eta 0.01, lr 2: released trust = 0.08 / 4.8,
    d = (0.5 + 0.1) * 2 * 0.08 / 4.8 = 0.02 -> 0.98; ndim: d = 0.5 * 2 -> 0."""
    from mmengine.optim import build_optim_wrapper
    model = tiny_r2o()
    wrapper = build_optim_wrapper(model, dict(
        type='OptimWrapper', constructor='LARSOptimWrapperConstructor',
        optimizer=dict(type='LARS', lr=2.0, momentum=0.9, weight_decay=0.1, eta=0.01, exclusion=exclusion)))
    adapted, excluded = wrapper.optimizer.param_groups
    assert adapted['lars_exclude'] is False and excluded['lars_exclude'] is True
    names = {id(p): n for n, p in model.named_parameters()}
    adapted_names = {names[id(p)] for p in adapted['params']}
    excluded_names = {names[id(p)] for p in excluded['params']}
    assert ('online_encoder.bn1.weight' in adapted_names) == (exclusion == 'released')
    assert {'online_encoder.bn1.bias', 'online_encoder.layer1.0.bn1.weight',
            'online_encoder.layer2.0.downsample.1.weight', 'online_projector.net.1.weight'} <= excluded_names
    assert 'online_encoder.conv1.weight' in adapted_names
    assert not any(name.startswith('target_') for name in adapted_names | excluded_names)
    assert len(adapted_names) + len(excluded_names) == sum(p.requires_grad for p in model.parameters())

    stem = model.online_encoder.bn1.weight
    for param in model.parameters():
        param.grad = None
    stem.grad = torch.full_like(stem, 0.5)
    wrapper.optimizer.step()
    assert torch.allclose(stem, torch.full_like(stem, 0.98 if exclusion == 'released' else 0.0), atol=1e-6)
