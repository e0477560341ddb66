"""Signals that a pretraining run is on track, long before its last epoch.

``MaskQualityHook``: every few epochs, the mean best overlap (mBO) of the
masks the model predicts on a fixed labelled set, at the current K and at
fixed reference Ks, with the paper's Fig. 3 picture of the same images.
``KnnMonitorHook``: every few epochs, k-NN top-1 of the online encoder's
frozen features on a fixed labelled sample (``tools/eval_knn.py``'s
definition), each rank embedding its share.
``StopOnNonFiniteLossHook``: stops a run whose loss becomes NaN or infinite,
naming the iteration and the last logged values.
"""
from __future__ import annotations

import json
import math
import os
import time

import numpy as np
import torch
from mmengine.dist import all_gather_object, get_rank, get_world_size, is_main_process
from mmengine.hooks import Hook
from mmengine.registry import HOOKS

from ..data.datasets import DatasetLayoutError
from .hooks import _unwrap


def _record_epoch(path: str, record: dict):
    """Adds ``record`` to the JSON list at ``path``, replacing an earlier record of its epoch (a resumed run
    evaluates an epoch again)."""
    history = json.load(open(path)) if os.path.isfile(path) else []
    history = [h for h in history if h['epoch'] != record['epoch']] + [record]
    with open(path, 'w') as handle:
        json.dump(history, handle, indent=1)


@HOOKS.register_module()
class MaskQualityHook(Hook):
    """mBO of the model's own masks on a fixed labelled set, over training.

    Runs on the main process before training (epoch 0) and every
    ``interval`` epochs; logs one line per evaluation, appends it (mBO at
    each K, in increasing K, and the share of zero superpixel descriptors,
    :func:`~r2o_mm.evaluation.mask_prediction.zero_descriptor_share`) to
    ``<work_dir>/mask_quality.json`` and saves ``<work_dir>/mask_quality/
    epoch_<e>.png`` (image, superpixels, masks at each K). With no
    annotation file it logs once how to turn it on and does nothing else.

    Args:
        ann_file, image_dir: COCO-format instance annotations and images (for
            real runs a few hundred images of COCO val2017).
        interval: epochs between evaluations.
        reference_ks: K values evaluated every time besides the current K.
        max_images, size, batch: images used, raw-view size, images per
            K-means call (as one GPU's batch).
        num_pictures: images drawn in the picture.
    """

    priority = 'LOW'

    def __init__(self, ann_file: str | None, image_dir: str | None, interval: int = 10,
                 reference_ks=(128, 16, 4), max_images: int = 300, size: int = 224, batch: int = 32,
                 num_pictures: int = 4):
        self.ann_file, self.image_dir, self.interval = ann_file, image_dir, interval
        self.reference_ks, self.max_images, self.size = tuple(reference_ks), max_images, size
        self.batch, self.num_pictures = batch, num_pictures
        self.items = self.views = self.zero_share = None

    def before_train(self, runner):
        if not is_main_process():
            return
        if not self.ann_file or not os.path.isfile(self.ann_file):
            runner.logger.info(
                f'MaskQualityHook is off: annotation file {self.ann_file} not found. To follow mask quality '
                'during training, put COCO-format instance annotations there (e.g. a few hundred images of '
                'COCO val2017: data/coco/annotations/instances_val2017.json with data/coco/val2017) or set '
                'the hook\'s ann_file and image_dir.')
            return
        from ..evaluation.mask_prediction import load_coco_objects, raw_views, zero_descriptor_share
        try:
            self.items = load_coco_objects(self.ann_file, self.image_dir, self.max_images)
        except DatasetLayoutError as error:
            runner.logger.warning(f'MaskQualityHook is off: {error}')
            return
        self.views = raw_views([path for path, _ in self.items], self.size)
        grid = self.size // _unwrap(runner.model).online_encoder.c4_stride
        self.zero_share = zero_descriptor_share(self.views[1], grid)
        runner.logger.info(f'MaskQualityHook: {len(self.items)} images of {self.ann_file}, every '
                           f'{self.interval} epochs, K = current and {self.reference_ks}; '
                           f'{100 * self.zero_share:.0f}% of their superpixels miss every sample point of the '
                           f'{grid}x{grid} layer3 grid (zero descriptors'
                           + (', clustered with the empty slots: at K=2 the masks split them from the rest '
                              'whatever the encoder, so K=2 measures no learning)' if self.zero_share else ')'))
        if runner.epoch == 0:
            self._evaluate(runner, epoch=0)

    def after_train_epoch(self, runner):
        if self.items and (self.every_n_epochs(runner, self.interval) or self.is_last_train_epoch(runner)):
            self._evaluate(runner, epoch=runner.epoch + 1)

    def _evaluate(self, runner, epoch: int):
        from ..evaluation.mask_prediction import save_mask_grid, score_masks
        model = _unwrap(runner.model)
        ks = sorted({model.num_clusters, *self.reference_ks})
        scores, labels = score_masks(model, self.items, ks, self.size, self.batch, self.views)
        record = {'epoch': epoch, 'K': model.num_clusters, 'mBO': {str(k): v for k, v in scores.items()},
                  'zero_descriptors': self.zero_share}
        runner.logger.info(f'mask quality, epoch {epoch}: mBO ' + ', '.join(
            f'{v:.1f} at K={k}' + (' (current)' if k == model.num_clusters else '') for k, v in scores.items()))
        path = os.path.join(runner.work_dir, 'mask_quality.json')
        _record_epoch(path, record)
        runner.visualizer.add_scalars({f'mBO_K{k}': v for k, v in scores.items()}, step=epoch)
        shown = min(self.num_pictures, len(self.items))
        os.makedirs(os.path.join(runner.work_dir, 'mask_quality'), exist_ok=True)
        picture = os.path.join(runner.work_dir, 'mask_quality', f'epoch_{epoch}.png')
        save_mask_grid(self.views[0][:shown], self.views[1][:shown], {k: v[:shown] for k, v in labels.items()},
                       picture, f'epoch {epoch}, current K={model.num_clusters}')
        import matplotlib.image
        runner.visualizer.add_image('mask_quality', (matplotlib.image.imread(picture)[..., :3] * 255)
                                    .astype('uint8'), step=epoch)  # the Fig. 3 picture in TensorBoard


def balanced_sample(samples: list[tuple[str, int]], per_class: int, seed: int = 0) -> list[tuple[str, int]]:
    """At most ``per_class`` items of each class, drawn without replacement
    with a fixed seed (the same on every rank and every run), in class order."""
    rng = np.random.default_rng(seed)
    by_class: dict[int, list] = {}
    for item in samples:
        by_class.setdefault(item[1], []).append(item)
    chosen = []
    for label in sorted(by_class):
        items = by_class[label]
        picks = rng.choice(len(items), size=min(per_class, len(items)), replace=False)
        chosen += [items[i] for i in sorted(picks)]
    return chosen


@HOOKS.register_module()
class KnnMonitorHook(Hook):
    """k-NN top-1 of the online encoder on a fixed labelled sample, over training.

    The definition is ``tools/eval_knn.py``'s (global-average-pooled,
    L2-normalised features; k nearest training images by cosine similarity,
    votes weighted exp(s / T)); the images are a class-balanced sample of an
    ImageNet-style folder pair (``<dir>/<class>/<image>``), resized to
    ``size * 8 / 7`` and centre-cropped to ``size``. Before training (epoch 0)
    and every ``interval`` epochs each rank embeds its 1/world share of the
    images, rank 0 gathers them in their fixed order, scores, logs one line
    (with the time it took and its share of the last epoch), writes
    TensorBoard scalars and appends to ``<work_dir>/knn_monitor.json``. The
    random state of training is not touched. Without the folders it logs once
    how to turn it on and does nothing else.

    Args:
        train_dir, val_dir: labelled folders (ImageNet train and val, or any ImageFolder).
        classes_file: optional class list (one folder per line), e.g. ImageNet-100's.
        train_per_class, val_per_class: images per class drawn from each folder.
        interval: epochs between evaluations.
        k, temperature: the k-NN vote (k=20, T=0.07 as in tools/eval_knn.py).
        size, batch: crop size and images per forward pass.
    """

    priority = 'LOW'

    def __init__(self, train_dir: str | None, val_dir: str | None, classes_file: str | None = None,
                 train_per_class: int = 5, val_per_class: int = 2, interval: int = 10, k: int = 20,
                 temperature: float = 0.07, size: int = 224, batch: int = 64, seed: int = 0):
        self.train_dir, self.val_dir, self.classes_file = train_dir, val_dir, classes_file
        self.train_per_class, self.val_per_class, self.interval = train_per_class, val_per_class, interval
        self.k, self.temperature, self.size, self.batch, self.seed = k, temperature, size, batch, seed
        self.train = self.val = self.classes = None
        self._epoch_start = None
        self._epoch_seconds = None

    def before_train(self, runner):
        from ..evaluation.knn import labelled_folder, read_class_list
        missing = [d for d in (self.train_dir, self.val_dir) if not d or not os.path.isdir(d)]
        if missing:
            if is_main_process():
                runner.logger.info(
                    f'KnnMonitorHook is off: labelled folder {missing[0]} not found. To follow k-NN accuracy '
                    'during training, put ImageNet there (data/imagenet/train/<class>/ and data/imagenet/val/<class>/) '
                    "or set the hook's train_dir and val_dir to any <root>/<class>/<image> folders.")
            return
        try:
            classes = read_class_list(self.classes_file) if self.classes_file else None
            train, self.classes = labelled_folder(self.train_dir, classes)
            val, _ = labelled_folder(self.val_dir, self.classes)
        except DatasetLayoutError as error:
            if is_main_process():
                runner.logger.warning(f'KnnMonitorHook is off: {error}')
            return
        self.train = balanced_sample(train, self.train_per_class, self.seed)
        self.val = balanced_sample(val, self.val_per_class, self.seed + 1)
        if is_main_process():
            runner.logger.info(f'KnnMonitorHook: {len(self.train)} train / {len(self.val)} val images of '
                               f'{len(self.classes)} classes ({self.train_dir}, {self.val_dir}), every '
                               f'{self.interval} epochs, k={self.k}, T={self.temperature}, each of '
                               f'{get_world_size()} rank(s) embedding its share')
        if runner.epoch == 0:
            self._evaluate(runner, epoch=0)

    def before_train_epoch(self, runner):
        self._epoch_start = time.perf_counter()

    def after_train_epoch(self, runner):
        if self._epoch_start is not None:
            self._epoch_seconds = time.perf_counter() - self._epoch_start
        if self.train and (self.every_n_epochs(runner, self.interval) or self.is_last_train_epoch(runner)):
            self._evaluate(runner, epoch=runner.epoch + 1)

    @torch.no_grad()
    def _embed(self, encoder, samples, device) -> tuple[list[int], torch.Tensor, torch.Tensor]:
        """The features of this rank's share (every world-th image from its rank)."""
        from torchvision.transforms import v2

        from ..evaluation.knn import _Images, pooled_features
        transform = v2.Compose([
            v2.Resize(round(self.size * 8 / 7), interpolation=v2.InterpolationMode.BICUBIC, antialias=True),
            v2.CenterCrop(self.size)])
        indices = list(range(get_rank(), len(samples), get_world_size()))
        images = _Images([samples[i] for i in indices], transform)
        features, labels = [], []
        for start in range(0, len(indices), self.batch):
            batch = [images[j] for j in range(start, min(start + self.batch, len(indices)))]
            features.append(pooled_features(encoder, torch.stack([b[0] for b in batch]).to(device)).cpu())
            labels.append(torch.tensor([b[1] for b in batch]))
        dim = encoder.c5_channels
        return (indices, torch.cat(features) if features else torch.zeros(0, dim),
                torch.cat(labels) if labels else torch.zeros(0, dtype=torch.long))

    def _gathered(self, encoder, samples, device) -> tuple[torch.Tensor, torch.Tensor]:
        """Every rank's share, back in the samples' order (on every rank)."""
        shares = all_gather_object(self._embed(encoder, samples, device)) if get_world_size() > 1 else \
            [self._embed(encoder, samples, device)]
        order = torch.tensor([i for share in shares for i in share[0]]).argsort()
        return torch.cat([s[1] for s in shares])[order], torch.cat([s[2] for s in shares])[order]

    def _evaluate(self, runner, epoch: int):
        from ..evaluation.knn import knn_predict, topk_accuracy
        start = time.perf_counter()
        encoder = _unwrap(runner.model).online_encoder
        device = next(encoder.parameters()).device
        was_training = encoder.training
        encoder.eval()
        try:
            with torch.random.fork_rng(devices=[]):
                train = self._gathered(encoder, self.train, device)
                val = self._gathered(encoder, self.val, device)
        finally:
            encoder.train(was_training)
        if not is_main_process():
            return
        scores = knn_predict(*train, val[0], len(self.classes), self.k, self.temperature)
        metrics = topk_accuracy(scores, val[1])
        seconds = time.perf_counter() - start
        record = {'epoch': epoch, 'top1': metrics['top1'], 'top5': metrics.get('top5'),
                  'num_train': len(self.train), 'num_val': len(self.val), 'classes': len(self.classes),
                  'k': self.k, 'temperature': self.temperature, 'world_size': get_world_size(),
                  'seconds': round(seconds, 3),
                  'epoch_seconds': round(self._epoch_seconds, 3) if self._epoch_seconds else None}
        share = f', {100 * seconds / self._epoch_seconds:.1f}% of the last epoch ({self._epoch_seconds:.1f} s)' \
            if self._epoch_seconds else ''
        runner.logger.info(f"k-NN monitor, epoch {epoch}: top-1 {metrics['top1']:.2f}% (k={self.k}, "
                           f'{len(self.train)} train / {len(self.val)} val images, {len(self.classes)} classes); '
                           f'took {seconds:.1f} s{share}')
        path = os.path.join(runner.work_dir, 'knn_monitor.json')
        _record_epoch(path, record)
        runner.visualizer.add_scalars({'knn_top1': metrics['top1']}, step=epoch)


class NonFiniteLossError(RuntimeError):
    """Training stopped on a NaN or infinite loss (``tools/train.py`` prints
    the message as one line)."""


@HOOKS.register_module()
class StopOnNonFiniteLossHook(Hook):
    """Stops training when the loss is NaN or infinite, with the iteration and
    the last logged loss, lr, K and tau (the checkpoints before it stay)."""

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None):
        loss = (outputs or {}).get('loss')
        if loss is None:
            return
        # mmengine's RuntimeInfoHook (a higher priority) has already read the
        # loss onto the host; reading that number costs no second
        # synchronisation with the device.
        hub = runner.message_hub
        if 'train/loss' in hub.log_scalars:
            finite_now = math.isfinite(hub.get_scalar('train/loss').current())
        else:
            finite_now = bool(torch.isfinite(loss).all())
        if finite_now:
            return
        last = []
        for key in ('loss', 'lr', 'K', 'tau'):
            if f'train/{key}' in runner.message_hub.log_scalars:
                values = runner.message_hub.get_scalar(f'train/{key}').data[0]
                finite = [v for v in values if math.isfinite(v)]
                if finite:
                    last.append(f'{key} {finite[-1]:.6g}')
        raise NonFiniteLossError(f'loss became {float(loss.detach().float().mean())} at iteration {runner.iter + 1} '
                           f'(epoch {runner.epoch + 1}); last finite logged values: {", ".join(last) or "none"}. '
                           f'Stopped; resume from the last checkpoint in {runner.work_dir} after fixing the cause.')
