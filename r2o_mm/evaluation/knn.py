"""k-NN classification from frozen features (Table 4).

Features: the encoder's last feature map, global-average-pooled and
L2-normalised. Each validation image takes the k most cosine-similar training
images; neighbour i votes for its class with weight exp(s_i / T) (k=20,
T=0.07 by default, the usual protocol of InstDisc/DINO). Top-1 and top-5
accuracy.
"""
from __future__ import annotations

import os

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torchvision.transforms import v2

from ..data.datasets import DatasetLayoutError, _read_lines, list_images
from .encoder import normalize_images


def labelled_folder(root: str, classes: list[str] | None = None) -> tuple[list[tuple[str, int]], list[str]]:
    """ImageNet-style ``root/<class>/<image>`` -> [(path, class index)], classes.

    ``classes`` fixes the class list and order (e.g. ImageNet-100's list);
    by default every sub-folder of ``root``, sorted.
    """
    if not os.path.isdir(root):
        raise DatasetLayoutError(f'{root} does not exist. Expected layout: {root}/<class>/<image>.JPEG '
                                 '(ImageNet val must be sorted into class folders)')
    classes = classes or sorted(d for d in os.listdir(root) if os.path.isdir(os.path.join(root, d)))
    samples = []
    for index, cls in enumerate(classes):
        folder = os.path.join(root, cls)
        if not os.path.isdir(folder):
            raise DatasetLayoutError(f'class folder {folder} does not exist')
        samples += [(os.path.join(folder, rel), index) for rel in list_images(folder)]
    return samples, classes


def read_class_list(path: str) -> list[str]:
    """One class folder name per line; a missing or unreadable file raises
    DatasetLayoutError naming it."""
    try:
        return _read_lines(path)
    except (OSError, UnicodeDecodeError) as error:
        raise DatasetLayoutError(f'class list {path}: cannot be read ({error.strerror or error}); '
                                 'expected a text file with one class folder name per line') from None


EVAL_TRANSFORM = v2.Compose([
    v2.Resize(256, interpolation=v2.InterpolationMode.BICUBIC, antialias=True),
    v2.CenterCrop(224),
])


class _Images(torch.utils.data.Dataset):
    def __init__(self, samples, transform):
        self.samples, self.transform = samples, transform

    def __len__(self):
        return len(self.samples)

    def __getitem__(self, index):
        path, label = self.samples[index]
        with Image.open(path) as image:
            tensor = torch.from_numpy(np.array(image.convert('RGB'))).permute(2, 0, 1)
        return self.transform(tensor), label


@torch.no_grad()
def pooled_features(encoder, images: torch.Tensor) -> torch.Tensor:
    """uint8-range images (B, 3, H, W) -> (B, D) L2-normalised global-average-pooled float32 features."""
    return F.normalize(encoder(normalize_images(images)).float().mean((2, 3)), dim=1)


@torch.no_grad()
def extract_features(encoder, samples, batch_size: int = 64, workers: int = 4, device='cpu',
                     transform=EVAL_TRANSFORM, progress=None) -> tuple[torch.Tensor, torch.Tensor]:
    """(N, D) L2-normalised global-average-pooled features and (N,) labels."""
    loader = torch.utils.data.DataLoader(_Images(samples, transform), batch_size=batch_size,
                                         num_workers=workers, shuffle=False)
    features, labels, done = [], [], 0
    for images, targets in loader:
        features.append(pooled_features(encoder, images.to(device)))
        labels.append(targets.to(device))
        done += len(targets)
        if progress:
            progress(done)
    return torch.cat(features), torch.cat(labels)


@torch.no_grad()
def knn_predict(train_features, train_labels, query_features, num_classes: int, k: int = 20,
                temperature: float = 0.07, chunk: int = 1024) -> torch.Tensor:
    """Class scores (Q, num_classes) by temperature-weighted k-NN voting."""
    scores = []
    k = min(k, train_features.shape[0])
    for start in range(0, query_features.shape[0], chunk):
        similarity = query_features[start:start + chunk] @ train_features.T
        top, index = similarity.topk(k, dim=1)
        weights = (top / temperature).exp()
        votes = torch.zeros(similarity.shape[0], num_classes, device=similarity.device)
        votes.scatter_add_(1, train_labels[index], weights)
        scores.append(votes)
    return torch.cat(scores)


def topk_accuracy(scores: torch.Tensor, labels: torch.Tensor, ks=(1, 5)) -> dict:
    ranked = scores.argsort(dim=1, descending=True)
    return {f'top{k}': 100.0 * (ranked[:, :k] == labels[:, None]).any(1).float().mean().item()
            for k in ks if k <= scores.shape[1]}
