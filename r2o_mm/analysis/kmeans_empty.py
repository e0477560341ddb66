"""How often R2O's K-means hits an empty cluster (Quirk Q8).

With the released K-means, a cluster that loses all its points during the
Lloyd iterations makes every point of the per-GPU batch fall into one cluster
for that step. This measures how often that trigger fires at the paper's
mask-prediction settings (the K-means in ``'keep'`` mode records the first
empty cluster, which happens at the same iteration as in the released mode:
both run identically until then).
"""
from __future__ import annotations

import os

import torch

from ..data.sample_images import write_photo_folder
from ..data.synthetic_scenes import write_scene_images
from ..evaluation.encoder import encoder_from_state, load_encoder, normalize_images
from ..models.networks import ResNetEncoder
from ..models.regions import kmeans, resize_onehot, superpixel_descriptors
from ..utils.checkpoint import read_checkpoint


def write_measurement_images(root: str, photos: int = 32, scenes: int = 96) -> str:
    """``root/train/photos`` (crops of scikit-image's photographs, long side
    320) and ``root/train/scenes`` (generated scenes, 240x320): an
    ImageFolderUnlabeled layout. Existing files are kept."""
    write_photo_folder(os.path.join(root, 'train', 'photos'), num_images=photos, max_side=320)
    folder = os.path.join(root, 'train', 'scenes')
    if len(os.listdir(folder) if os.path.isdir(folder) else []) < scenes:
        write_scene_images(folder, scenes, size=(240, 320), seed=1)
    return root


def load_mask_encoder(checkpoint: str | None, depth: int = 50, seed: int = 0) -> ResNetEncoder:
    """The encoder that predicts masks: a training checkpoint's *target*
    encoder, any other checkpoint's encoder, or a random init (``None``)."""
    if checkpoint is None:
        torch.manual_seed(seed)
        return ResNetEncoder(depth).eval().requires_grad_(False)
    state = read_checkpoint(checkpoint)
    state = state.get('state_dict', state) if isinstance(state, dict) else state
    target = {k[len('target_encoder.'):]: v for k, v in state.items() if k.startswith('target_encoder.')}
    return encoder_from_state(target, checkpoint) if target else load_encoder(checkpoint)


@torch.no_grad()
def empty_cluster_rates(encoder, raws, labels, ks=(128, 64, 16, 4), batch: int = 32, seeds: int = 4,
                        device='cpu') -> list[dict]:
    """For each K: K-means calls over batches of ``batch`` images (all their
    superpixels together, as on one GPU) x ``seeds`` seedings, and how many
    hit an empty cluster. Returns one row per K."""
    encoder = encoder.to(device)
    descriptors = []
    for start in range(0, len(raws) - batch + 1, batch):
        superpixels = labels[start:start + batch].to(device)
        c4 = encoder.forward_c4(normalize_images(raws[start:start + batch].to(device)))
        maps = resize_onehot(superpixels, int(superpixels.max()) + 1, c4.shape[-1])
        descriptors.append(superpixel_descriptors(c4, maps).flatten(0, 1))
    rows = []
    for k in ks:
        hits = calls = 0
        for index, points in enumerate(descriptors):
            for seed in range(seeds):
                generator = torch.Generator().manual_seed(1000 * index + seed)
                hits += int(kmeans(points, k, generator=generator, empty_clusters='keep').hit_empty)
                calls += 1
        rows.append({'K': k, 'calls': calls, 'hit_empty': hits, 'rate': hits / max(calls, 1)})
    return rows
