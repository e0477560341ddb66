"""``--amp``: the same mixed precision on every device."""
from __future__ import annotations

import contextlib

import torch
from mmengine.optim import OptimWrapper
from mmengine.registry import OPTIM_WRAPPERS


@OPTIM_WRAPPERS.register_module()
class BF16AutocastOptimWrapper(OptimWrapper):
    """mmengine's OptimWrapper with the forward pass (data preprocessing,
    mask prediction, both views, loss) under ``torch.autocast`` in bfloat16
    on the model's device, CPU or GPU. bfloat16 has float32's exponent range,
    so no loss scaling is needed (mmengine's AmpOptimWrapper refuses a CPU).
    R2O's region arithmetic stays in float32 (``R2O.full_precision``); the
    backward pass and the optimiser step run in float32 on float32 weights."""

    @contextlib.contextmanager
    def optim_context(self, model):
        device = next(model.parameters()).device.type
        with super().optim_context(model), torch.autocast(device_type=device, dtype=torch.bfloat16):
            yield
