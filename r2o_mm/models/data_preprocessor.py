"""Moves a collated R2O batch to the device, stacks it and normalises images."""
from __future__ import annotations

from typing import Sequence

import torch
from mmengine.model import BaseDataPreprocessor
from mmengine.registry import MODELS

# ImageNet statistics on the 0..255 scale (docs/method.md section 3).
IMAGENET_MEAN = (123.675, 116.28, 103.53)
IMAGENET_STD = (58.395, 57.12, 57.375)


@MODELS.register_module()
class R2ODataPreprocessor(BaseDataPreprocessor):
    """Turns ``{'inputs': {key: [per-image tensors]}}`` into batched tensors.

    Image keys (``view1``, ``view2``, ``raw``: uint8 (3, H, W)) become
    normalised float (B, 3, H, W); ``superpixels`` (H, W) int becomes (B, H, W)
    int64 (and ``num_superpixels``, its largest label + 1, is counted on the
    host before the copy); ``boxes`` (2, 4) and ``flips`` (2,) become (B, 2, 4) float and
    (B, 2) bool. Normalising here, on the device, keeps the workers' output
    compact (uint8).
    """

    image_keys = ('view1', 'view2', 'raw')

    def __init__(self, mean: Sequence[float] = IMAGENET_MEAN, std: Sequence[float] = IMAGENET_STD,
                 non_blocking: bool = False):
        super().__init__(non_blocking=non_blocking)
        self.register_buffer('mean', torch.tensor(mean).view(1, 3, 1, 1), persistent=False)
        self.register_buffer('std', torch.tensor(std).view(1, 3, 1, 1), persistent=False)

    def forward(self, data: dict, training: bool = False) -> dict:
        inputs = {}
        for key, value in data['inputs'].items():
            batch = torch.stack(list(value)) if not isinstance(value, torch.Tensor) else value
            if key == 'superpixels' and batch.device.type == 'cpu':
                # Counted here, before the copy: on the device it is a host sync.
                inputs['num_superpixels'] = int(batch.max()) + 1
            batch = self.cast_data(batch)
            if key in self.image_keys:
                batch = (batch.float() - self.mean) / self.std
            elif key == 'superpixels':
                batch = batch.long()
            elif key == 'boxes':
                batch = batch.float()
            elif key == 'flips':
                batch = batch.bool()
            inputs[key] = batch
        return {'inputs': inputs, 'data_samples': data.get('data_samples')}
