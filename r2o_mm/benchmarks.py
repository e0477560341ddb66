"""Performance measurements behind ``tools/benchmark.py`` (numbers, not tests)."""
from __future__ import annotations

import os
import platform
import resource
import time

import numpy as np
import torch
import torch.nn.functional as F

from .data.transforms import LoadImageRGB, RawViewSuperpixels, TwoViews, superpixel_cache_path
from .engine.lars import LARS
from .models.r2o import R2O
from .models.regions import (kmeans, paint_cluster_labels, superpixel_descriptors, superpixel_onehot,
                             view_masks)


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        with open('/proc/cpuinfo') as handle:
            cpu = next(line.split(':', 1)[1].strip() for line in handle if line.startswith('model name'))
    except (OSError, StopIteration):
        pass
    device = torch.cuda.get_device_name(0) if torch.cuda.is_available() else 'no GPU'
    return (f'{cpu}, {os.cpu_count()} cores, {device}; torch {torch.__version__}, '
            f'{torch.get_num_threads()} threads')


def _on_accelerator(device) -> bool:
    return device.type != 'cpu'


def _sync(device):
    if _on_accelerator(device):
        torch.accelerator.synchronize(device)


def _timed(fn, device, repeats):
    """Median wall time (ms) of ``fn`` over ``repeats`` calls after one warm-up."""
    fn()
    times = []
    for _ in range(repeats):
        _sync(device)
        start = time.perf_counter()
        fn()
        _sync(device)
        times.append((time.perf_counter() - start) * 1000)
    return float(np.median(times))


def synthetic_batch(batch: int, size: int, superpixels: list[np.ndarray], device) -> dict:
    gen = torch.Generator().manual_seed(0)
    images = lambda: torch.randn(batch, 3, size, size, generator=gen).to(device)
    labels = torch.stack([torch.from_numpy(superpixels[i % len(superpixels)].astype(np.int64))
                          for i in range(batch)]).to(device)
    boxes = torch.tensor([[0.1, 0.0, 0.8, 0.7], [0.2, 0.25, 1.0, 1.0]]).expand(batch, 2, 4).to(device)
    flips = torch.tensor([True, False]).expand(batch, 2).to(device)
    return dict(view1=images(), view2=images(), raw=images(), superpixels=labels, boxes=boxes, flips=flips)


def step_time(depth: int, batch: int, size: int, superpixels, device, repeats: int = 3,
              num_clusters: int = 128) -> dict:
    """R2O vs BYOL step (forward, backward, LARS step, EMA) and R2O's extra parts, in ms."""
    results = {}
    inputs = synthetic_batch(batch, size, superpixels, device)
    for name, mask_source in (('R2O', 'kmeans'), ('BYOL', 'whole_image')):
        torch.manual_seed(0)
        model = R2O(depth=depth, mask_source=mask_source, num_clusters=num_clusters).to(device).train()
        optimizer = LARS([p for p in model.parameters() if p.requires_grad], lr=0.1)

        def step():
            loss = model(inputs, mode='loss')['loss']
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            model.update_target(0.99)
        results[name] = _timed(step, device, repeats)
        if name == 'R2O':
            results.update(_mask_parts(model, inputs, device, repeats))
        del model, optimizer
    return results


def _mask_parts(model, inputs, device, repeats) -> dict:
    """Time each part of R2O's mask prediction, with the model's own settings."""
    raw, labels = inputs['raw'], inputs['superpixels']
    size = raw.shape[-1] // model.online_encoder.c2_stride
    grid = raw.shape[-1] // model.online_encoder.c5_stride
    parts = {}
    with torch.no_grad():
        c4 = model.target_encoder.forward_c4(raw)
        parts['raw view forward to layer3'] = _timed(lambda: model.target_encoder.forward_c4(raw), device, repeats)
        onehot = superpixel_onehot(labels)
        parts['superpixel pooling'] = _timed(
            lambda: superpixel_descriptors(c4, superpixel_onehot(labels)), device, repeats)
        descriptors = superpixel_descriptors(c4, onehot).flatten(0, 1)
        generator = torch.Generator().manual_seed(0)
        parts['K-means'] = _timed(lambda: kmeans(descriptors, model.num_clusters, model.kmeans_iters,
                                                 model.kmeans_tol, generator, model.kmeans_empty_clusters),
                                  device, repeats)
        clusters = kmeans(descriptors, model.num_clusters, generator=generator)[0].view(labels.shape[0], -1)
        parts['label painting'] = _timed(
            lambda: F.one_hot(paint_cluster_labels(onehot, clusters, size, model.paint_mode),
                              model.num_clusters), device, repeats)
        masks = F.one_hot(paint_cluster_labels(onehot, clusters, size), model.num_clusters)
        masks = masks.permute(0, 3, 1, 2).float()
        parts['RoIAlign (both views)'] = _timed(
            lambda: [view_masks(masks, inputs['boxes'][:, i], inputs['flips'][:, i], grid) for i in (0, 1)],
            device, repeats)
    return parts


def kmeans_comparison(points: int = 3200, dims: int = 1024, k: int = 128, device='cpu', seed: int = 0) -> dict:
    """Ours vs scikit-learn's KMeans (k-means++, one init, 200 iterations) on the same data."""
    from sklearn.cluster import KMeans
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(200, dims))
    data = centres[rng.integers(0, 200, points)] + 0.7 * rng.normal(size=(points, dims))
    data = (data / np.linalg.norm(data, axis=1, keepdims=True)).astype(np.float32)
    tensor = torch.from_numpy(data).to(device)
    device = torch.device(device)
    generator = torch.Generator().manual_seed(seed)
    ours_ms = _timed(lambda: kmeans(tensor, k, 200, 1e-6, generator), device, 3)
    labels, found, _ = kmeans(tensor, k, 200, 1e-6, torch.Generator().manual_seed(seed))
    ours_inertia = float(((tensor - found[labels]) ** 2).sum())
    start = time.perf_counter()
    sk = KMeans(k, init='k-means++', n_init=1, max_iter=200, tol=1e-6, random_state=seed).fit(data)
    sk_ms = (time.perf_counter() - start) * 1000
    return {'ours_ms': ours_ms, 'sklearn_ms': sk_ms, 'ours_inertia': ours_inertia,
            'sklearn_inertia': float(sk.inertia_), 'ratio': ours_inertia / float(sk.inertia_)}


def data_loading(image_paths: list[str], cache_dir: str, size: int = 224) -> dict:
    """Images per second in one process: SLIC on the fly vs read from the cache,
    for the superpixel step alone and for the whole pipeline."""
    from .data.slic_cache import build_superpixel_cache
    settings = dict(size=size, n_segments=100, compactness=10, slic_on_normalized=True, ignore_n_segments=True)
    items = [(os.path.basename(p), p) for p in image_paths]
    build_superpixel_cache(items, cache_dir, settings, workers=1, log=lambda *_: None)
    loaded = [LoadImageRGB().transform({'img_path': p, 'img_key': k}) for k, p in items]
    views = TwoViews(size=size)
    rates = {}
    for name, cache in (('on the fly', None), ('from cache', cache_dir)):
        prior = RawViewSuperpixels(**settings, cache_dir=cache)
        start = time.perf_counter()
        for sample in loaded:
            prior.transform(dict(sample))
        rates[f'superpixels {name}'] = len(loaded) / (time.perf_counter() - start)
        start = time.perf_counter()
        for key, path in items:
            sample = LoadImageRGB().transform({'img_path': path, 'img_key': key})
            prior.transform(views.transform(sample))
        rates[f'full pipeline {name}'] = len(items) / (time.perf_counter() - start)
    files = [superpixel_cache_path(cache_dir, k) for k, _ in items]
    rates['cache KB per image'] = float(np.mean([os.path.getsize(f) for f in files]) / 1024)
    return rates


def peak_memory(depth: int, batch: int, size: int, superpixels, device) -> dict:
    """Peak host RSS (and device memory) over one R2O training step (K=128).
    Meant for a fresh process, so that the host peak is this step's."""
    if _on_accelerator(device):
        torch.accelerator.reset_peak_memory_stats(device)
    model = R2O(depth=depth, num_clusters=128).to(device).train()
    optimizer = LARS([p for p in model.parameters() if p.requires_grad], lr=0.1)
    loss = model(synthetic_batch(batch, size, superpixels, device), mode='loss')['loss']
    loss.backward()
    optimizer.step()
    model.update_target(0.99)
    _sync(device)
    result = {'host_peak_GB': resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 ** 2}
    if _on_accelerator(device):
        result['device_peak_GB'] = torch.accelerator.max_memory_allocated(device) / 1024 ** 3
    return result
