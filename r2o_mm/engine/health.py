"""Signals that a pretraining run is on track, long before its last epoch.

``MaskQualityHook``: every few epochs, the mean best overlap (mBO) of the
masks the model predicts on a fixed labelled set, at the current K and at
fixed reference Ks, with the paper's Fig. 3 picture of the same images.
``StopOnNonFiniteLossHook``: stops a run whose loss becomes NaN or infinite,
naming the iteration and the last logged values.
"""
from __future__ import annotations

import json
import math
import os

import torch
from mmengine.dist import is_main_process
from mmengine.hooks import Hook
from mmengine.registry import HOOKS

from ..data.datasets import DatasetLayoutError
from .hooks import _unwrap


@HOOKS.register_module()
class MaskQualityHook(Hook):
    """mBO of the model's own masks on a fixed labelled set, over training.

    Runs on the main process before training (epoch 0) and every
    ``interval`` epochs; logs one line per evaluation, appends it to
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
        self.items = self.views = None

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
        from ..evaluation.mask_prediction import load_coco_objects, raw_views
        try:
            self.items = load_coco_objects(self.ann_file, self.image_dir, self.max_images)
        except DatasetLayoutError as error:
            runner.logger.warning(f'MaskQualityHook is off: {error}')
            return
        self.views = raw_views([path for path, _ in self.items], self.size)
        runner.logger.info(f'MaskQualityHook: {len(self.items)} images of {self.ann_file}, every '
                           f'{self.interval} epochs, K = current and {self.reference_ks}')
        if runner.epoch == 0:
            self._evaluate(runner, epoch=0)

    def after_train_epoch(self, runner):
        if self.items and (self.every_n_epochs(runner, self.interval) or self.is_last_train_epoch(runner)):
            self._evaluate(runner, epoch=runner.epoch + 1)

    def _evaluate(self, runner, epoch: int):
        from ..evaluation.mask_prediction import save_mask_grid, score_masks
        model = _unwrap(runner.model)
        ks = list(dict.fromkeys([model.num_clusters, *self.reference_ks]))
        scores, labels = score_masks(model, self.items, ks, self.size, self.batch, self.views)
        record = {'epoch': epoch, 'K': model.num_clusters, 'mBO': {str(k): v for k, v in scores.items()}}
        runner.logger.info(f'mask quality, epoch {epoch}: mBO ' + ', '.join(
            f'{v:.1f} at K={k}' + (' (current)' if k == model.num_clusters else '') for k, v in scores.items()))
        path = os.path.join(runner.work_dir, 'mask_quality.json')
        history = json.load(open(path)) if os.path.isfile(path) else []
        history = [h for h in history if h['epoch'] != epoch] + [record]
        with open(path, 'w') as handle:
            json.dump(history, handle, indent=1)
        runner.visualizer.add_scalars({f'mBO_K{k}': v for k, v in scores.items()}, step=epoch)
        shown = min(self.num_pictures, len(self.items))
        os.makedirs(os.path.join(runner.work_dir, 'mask_quality'), exist_ok=True)
        picture = os.path.join(runner.work_dir, 'mask_quality', f'epoch_{epoch}.png')
        save_mask_grid(self.views[0][:shown], self.views[1][:shown], {k: v[:shown] for k, v in labels.items()},
                       picture, f'epoch {epoch}, current K={model.num_clusters}')
        import matplotlib.image
        runner.visualizer.add_image('mask_quality', (matplotlib.image.imread(picture)[..., :3] * 255)
                                    .astype('uint8'), step=epoch)  # the Fig. 3 picture in TensorBoard


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
