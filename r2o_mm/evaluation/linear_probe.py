"""Dense linear probe on frozen features (VOC layout), with seeds.

The encoder is frozen with BatchNorm in eval mode; its last feature map is
computed once per image (resized to ``size`` x ``size``, no augmentation) and
standardised per channel with the training set's statistics (the same for
every encoder: a scale-free probe). A linear classifier per feature pixel (a
1x1 convolution) is trained with cross-entropy on its logits upsampled
bilinearly to the label map; labels 255 are ignored. mIoU over the classes
present in the validation labels or predictions. Each seed draws its own
classifier initialisation and minibatch order, so the spread over seeds
measures the probe's own noise.
"""
from __future__ import annotations

import os

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from ..data.datasets import DatasetLayoutError
from .encoder import normalize_images

VOC_LAYOUT = ('  <root>/JPEGImages/<name>.jpg\n  <root>/SegmentationClass/<name>.png   (class indices, 255 ignored)\n'
              '  <root>/ImageSets/Segmentation/{train,val}.txt')


def read_voc_split(root: str, split: str, size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Images (N, 3, size, size) uint8 (bilinear) and labels (N, size, size)
    int64 (nearest) of a VOC-layout split."""
    listing = os.path.join(root, 'ImageSets', 'Segmentation', f'{split}.txt')
    for path in (listing, os.path.join(root, 'JPEGImages'), os.path.join(root, 'SegmentationClass')):
        if not os.path.exists(path):
            raise DatasetLayoutError(f'{path} does not exist. Expected layout:\n{VOC_LAYOUT}')
    with open(listing) as handle:
        names = [line.strip() for line in handle if line.strip()]
    images, labels = [], []
    for name in names:
        with Image.open(os.path.join(root, 'JPEGImages', f'{name}.jpg')) as handle:
            images.append(np.asarray(handle.convert('RGB').resize((size, size), Image.Resampling.BILINEAR)))
        with Image.open(os.path.join(root, 'SegmentationClass', f'{name}.png')) as handle:
            labels.append(np.asarray(handle.resize((size, size), Image.Resampling.NEAREST)))
    return (torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).contiguous(),
            torch.from_numpy(np.stack(labels).astype(np.int64)))


@torch.no_grad()
def frozen_features(encoder, images: torch.Tensor, batch: int = 32) -> torch.Tensor:
    """Last feature maps (N, C, h, w) of the frozen encoder (eval mode)."""
    encoder.eval()
    device = next(encoder.parameters()).device
    return torch.cat([encoder(normalize_images(images[i:i + batch].to(device))).cpu()
                      for i in range(0, len(images), batch)])


def miou(prediction: torch.Tensor, labels: torch.Tensor, num_classes: int, ignore: int = 255) -> float:
    """Mean IoU (percent) over classes with a non-empty union."""
    valid = labels != ignore
    pred, true = prediction[valid], labels[valid]
    intersection = torch.bincount(true[pred == true], minlength=num_classes).double()
    union = (torch.bincount(pred, minlength=num_classes) + torch.bincount(true, minlength=num_classes)).double()
    union -= intersection
    present = union > 0
    return float(100 * (intersection[present] / union[present]).mean())


def train_probe(train_features, train_labels, val_features, val_labels, num_classes: int, seed: int,
                epochs: int = 60, batch: int = 16, lr: float = 0.1) -> float:
    """One seed of the probe; returns the validation mIoU (percent)."""
    mean = train_features.mean((0, 2, 3), keepdim=True)
    std = train_features.std((0, 2, 3), keepdim=True).clamp(min=1e-6)
    train_x, val_x = (train_features - mean) / std, (val_features - mean) / std
    # The probe runs where the features are. Its random numbers come from a
    # CPU generator on any device (the same probe for a seed everywhere).
    device = train_x.device
    generator = torch.Generator().manual_seed(seed)
    classifier = torch.nn.Conv2d(train_x.shape[1], num_classes, 1, device=device)
    with torch.no_grad():
        classifier.weight.copy_(torch.empty(classifier.weight.shape, device='cpu').normal_(
            0, 0.01, generator=generator))
        classifier.bias.zero_()
    optimizer = torch.optim.SGD(classifier.parameters(), lr=lr, momentum=0.9, weight_decay=1e-4)
    steps = epochs * max(len(train_x) // batch, 1)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, steps)
    size = train_labels.shape[-2:]
    for _ in range(epochs):
        order = torch.randperm(len(train_x), generator=generator, device='cpu').to(device)
        for start in range(0, max(len(order) - batch + 1, 1), batch):
            index = order[start:start + batch]
            logits = F.interpolate(classifier(train_x[index]), size=size, mode='bilinear', align_corners=False)
            loss = F.cross_entropy(logits, train_labels[index], ignore_index=255)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            schedule.step()
    with torch.no_grad():
        logits = F.interpolate(classifier(val_x), size=val_labels.shape[-2:], mode='bilinear', align_corners=False)
    return miou(logits.argmax(1), val_labels, num_classes)


def linear_probe(encoder, root: str, seeds=range(5), size: int = 128, num_classes: int = 21,
                 epochs: int = 60) -> list[dict]:
    """[{'seed', 'mIoU'}] of the dense linear probe on ``root`` (VOC layout)."""
    train_images, train_labels = read_voc_split(root, 'train', size)
    val_images, val_labels = read_voc_split(root, 'val', size)
    train_features, val_features = frozen_features(encoder, train_images), frozen_features(encoder, val_images)
    return [{'seed': seed, 'mIoU': train_probe(train_features, train_labels, val_features, val_labels,
                                                num_classes, seed, epochs)} for seed in seeds]
