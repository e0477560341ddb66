"""A sampler whose every sample carries (seed, epoch, index), so that the
data pipeline's random draws are a function of them, not of a process's
running random state: the same views whatever the number of workers,
persistent or not, and wherever a run was resumed."""
from __future__ import annotations

import random

import numpy as np
import torch
from mmengine.dataset import DefaultSampler
from mmengine.registry import DATA_SAMPLERS

from ..utils.seeding import mix_seed


def sample_seed(seed: int, epoch: int, index: int) -> int:
    """A 64-bit seed for one sample of one epoch."""
    return mix_seed(seed, epoch, index)


def seed_for_sample(seed: int, epoch: int, index: int):
    """Seeds torch, numpy and random for the pipeline of one sample."""
    value = sample_seed(seed, epoch, index)
    torch.manual_seed(value)
    np.random.seed(value & 0xFFFFFFFF)
    random.seed(value)


@DATA_SAMPLERS.register_module()
class SeededSampler(DefaultSampler):
    """mmengine's DefaultSampler (same order: a permutation seeded by
    seed + epoch, split across ranks) yielding ``(seed, epoch, index)``.
    ``start`` skips that many of this rank's samples once (a resume inside an
    epoch); ``len`` stays the whole epoch's."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.start = 0

    def __iter__(self):
        indices = list(super().__iter__())
        start, self.start = self.start, 0
        return iter([(self.seed, self.epoch, index) for index in indices[start:]])
