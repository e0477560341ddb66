"""CUB-200-2011 unsupervised foreground/background segmentation (Table 3).

No training. Per test image: resize to ``size`` x ``size``; SLIC superpixels
(as in pretraining); superpixel descriptors from the frozen encoder's layer3;
K-means with K clusters (paper: K=5) over that image's superpixels; every
pixel takes its superpixel's cluster.

Clusters -> foreground/background (the protocol): K clusters over-segment a
2-class problem, so a one-to-one (Hungarian) matching would leave K-2 clusters
unmatched. As is usual when evaluating over-clustering, each cluster is
matched many-to-one: per image, a cluster is foreground when most of its
pixels are foreground in the ground truth (a majority vote; this uses the
ground truth only to name clusters, never to form them). Intersections and
unions are accumulated over the test split, and the reported mIoU is the mean
of the foreground and background IoU. Ground-truth masks (soft, 0-255) are
foreground at >= 128 and resized with nearest neighbour.
"""
from __future__ import annotations

import os
from typing import Callable

import numpy as np
import torch
from PIL import Image

from ..data.datasets import DatasetLayoutError
from ..data.transforms import RawViewSuperpixels
from ..models.regions import kmeans, superpixel_descriptors, superpixel_onehot
from .encoder import normalize_images
from .mask_quality import foreground_miou, iou_counts, majority_foreground  # noqa: F401  (re-exported)

CUB_LAYOUT = ('  <root>/images.txt                 "<id> <class folder>/<image>.jpg"\n'
              '  <root>/train_test_split.txt       "<id> <1 train | 0 test>"\n'
              '  <root>/images/<class folder>/<image>.jpg\n'
              '  <root>/segmentations/<class folder>/<image>.png   (the separate segmentation archive)')


def read_cub_test_split(root: str) -> list[tuple[str, str, str]]:
    """[(image id, image path, mask path)] of the test split."""
    for name in ('images.txt', 'train_test_split.txt', 'images', 'segmentations'):
        if not os.path.exists(os.path.join(root, name)):
            raise DatasetLayoutError(f'{os.path.join(root, name)} does not exist. Expected layout:\n'
                                     f'{CUB_LAYOUT}')
    with open(os.path.join(root, 'images.txt')) as handle:
        paths = dict(line.split() for line in handle if line.strip())
    with open(os.path.join(root, 'train_test_split.txt')) as handle:
        is_train = dict(line.split() for line in handle if line.strip())
    items = []
    for image_id, rel in paths.items():
        if is_train.get(image_id) == '0':
            mask = os.path.join(root, 'segmentations', os.path.splitext(rel)[0] + '.png')
            items.append((image_id, os.path.join(root, 'images', rel), mask))
    missing = [m for _, _, m in items if not os.path.isfile(m)]
    if missing:
        raise DatasetLayoutError(f'{len(missing)} segmentation masks are missing, e.g. {missing[0]}. '
                                 f'Expected layout:\n{CUB_LAYOUT}')
    return items


def cluster_image(c4_features: Callable[[torch.Tensor], torch.Tensor], image: torch.Tensor,
                  superpixels: np.ndarray, k: int, generator: torch.Generator) -> np.ndarray:
    """Cluster labels (H, W) of one image.

    Args:
        c4_features: normalised image (1, 3, H, W) -> layer3 features (1, D, h, w).
        image: normalised (3, H, W) on the encoder's device.
        superpixels: (H, W) SLIC labels from 0.
    """
    labels = torch.from_numpy(superpixels.astype(np.int64)).to(image.device)[None]
    onehot = superpixel_onehot(labels)
    descriptors = superpixel_descriptors(c4_features(image[None]), onehot)[0]
    present = onehot.flatten(2).sum(-1)[0] > 0
    cluster = kmeans(descriptors[present], min(k, int(present.sum())), generator=generator).labels
    per_segment = torch.zeros(onehot.shape[1], dtype=torch.long, device=image.device)
    per_segment[present] = cluster
    return per_segment[labels[0]].cpu().numpy()


def evaluate_cub(c4_features, items, size: int = 224, k: int = 5, n_segments: int = 100,
                 device='cpu', seed: int = 0, progress=None, keep: int = 0):
    """Runs the protocol over ``items``; returns (metrics, per-image rows, examples)."""
    prior = RawViewSuperpixels(size=size, n_segments=n_segments, slic_on_normalized=True,
                               ignore_n_segments=False)
    generator = torch.Generator().manual_seed(seed)
    totals, rows, examples = np.zeros(4, np.int64), [], []
    for index, (image_id, image_path, mask_path) in enumerate(items):
        with Image.open(image_path) as handle:
            raw = prior.raw_view(torch.from_numpy(np.array(handle.convert('RGB'))).permute(2, 0, 1))
        with Image.open(mask_path) as handle:
            truth = np.asarray(handle.convert('L').resize((size, size), Image.Resampling.NEAREST)) >= 128
        superpixels = prior.superpixels(raw)
        with torch.no_grad():
            clusters = cluster_image(c4_features, normalize_images(raw.to(device)), superpixels, k,
                                     generator)
        prediction = majority_foreground(clusters, truth)
        counts = iou_counts(prediction, truth)
        totals += counts
        rows.append({'image_id': image_id, 'image': image_path,
                     'fg_iou': counts[0] / max(counts[1], 1), 'bg_iou': counts[2] / max(counts[3], 1)})
        if len(examples) < keep:
            examples.append((raw.permute(1, 2, 0).numpy(), truth, clusters, prediction))
        if progress:
            progress(index + 1)
    return foreground_miou(totals), rows, examples


def save_example_grid(examples, path: str):
    """image | ground truth | clusters | foreground prediction, one row each."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(len(examples), 4, figsize=(8, 2 * len(examples)), squeeze=False)
    for row, (image, truth, clusters, prediction) in zip(axes, examples):
        for axis, picture, title in zip(row, (image, truth, clusters, prediction),
                                        ('image', 'ground truth', 'clusters', 'foreground')):
            axis.imshow(picture, cmap=None if picture.ndim == 3 else 'tab10', interpolation='nearest')
            axis.set_title(title, fontsize=8)
            axis.axis('off')
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
