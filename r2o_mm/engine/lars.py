"""LARS with the reference's update order (docs/method.md section 4, Quirk Q10)."""
from __future__ import annotations

import torch
from mmengine.optim import DefaultOptimWrapperConstructor
from mmengine.registry import OPTIM_WRAPPER_CONSTRUCTORS, OPTIM_WRAPPERS, OPTIMIZERS

LARS_EXCLUSIONS = ('released', 'ndim')

# The released code excludes parameters from weight decay and adaptation by
# name and misses the stem's BatchNorm weight (its ``encoder.1.weight``).
RELEASED_ADAPTED_NORM_WEIGHTS = ('online_encoder.bn1.weight',)


def _check_exclusion(exclusion: str):
    if exclusion not in LARS_EXCLUSIONS:
        raise ValueError(f'optim_wrapper.optimizer.exclusion must be one of {LARS_EXCLUSIONS}, '
                         f'got {exclusion!r}')


def lars_excluded(name: str, param: torch.Tensor, exclusion: str = 'released') -> bool:
    """Whether ``param`` gets neither weight decay nor the trust ratio.

    ``'ndim'``: every bias and normalisation parameter (ndim <= 1).
    ``'released'``: the same, except the stem BatchNorm weight (Quirk Q10).
    """
    _check_exclusion(exclusion)
    if exclusion == 'released' and name.endswith(RELEASED_ADAPTED_NORM_WEIGHTS):
        return False
    return param.ndim <= 1


@OPTIMIZERS.register_module()
class LARS(torch.optim.Optimizer):
    """Layer-wise adaptive rate scaling, as in the released R2O code.

    For an adapted weight w with gradient g::

        trust = eta * ||w|| / (||g|| + wd * ||w||)
        d = (g + wd * w) * lr * trust
        buffer = momentum * buffer + d;   w = w - buffer

    Excluded parameters get neither weight decay nor adaptation (local lr 1):
    d = g * lr. A param group's ``lars_exclude`` flag says which it is
    (:class:`LARSOptimWrapperConstructor` sets it by name); without the flag,
    parameters with ndim <= 1 are excluded.

    ``exclusion`` (Quirk Q10): ``'released'``: where ||g|| = 0 the formula is
    kept, trust = eta / wd (1000 with the recipe), and 1 where ||w|| = 0;
    ``'ndim'``: trust 1 where either norm is 0. The trust ratio stays on the
    device (no host synchronisation per parameter).
    """

    def __init__(self, params, lr: float, momentum: float = 0.9, weight_decay: float = 1e-6,
                 eta: float = 1e-3, exclusion: str = 'released'):
        if lr < 0 or momentum < 0 or weight_decay < 0 or eta <= 0:
            raise ValueError(f'LARS needs lr, momentum, weight_decay >= 0 and eta > 0; got '
                             f'lr={lr}, momentum={momentum}, weight_decay={weight_decay}, eta={eta}')
        _check_exclusion(exclusion)
        super().__init__(params, dict(lr=lr, momentum=momentum, weight_decay=weight_decay, eta=eta,
                                      exclusion=exclusion))

    def _trust_ratio(self, weight_norm, grad_norm, wd, eta, exclusion):
        denominator = grad_norm + wd * weight_norm
        ratio = eta * weight_norm / torch.where(denominator > 0, denominator, torch.ones_like(denominator))
        if exclusion == 'released':
            valid = (weight_norm > 0) & (denominator > 0)
        else:
            valid = (weight_norm > 0) & (grad_norm > 0)
        return torch.where(valid, ratio, torch.ones_like(ratio))

    @torch.no_grad()
    def step(self, closure=None):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            lr, momentum, wd, eta = group['lr'], group['momentum'], group['weight_decay'], group['eta']
            for param in group['params']:
                if param.grad is None:
                    continue
                grad = param.grad
                excluded = group.get('lars_exclude')
                if excluded is None:
                    excluded = param.ndim <= 1
                if excluded:
                    update = grad * lr
                else:
                    trust = self._trust_ratio(param.norm(), grad.norm(), wd, eta, group['exclusion'])
                    update = (grad + wd * param) * (lr * trust)
                state = self.state[param]
                if 'momentum_buffer' not in state:
                    state['momentum_buffer'] = torch.zeros_like(param)
                buffer = state['momentum_buffer']
                buffer.mul_(momentum).add_(update)
                param.sub_(buffer)
        return loss


@OPTIM_WRAPPER_CONSTRUCTORS.register_module()
class LARSOptimWrapperConstructor(DefaultOptimWrapperConstructor):
    """Two param groups for LARS, adapted and excluded, chosen by parameter
    name with the optimiser's ``exclusion`` rule (:func:`lars_excluded`).
    Parameters that need no gradient (the target network) are left out."""

    def __call__(self, model):
        module = model.module if hasattr(model, 'module') else model
        exclusion = self.optimizer_cfg.get('exclusion', 'released')
        groups = {False: [], True: []}
        for name, param in module.named_parameters():
            if param.requires_grad:
                groups[lars_excluded(name, param, exclusion)].append(param)
        optimizer_cfg = self.optimizer_cfg.copy()
        optimizer_cfg['params'] = [dict(params=groups[False], lars_exclude=False),
                                   dict(params=groups[True], lars_exclude=True)]
        optimizer = OPTIMIZERS.build(optimizer_cfg)
        wrapper_cfg = self.optim_wrapper_cfg.copy()
        wrapper_cfg.setdefault('type', 'OptimWrapper')
        return OPTIM_WRAPPERS.build(wrapper_cfg, default_args=dict(optimizer=optimizer))
