"""LARS with the reference's update order (SPEC section 4)."""
from __future__ import annotations

import torch
from mmengine.registry import OPTIMIZERS


@OPTIMIZERS.register_module()
class LARS(torch.optim.Optimizer):
    """Layer-wise adaptive rate scaling, as in the released R2O code.

    For a weight w with gradient g (ndim > 1)::

        trust = eta * ||w|| / (||g|| + wd * ||w||)     (1 where a norm is 0)
        d = (g + wd * w) * lr * trust
        buffer = momentum * buffer + d;   w = w - buffer

    Biases and normalisation parameters (ndim <= 1) get neither weight decay
    nor adaptation (their local lr is 1): d = g * lr. The trust ratio stays on
    the device (no host synchronisation per parameter).
    """

    def __init__(self, params, lr: float, momentum: float = 0.9, weight_decay: float = 1e-6,
                 eta: float = 1e-3):
        if lr < 0 or momentum < 0 or weight_decay < 0 or eta <= 0:
            raise ValueError(f'LARS needs lr, momentum, weight_decay >= 0 and eta > 0; got '
                             f'lr={lr}, momentum={momentum}, weight_decay={weight_decay}, eta={eta}')
        super().__init__(params, dict(lr=lr, momentum=momentum, weight_decay=weight_decay, eta=eta))

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
                if param.ndim > 1:
                    weight_norm, grad_norm = param.norm(), grad.norm()
                    trust = torch.where((weight_norm > 0) & (grad_norm > 0),
                                        eta * weight_norm / (grad_norm + wd * weight_norm),
                                        torch.ones_like(weight_norm))
                    update = (grad + wd * param) * (lr * trust)
                else:
                    update = grad * lr
                state = self.state[param]
                if 'momentum_buffer' not in state:
                    state['momentum_buffer'] = torch.zeros_like(param)
                buffer = state['momentum_buffer']
                buffer.mul_(momentum).add_(update)
                param.sub_(buffer)
        return loss
