"""Frozen encoders for the evaluations without fine-tuning, and shared helpers."""
from __future__ import annotations

import time

import torch

from ..models.data_preprocessor import IMAGENET_MEAN, IMAGENET_STD
from ..models.networks import ResNetEncoder
from ..transfer.export import extract_backbone
from ..utils.checkpoint import read_checkpoint

_DEPTHS = {(2, 2, 2, 2, False): 18, (3, 4, 6, 3, False): 34, (3, 4, 6, 3, True): 50,
           (3, 4, 23, 3, True): 101}


def encoder_from_state(state: dict, name: str = 'checkpoint') -> ResNetEncoder:
    """torchvision-layout ResNet weights -> a frozen encoder in eval mode
    (depth inferred from the keys, loaded strictly)."""
    blocks = tuple(len({k.split('.')[1] for k in state if k.startswith(f'layer{i}.')}) for i in range(1, 5))
    bottleneck = any('.conv3.' in k for k in state)
    if (*blocks, bottleneck) not in _DEPTHS:
        raise ValueError(f'{name}: not a ResNet-18/34/50/101 (blocks {blocks})')
    encoder = ResNetEncoder(_DEPTHS[(*blocks, bottleneck)])
    encoder.load_state_dict(state, strict=True)
    return encoder.eval().requires_grad_(False)


def load_encoder(checkpoint: str, device: str | torch.device = 'cpu') -> ResNetEncoder:
    """Any checkpoint :func:`extract_backbone` understands -> a frozen encoder
    in eval mode (its online encoder for a pretraining checkpoint)."""
    state = extract_backbone(read_checkpoint(checkpoint))
    return encoder_from_state(state, checkpoint).to(device)


class Progress:
    """Prints ``done/total``, rate and ETA about every ``every`` seconds."""

    def __init__(self, total: int, label: str, every: float = 10.0, log=print):
        self.total, self.label, self.every, self.log = total, label, every, log
        self.start = self.last = time.time()

    def update(self, done: int):
        now = time.time()
        if now - self.last < self.every and done < self.total:
            return
        self.last = now
        elapsed = now - self.start
        eta = elapsed / max(done, 1) * (self.total - done)
        self.log(f'{self.label}: {done}/{self.total} ({100 * done / max(self.total, 1):.0f}%), '
                 f'{done / max(elapsed, 1e-9):.1f}/s, elapsed {elapsed:.0f}s, ETA {eta:.0f}s')


def normalize_images(images: torch.Tensor) -> torch.Tensor:
    """uint8-range images (..., 3, H, W) -> ImageNet-normalised float, with the
    statistics the pretraining data preprocessor uses."""
    mean = torch.tensor(IMAGENET_MEAN, device=images.device).view(3, 1, 1)
    std = torch.tensor(IMAGENET_STD, device=images.device).view(3, 1, 1)
    return (images.float() - mean) / std
