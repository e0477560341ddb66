"""mmengine hooks of R2O pretraining. They only call the schedule functions of
:mod:`r2o_mm.engine.schedules` and write the value where it is read."""
from __future__ import annotations

import json
import os

import numpy as np
import torch
from mmengine.dist import get_world_size, is_main_process
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper
from mmengine.registry import HOOKS

from ..utils.config import require_switch
from ..utils.costs import cost_record
from ..utils.machine import machine_fingerprint
from .preflight import recipe_fingerprint
from .schedules import cluster_schedule, learning_rate, target_momentum


def _unwrap(model):
    return model.module if is_model_wrapper(model) else model


def _accumulation(runner) -> int:
    return getattr(runner.optim_wrapper, '_accumulative_counts', 1)


@HOOKS.register_module()
class ClusterScheduleHook(Hook):
    """Sets ``model.num_clusters`` = K(epoch) before each epoch (epochs from 1).

    Arguments are those of :func:`cluster_schedule`; ``total_epochs`` defaults
    to the run's ``max_epochs``.
    """

    priority = 'HIGHEST'

    def __init__(self, kind: str = 'cosine', start: int = 128, end: int = 4,
                 total_epochs: int | None = None, points=()):
        self.schedule = dict(kind=kind, start=start, end=end, points=points)
        self.total_epochs = total_epochs
        cluster_schedule(1, total_epochs=total_epochs or 1, **self.schedule)  # validate early

    def before_train_epoch(self, runner):
        total = self.total_epochs or runner.max_epochs
        model = _unwrap(runner.model)
        model.num_clusters = cluster_schedule(runner.epoch + 1, total_epochs=total, **self.schedule)
        model.kmeans_calls = model.kmeans_empty_calls = 0

    def after_train_epoch(self, runner):
        """One line per epoch: how many K-means calls hit an empty cluster
        (Quirk Q8: with the released setting each such call collapsed its
        batch into one cluster)."""
        model = _unwrap(runner.model)
        if model.kmeans_calls:
            runner.logger.info(
                f'epoch {runner.epoch + 1}: K-means hit an empty cluster in {model.kmeans_empty_calls} of '
                f'{model.kmeans_calls} calls on this process (K={model.num_clusters}, '
                f'kmeans_empty_clusters={model.kmeans_empty_clusters!r})')


@HOOKS.register_module()
class R2OLearningRateHook(Hook):
    """Per-step lr: warm-up, cosine, and x K/16 when ``couple_to_clusters``.

    The base lr is ``lr_per_256 * global_batch / 256`` with the *actual*
    global batch (per-GPU batch x world size x gradient accumulation), so the
    same config scales from 1 GPU to 128. Logs ``K`` every iteration.
    """

    priority = 'HIGHEST'  # before RuntimeInfoHook logs the lr

    def __init__(self, lr_per_256: float = 0.3, warmup_epochs: float = 3,
                 couple_to_clusters: bool = True):
        require_switch('R2OLearningRateHook.couple_to_clusters', couple_to_clusters)
        self.lr_per_256, self.warmup_epochs = lr_per_256, warmup_epochs
        self.couple_to_clusters = couple_to_clusters

    def before_train(self, runner):
        accumulation = _accumulation(runner)
        batch = runner.train_dataloader.batch_size
        self.global_batch = batch * get_world_size() * accumulation
        self.base_lr = self.lr_per_256 * self.global_batch / 256
        self.steps_per_epoch = max(len(runner.train_dataloader) // accumulation, 1)
        self.total_steps = runner.max_iters // accumulation
        self.warmup_steps = round(self.warmup_epochs * self.steps_per_epoch)
        runner.logger.info(
            f'world size {get_world_size()}, global batch {self.global_batch} '
            f'({batch} per process x {get_world_size()} x accumulation {accumulation}); base lr '
            f'{self.lr_per_256} x {self.global_batch}/256 = {self.base_lr:.4g}; '
            f'{self.total_steps} optimiser steps, {self.warmup_steps} of warm-up; '
            f'lr x K/16: {self.couple_to_clusters}')

    def before_train_iter(self, runner, batch_idx, data_batch=None):
        num_clusters = _unwrap(runner.model).num_clusters
        lr = learning_rate(runner.iter // _accumulation(runner), self.total_steps, self.warmup_steps,
                           self.base_lr, num_clusters if self.couple_to_clusters else None)
        for group in runner.optim_wrapper.param_groups:
            group['lr'] = lr
        runner.message_hub.update_scalar('train/K', num_clusters)


@HOOKS.register_module()
class TargetEMAHook(Hook):
    """Updates the target network once per optimiser step with tau(step).

    tau is the share of the old target weights (0.99 rising to 1.0). Runs only
    on iterations where the optimiser stepped, so gradient accumulation is
    right. Not mmengine's EMAHook: that one swaps averaged weights into the
    saved state_dict.
    """

    def __init__(self, base_tau: float = 0.99):
        self.base_tau = base_tau

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None):
        if not runner.optim_wrapper.should_update():
            return
        accumulation = _accumulation(runner)
        tau = target_momentum(runner.iter // accumulation, runner.max_iters // accumulation,
                              self.base_tau)
        _unwrap(runner.model).update_target(tau)
        runner.message_hub.update_scalar('train/tau', tau)


def _label_colours(labels: np.ndarray, seed: int = 0) -> np.ndarray:
    palette = np.random.default_rng(seed).integers(0, 256, (int(labels.max()) + 1, 3), dtype=np.uint8)
    return palette[labels]


@HOOKS.register_module()
class MaskVisualizationHook(Hook):
    """Every ``interval`` iterations, draws raw images, their SLIC superpixels
    and the current cluster masks (the paper's Fig. 3) with mmengine's
    visualiser: local files, and TensorBoard when its backend is configured.
    """

    def __init__(self, interval: int = 1000, num_images: int = 4):
        self.interval, self.num_images = interval, num_images

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None):
        if not self.every_n_train_iters(runner, self.interval) or data_batch is None:
            return
        from skimage.segmentation import mark_boundaries
        model = _unwrap(runner.model)
        inputs = {key: value[:self.num_images] for key, value in data_batch['inputs'].items()}
        inputs = model.data_preprocessor({'inputs': inputs})['inputs']
        # Every rank draws the same K-means seeds in training; a picture must
        # not advance one rank's count (a resume restores rank 0's on all).
        with torch.no_grad(), model.kmeans_state_kept():
            masks, _ = model.predict_masks(inputs['raw'], inputs['superpixels'])
        size = inputs['raw'].shape[-1]
        labels = torch.nn.functional.interpolate(masks, size=(size, size), mode='nearest').argmax(1)
        rows = []
        for index, raw in enumerate(data_batch['inputs']['raw'][:self.num_images]):
            image = raw.permute(1, 2, 0).numpy()
            superpixels = inputs['superpixels'][index].cpu().numpy()
            boundaries = (mark_boundaries(image, superpixels) * 255).astype(np.uint8)
            clusters = _label_colours(labels[index].cpu().numpy())
            rows.append(np.concatenate([image, boundaries, clusters], axis=1))
        runner.visualizer.add_image('raw_superpixels_clusters', np.concatenate(rows, axis=0),
                                    step=runner.iter + 1)


def recipe_differences(recipe: dict | None, run: dict) -> list[str]:
    """'key: this run X, released Y' for global_batch, world_size and epochs
    where the config's ``released_recipe`` states a value and the run differs."""
    if not recipe:
        return []
    return [f'{key} {run[key]} (released {recipe[key]})' for key in ('global_batch', 'world_size', 'epochs')
            if recipe.get(key) is not None and run[key] != recipe[key]]


@HOOKS.register_module()
class PretrainInfoHook(Hook):
    """Writes ``pretrain_info.json`` in the work dir at the start of training:
    what the results tools need to place the run's downstream numbers (config,
    dataset, model variant, epochs, world size, global batch, and the recipe
    fingerprint that tells which runs differ only in their seeds)."""

    priority = 'LOWEST'

    def before_train(self, runner):
        if not is_main_process():
            return
        cfg = runner.cfg
        dataset = cfg.train_dataloader.dataset
        model = _unwrap(runner.model)
        info = dict(
            config=os.path.basename(cfg.filename or ''),
            dataset=dataset.get('type'), data_root=dataset.get('data_root'),
            subset_file=dataset.get('subset_file'),
            mask_source=model.mask_source, superpixel_source=model.superpixel_source,
            k_schedule=next((h for h in cfg.get('custom_hooks', []) if h['type'] == 'ClusterScheduleHook'),
                            None),
            depth=cfg.model.get('depth'), epochs=runner.max_epochs, world_size=get_world_size(),
            global_batch=runner.train_dataloader.batch_size * get_world_size() * _accumulation(runner),
            seed=runner.seed, recipe_sha256=recipe_fingerprint(cfg), machine=machine_fingerprint())
        with open(os.path.join(runner.work_dir, 'pretrain_info.json'), 'w') as handle:
            json.dump(info, handle, indent=2, default=str)
        differences = recipe_differences(cfg.get('released_recipe'), info)
        if differences:
            runner.logger.warning(
                f'this run differs from the released recipe of {info["config"]}: {"; ".join(differences)}. '
                'Results are recorded with these values; they are not the paper\'s setting.')


@HOOKS.register_module()
class ThroughputHook(Hook):
    """Logs ``images_per_s`` (global batch / iteration time) every iteration
    (TensorBoard shows it with loss, lr, K, tau, data time and memory), sums
    the training time in the message hub (saved in checkpoints, so it adds up
    over resumes), and at the end writes the run's cost (device-hours,
    images/s, peak memory per process) into ``pretrain_info.json``."""

    priority = 'NORMAL'  # after IterTimerHook, before LoggerHook

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None):
        hub = runner.message_hub
        if 'train/time' not in hub.log_scalars:
            return
        seconds = hub.get_scalar('train/time').current()
        global_batch = runner.train_dataloader.batch_size * get_world_size()
        hub.update_scalar('train/images_per_s', global_batch / max(seconds, 1e-9))
        hub.update_info('train_seconds', hub.get_info('train_seconds', 0.0) + seconds)
        hub.update_info('train_images', hub.get_info('train_images', 0) + global_batch)

    def after_train(self, runner):
        if not is_main_process():
            return
        path = os.path.join(runner.work_dir, 'pretrain_info.json')
        if not os.path.isfile(path):
            return
        with open(path) as handle:
            info = json.load(handle)
        hub = runner.message_hub
        info['cost'] = cost_record(hub.get_info('train_seconds', 0.0), get_world_size(),
                                   hub.get_info('train_images', 0))
        with open(path, 'w') as handle:
            json.dump(info, handle, indent=2, default=str)


@HOOKS.register_module()
class SkippedImagesHook(Hook):
    """At the end of training, reports how many distinct unreadable images the
    data workers skipped (from ``$R2O_SKIPPED_IMAGES_LOG``, see LoadImageRGB)."""

    def after_train(self, runner):
        from ..data.transforms import SKIPPED_IMAGES_LOG
        path = os.environ.get(SKIPPED_IMAGES_LOG)
        if not path or not os.path.isfile(path):
            runner.logger.info('no unreadable images were skipped')
            return
        with open(path) as handle:
            skipped = sorted({line.strip() for line in handle if line.strip()})
        runner.logger.warning(f'{len(skipped)} unreadable images were skipped during training; '
                              f'the list is in {path}')
