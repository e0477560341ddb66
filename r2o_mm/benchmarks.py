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
from .models.r2o import R2O, SUPERPIXELS_ONLY
from .models.regions import kmeans, paint_cluster_labels, resize_onehot, superpixel_descriptors, view_masks


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


def superpixel_maps_of_photos(size: int, count: int = 8) -> list[np.ndarray]:
    """SLIC maps of scikit-image's bundled photographs at ``size`` (the raw view)."""
    from skimage import data as skdata

    from .data.sample_images import PHOTOS
    prior = RawViewSuperpixels(size=size)
    return [prior.superpixels(prior.raw_view(torch.from_numpy(getattr(skdata, name)()).permute(2, 0, 1)))
            for name in PHOTOS[:count]]


def crop_boxes(batch: int, generator: torch.Generator, scale=(0.08, 1.0), ratio=(3 / 4, 4 / 3)) -> torch.Tensor:
    """(batch, 2, 4) boxes (y1, x1, y2, x2), normalised, drawn like
    RandomResizedCrop's on a square image: the views' real overlap, so the
    share of clusters absent from a view is the training one."""
    area = torch.empty(batch, 2).uniform_(*scale, generator=generator)
    log_ratio = torch.empty(batch, 2).uniform_(np.log(ratio[0]), np.log(ratio[1]), generator=generator)
    width = (area * log_ratio.exp()).sqrt().clamp(max=1.0)
    height = (area / log_ratio.exp()).sqrt().clamp(max=1.0)
    y1 = torch.rand(batch, 2, generator=generator) * (1 - height)
    x1 = torch.rand(batch, 2, generator=generator) * (1 - width)
    return torch.stack([y1, x1, y1 + height, x1 + width], dim=-1)


def synthetic_batch(batch: int, size: int, superpixels: list[np.ndarray], device) -> dict:
    gen = torch.Generator().manual_seed(0)
    images = lambda: torch.randn(batch, 3, size, size, generator=gen).to(device)
    labels = torch.stack([torch.from_numpy(superpixels[i % len(superpixels)].astype(np.int64))
                          for i in range(batch)]).to(device)
    boxes = crop_boxes(batch, gen).to(device)
    flips = (torch.rand(batch, 2, generator=gen) < 0.5).to(device)
    # num_superpixels: counted on the host, as R2ODataPreprocessor does in training.
    return dict(view1=images(), view2=images(), raw=images(), superpixels=labels, boxes=boxes, flips=flips,
                num_superpixels=max(int(s.max()) for s in superpixels[:batch]) + 1)


def _training_step(model, inputs):
    """One full step: forward, backward, LARS step, target EMA."""
    optimizer = LARS([p for p in model.parameters() if p.requires_grad], lr=0.1)

    def step():
        loss = model(inputs, mode='loss')['loss']
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        model.update_target(0.99)
    return step


def step_time(depth: int, batch: int, size: int, superpixels, device, repeats: int = 3,
              num_clusters: int = 128) -> dict:
    """R2O vs BYOL step (forward, backward, LARS step, EMA) and R2O's extra parts, in ms."""
    results = {}
    inputs = synthetic_batch(batch, size, superpixels, device)
    for name, mask_source in (('R2O', 'kmeans'), ('BYOL', 'whole_image')):
        torch.manual_seed(0)
        model = R2O(depth=depth, mask_source=mask_source, num_clusters=num_clusters).to(device).train()
        step = _training_step(model, inputs)
        results[name] = _timed(step, device, repeats)
        if name == 'R2O':
            results.update(_mask_parts(model, inputs, device, repeats))
        del model, step
    return results


def step_time_by_k(depth: int, batch: int, size: int, superpixels, device, repeats: int = 3,
                   ks=(128, 64, 16, 4)) -> dict:
    """Step times (ms) of BYOL and of R2O at each K with and without
    compaction of absent rows, the share of region rows compacted, and the
    K-means iterations, on one batch with RandomResizedCrop boxes."""
    inputs = synthetic_batch(batch, size, superpixels, device)
    results = {'R2O': {}, 'compacted': {}, 'kmeans_iters': {}}
    models = {}
    for name, options in (('BYOL', dict(mask_source='whole_image')), ('on', {}),
                          ('off', dict(compact_absent_rows=False))):
        torch.manual_seed(0)
        models[name] = R2O(depth=depth, **options).to(device).train()
    for name, model in models.items():
        step = _training_step(model, inputs)
        if name == 'BYOL':  # timed before and after the R2O runs: the machine's drift averages out
            results['BYOL'] = _timed(step, device, repeats)
            byol_step = step
            continue
        for k in ks:
            model.num_clusters = k
            results['R2O'][(k, name == 'on')] = _timed(step, device, repeats)
            if name == 'on':
                results['compacted'][k], results['kmeans_iters'][k] = _compacted_share(model, inputs)
    results['BYOL'] = (results['BYOL'] + _timed(byol_step, device, repeats)) / 2
    return results


def _compacted_share(model, inputs) -> tuple[float, int]:
    """Share of the 2B x K region rows that are copies (absent masks), and the
    Lloyd iterations of this batch's K-means."""
    grid = inputs['view1'].shape[-1] // model.online_encoder.c5_stride
    with torch.no_grad():
        with model.kmeans_state_kept():
            masks, _ = model.predict_masks(inputs['raw'], inputs['superpixels'])
        c4 = model.target_encoder.forward_c4(inputs['raw'])
        slots = int(inputs['superpixels'].max()) + 1
        descriptors = superpixel_descriptors(c4, resize_onehot(inputs['superpixels'], slots, c4.shape[-1]))
        iterations = kmeans(descriptors.flatten(0, 1), model.num_clusters, model.kmeans_iters, model.kmeans_tol,
                            torch.Generator().manual_seed(0), model.kmeans_empty_clusters).iterations
    views = torch.cat([view_masks(masks, inputs['boxes'][:, i], inputs['flips'][:, i], grid) for i in (0, 1)])
    rows = views.shape[0] * views.shape[1]
    copies = int((views == 0).all(-1).sum())
    return (max(copies - 1, 0)) / rows, iterations


def encoder_flops(depth: int, size: int) -> dict:
    """Forward FLOPs of one image through the encoder, to layer3 and to
    layer4 (torch's FLOP counter: 2 per multiply-add of convs and matmuls)."""
    from torch.utils.flop_counter import FlopCounterMode
    from .models.networks import ResNetEncoder
    encoder = ResNetEncoder(depth).eval()
    image = torch.zeros(1, 3, size, size)
    counts = {}
    for name, forward in (('c4', encoder.forward_c4), ('c5', encoder)):
        with torch.no_grad(), FlopCounterMode(display=False) as counter:
            forward(image)
        counts[name] = counter.get_total_flops()
    counts['c4_channels'], counts['c5_channels'] = encoder.c4_channels, encoder.c5_channels
    return counts


def flop_model(encoder: dict, batch: int, size: int, k: int, compacted: float = 0.0, segments: int = 100,
               kmeans_iters: int = 10, mlp=(4096, 256, 4096)) -> dict:
    """Analytic FLOPs of one training step, per part, for R2O at K and for
    BYOL (K=1, no mask prediction). Backward = 2 x forward for the online
    parts; the target runs forward only. ``compacted``: share of the 2B x K
    region rows the MLPs skip."""
    hidden, out, pred_hidden = mlp
    views, c4, c5 = 2 * batch, encoder['c4_channels'], encoder['c5_channels']
    grid = (size // 32) ** 2
    mlp_row = 2 * (c5 * hidden + hidden * out)            # projector forward, one row
    pred_row = 2 * (out * pred_hidden + pred_hidden * out)
    def heads(rows, mlp_rows):  # pooling runs on every row, the MLPs on the kept ones
        return {'region MLPs (online fwd+bwd, target fwd)': mlp_rows * (3 * (mlp_row + pred_row) + mlp_row),
                'masked pooling': 4 * rows * grid * c5 * 2}
    common = {'online encoder (fwd+bwd)': 3 * encoder['c5'] * views, 'target encoder (fwd)': encoder['c5'] * views}
    byol = {**common, **heads(views, views)}
    points = batch * segments
    trials = 2 + int(np.log(k)) if k > 1 else 1
    r2o = {**common, 'raw view forward to layer3': encoder['c4'] * batch,
           'superpixel pooling': 2 * batch * segments * (size // 16) ** 2 * c4,
           'K-means': (k - 1) * trials * points * c4 * 3 + kmeans_iters * (2 * points * k * c4 + points * c4),
           **heads(views * k, views * k * (1 - compacted))}
    return {'R2O': r2o, 'BYOL': byol, 'R2O total': sum(r2o.values()), 'BYOL total': sum(byol.values()),
            'ratio': sum(r2o.values()) / sum(byol.values())}


def _mask_parts(model, inputs, device, repeats) -> dict:
    """Time each part of R2O's mask prediction, with the model's own settings."""
    raw, labels = inputs['raw'], inputs['superpixels']
    size = raw.shape[-1] // model.online_encoder.c2_stride
    grid = raw.shape[-1] // model.online_encoder.c5_stride
    parts = {}
    with torch.no_grad():
        c4 = model.target_encoder.forward_c4(raw)
        parts['raw view forward to layer3'] = _timed(lambda: model.target_encoder.forward_c4(raw), device, repeats)
        slots = int(labels.max()) + 1
        parts['superpixel pooling'] = _timed(
            lambda: superpixel_descriptors(c4, resize_onehot(labels, slots, c4.shape[-1])), device, repeats)
        descriptors = superpixel_descriptors(c4, resize_onehot(labels, slots, c4.shape[-1])).flatten(0, 1)
        onehot = resize_onehot(labels, slots, size, 'nearest' if model.paint_mode == 'nearest' else 'bilinear')
        generator = torch.Generator().manual_seed(0)
        parts['K-means'] = _timed(lambda: kmeans(descriptors, model.num_clusters, model.kmeans_iters,
                                                 model.kmeans_tol, generator, model.kmeans_empty_clusters),
                                  device, repeats)
        clusters = kmeans(descriptors, model.num_clusters, generator=generator)[0].view(labels.shape[0], -1)
        parts['label painting'] = _timed(
            lambda: F.one_hot(paint_cluster_labels(resize_onehot(
                labels, slots, size, 'nearest' if model.paint_mode == 'nearest' else 'bilinear'), clusters, size,
                model.paint_mode), model.num_clusters), device, repeats)
        masks = F.one_hot(paint_cluster_labels(onehot, clusters, size, model.paint_mode), model.num_clusters)
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
    labels, found = kmeans(tensor, k, 200, 1e-6, torch.Generator().manual_seed(seed))[:2]
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


SYNC_SETTINGS = {
    'R2O K=128 (released quirks, compaction)': dict(num_clusters=128),
    'R2O K=4 (released quirks, compaction)': dict(num_clusters=4),
    'R2O K=128, no compaction': dict(num_clusters=128, compact_absent_rows=False),
    'R2O K=4, quirks fixed (Q4-Q6, Q8)': dict(num_clusters=4, paint_mode='nearest', pool_divisor='area',
                                              bn_includes_absent_masks=False, kmeans_empty_clusters='keep'),
    'R2O superpixels only (K > 128)': dict(num_clusters=SUPERPIXELS_ONLY),
    'BYOL (one whole-image mask)': dict(mask_source='whole_image'),
}


def host_syncs_per_step(depth: int = 18, batch: int = 4, size: int = 128, superpixels=None) -> dict:
    """{setting: (count, {site: count})} of one training step (forward,
    backward, LARS, EMA) counted by :class:`r2o_mm.utils.device_audit.HostSyncCounter`
    on the CPU: the operations that would wait for a GPU."""
    from .utils.device_audit import HostSyncCounter
    superpixels = superpixels or superpixel_maps_of_photos(size, 4)
    inputs = synthetic_batch(batch, size, superpixels, 'cpu')
    counts = {}
    for name, options in SYNC_SETTINGS.items():
        torch.manual_seed(0)
        model = R2O(depth=depth, projector_hidden=256, predictor_hidden=256, **options).train()
        step = _training_step(model, inputs)
        with HostSyncCounter() as counter:
            step()
        counts[name] = (len(counter.syncs), {f'{site}: {kind}': n for (site, kind), n in counter.by_site().items()})
    return counts


def knn_monitor_cost(depth: int, batch: int, size: int, superpixels, device, repeats: int = 3,
                     monitor_images: int = 7000, epoch_images: int = 1281167, interval: int = 10) -> dict:
    """What ``KnnMonitorHook`` costs against training, on this device: the
    time of one forward pass without gradient of the online encoder (eval
    mode, the hook's batch) and of one R2O training step at the same batch,
    and from them, for ImageNet-1k with the default sample (7,000 images)
    against one epoch (1,281,167 images), the seconds of one evaluation, of
    one epoch at this device's step rate, and the evaluation's share of an
    epoch and of the ``interval`` epochs between two evaluations. Data
    loading and decoding are not counted on either side."""
    from .models.networks import ResNetEncoder
    torch.manual_seed(0)
    encoder = ResNetEncoder(depth).to(device).eval()
    pixels = torch.randn(batch, 3, size, size, device=device)

    @torch.no_grad()
    def embed():
        encoder(pixels).mean((2, 3))
    forward_ms = _timed(embed, device, repeats)
    inputs = synthetic_batch(batch, size, superpixels, device)
    model = R2O(depth=depth, num_clusters=16).to(device).train()
    step_ms = _timed(_training_step(model, inputs), device, repeats)
    evaluation = monitor_images / batch * forward_ms / 1000
    epoch = epoch_images / batch * step_ms / 1000
    return dict(depth=depth, batch=batch, size=size, forward_ms=forward_ms, step_ms=step_ms,
                evaluation_seconds=evaluation, epoch_seconds=epoch, share_of_epoch=evaluation / epoch,
                share_of_interval=evaluation / (epoch * interval), monitor_images=monitor_images,
                epoch_images=epoch_images, interval=interval)
