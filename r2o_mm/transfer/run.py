"""One downstream run: train and test a transfer config from an exported encoder.

Used by ``tools/transfer_run.py`` (and so by ``tools/transfer.sh``). It
(1) checks the dataset layout, (2) points the backbone at the exported
weights and adds the load check, (3) rescales the schedule to the actual
global batch, (4) trains and tests with mmengine's Runner, and (5) writes
``metrics.json`` (and ``run_info.json`` at start) in the work dir, which the
results tools read.
"""
from __future__ import annotations

import datetime
import json
import time
import os
import os.path as osp

from mmengine.config import Config
from mmengine.dist import get_rank, get_world_size

from ..data.datasets import DatasetLayoutError
from ..utils.config import add_wandb_backend, config_sha256, read_config
from ..utils.io import write_json
from ..utils.costs import cost_record
from ..utils.machine import machine_fingerprint
from .export import read_source_record
from .protocols import REFERENCE_PROTOCOLS, deviations, protocol_diff, run_batch_deviation

CONFIG_DIR = osp.join(osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))), 'configs', 'transfer')

# task -> (config, benchmark family)
TASKS = {
    'coco_1x': ('coco_mask_rcnn_r50_fpn_detcon_1x.py', 'coco'),
    'coco_2x': ('coco_mask_rcnn_r50_fpn_detcon_2x.py', 'coco'),
    'coco_mocov2_1x': ('coco_mask_rcnn_r50_fpn_mocov2_1x.py', 'coco'),
    'voc': ('voc_fcn_r50_d16_30k.py', 'voc'),
    'cityscapes': ('cityscapes_fcn_r50_d16_160e.py', 'cityscapes'),
    # ImageNet classification through mmpretrain (no paper table: the evaluations SSL comparisons use).
    'imagenet_linear': ('imagenet_linear_r50_byol_lars_90e.py', 'imagenet'),
    'imagenet_semi_1pct': ('imagenet_semi_1pct_r50_simclr_60e.py', 'imagenet'),
    'imagenet_semi_10pct': ('imagenet_semi_10pct_r50_simclr_30e.py', 'imagenet'),
}
DEFAULT_TASKS = ('coco_1x', 'voc', 'cityscapes')

_CONVERTERS = {
    'voc': 'the VOC2012 trainval archive (JPEGImages, SegmentationClass, ImageSets/Segmentation/'
           "{train,val}.txt) and mmsegmentation's tools/dataset_converters/voc_aug.py data/VOCdevkit "
           'data/VOCdevkit/VOCaug (writes SegmentationClassAug and ImageSets/Segmentation/aug.txt from SBD)',
    'cityscapes': 'the Cityscapes downloads leftImg8bit_trainvaltest.zip and gtFine_trainvaltest.zip, '
                  'unzipped into data/cityscapes (leftImg8bit/, gtFine/), then '
                  "mmsegmentation's tools/dataset_converters/cityscapes.py data/cityscapes "
                  '(writes the *_labelTrainIds.png maps)',
    'coco': 'the official COCO 2017 archives, unzipped (train2017/, val2017/, annotations/)',
    'imagenet': 'ILSVRC2012_img_train.tar and ILSVRC2012_img_val.tar unpacked into data/imagenet/train/<class>/ and '
                'data/imagenet/val/<class>/ (val sorted into the class folders, e.g. with the common valprep.sh), '
                "and for the semi-supervised tasks SimCLR's label lists 1percent.txt and 10percent.txt "
                '(google-research/simclr, imagenet_subsets/) in data/imagenet/',
}


def task_config_path(task: str) -> str:
    if task not in TASKS:
        raise ValueError(f'unknown transfer task {task!r}; choose from {", ".join(TASKS)}')
    return osp.join(CONFIG_DIR, TASKS[task][0])


def _dataset_cfgs(cfg: Config):
    for loader in ('train_dataloader', 'test_dataloader'):
        dataset = cfg[loader]['dataset']
        while 'dataset' in dataset:  # RepeatDataset and friends
            dataset = dataset['dataset']
        yield from dataset.get('datasets', [dataset])  # ConcatDataset: each part


def check_dataset_layout(cfg: Config, family: str):
    """Raises DatasetLayoutError naming the first missing path and the tool
    that produces it."""
    required = []
    for dataset in _dataset_cfgs(cfg):
        root = dataset.get('data_root', '')
        prefix = dataset.get('data_prefix', {})
        if family == 'imagenet':  # ImageNetFolder: <data_root>/<split>/<class>/, a label subset
            required.append(osp.join(root, dataset.get('split', 'train')))
            if dataset.get('subset_file'):
                required.append(dataset['subset_file'])
            continue
        if dataset.get('ann_file'):
            required.append(osp.join(root, dataset['ann_file']))
        for folder in prefix.values():
            required.append(osp.join(root, folder))
    for path in required:
        if not osp.exists(path):
            raise DatasetLayoutError(f'{path} does not exist. The {family} transfer expects it; '
                                     f'produce it with {_CONVERTERS[family]}.')
    if family == 'cityscapes':
        labels = next(d for d in _dataset_cfgs(cfg))
        folder = osp.join(labels['data_root'], labels['data_prefix']['seg_map_path'])
        if not any(f.endswith('_labelTrainIds.png') for _, _, files in os.walk(folder) for f in files):
            raise DatasetLayoutError(f'no *_labelTrainIds.png under {folder}; produce them with '
                                     "mmsegmentation's tools/dataset_converters/cityscapes.py data/cityscapes.")


def launcher_world_size(launcher: str) -> int:
    """Number of processes the launcher starts (known before mmengine
    initialises torch.distributed)."""
    if launcher == 'none':
        return 1
    if launcher == 'slurm':
        return int(os.environ.get('SLURM_NTASKS', 1))
    return int(os.environ.get('WORLD_SIZE', 1))


def scale_to_global_batch(cfg: Config, world_size: int) -> dict:
    """Keeps the protocol's number of epochs when the global batch differs
    from ``cfg.reference_batch``: iteration counts are multiplied by
    reference / actual; mmengine's ``auto_scale_lr`` scales the lr by
    actual / reference. Returns what was applied."""
    actual = cfg.train_dataloader.batch_size * world_size
    reference = cfg.get('reference_batch', actual)
    factor = reference / actual
    if cfg.train_cfg.get('type') == 'IterBasedTrainLoop' and factor != 1:
        cfg.train_cfg.max_iters = round(cfg.train_cfg.max_iters * factor)
        cfg.train_cfg.val_interval = round(cfg.train_cfg.val_interval * factor)
        for scheduler in cfg.param_scheduler:
            if not scheduler.get('by_epoch', True):
                for key in ('begin', 'end'):
                    if key in scheduler:
                        scheduler[key] = round(scheduler[key] * factor)
                if 'milestones' in scheduler:
                    scheduler.milestones = [round(m * factor) for m in scheduler.milestones]
        checkpoint = cfg.default_hooks.get('checkpoint')
        if checkpoint and not checkpoint.get('by_epoch', True):
            checkpoint.interval = max(round(checkpoint.interval * factor), 1)
    cfg.auto_scale_lr = dict(enable=True, base_batch_size=reference)
    return dict(world_size=world_size, global_batch=actual, reference_batch=reference,
                iteration_factor=factor)


def protocol_record(cfg: Config) -> dict:
    """The released protocol the config claims, and every field in which the
    merged config (options included) differs from it: an empty list means the
    authors' protocol, exactly. A config that names no reference records None."""
    reference = cfg.get('reference_protocol')
    if reference not in REFERENCE_PROTOCOLS:
        return dict(reference_protocol=None, protocol_deviations=None)
    return dict(reference_protocol=reference, protocol_deviations=deviations(protocol_diff(cfg, reference)))


def config_fingerprint(cfg: Config) -> str:
    """sha256 of the task's merged config (options included), before the
    run-specific fields (work dir, launcher, backbone path) are set: two runs
    with the same fingerprint trained the same recipe on the same data."""
    return config_sha256(cfg)


def prepare_config(task: str, backbone: str, work_dir: str, cfg_options: dict | None = None,
                   launcher: str = 'none', config_path: str | None = None,
                   pretrained: str | None = None, check_backbone: bool = True,
                   check_data: bool = True) -> tuple[Config, dict]:
    """``pretrained``: the pretraining checkpoint the backbone was exported
    from (recorded, so the results tools can find its run); its sha256 is read
    from the export's source record. ``check_backbone=False`` (the pre-flight,
    before the export) skips the test that the backbone file exists;
    ``check_data=False`` (the pre-flight, which reports it beside the other
    problems of the task) the dataset layout."""
    cfg = read_config(config_path or task_config_path(task))
    cfg.merge_from_dict(cfg_options or {})
    fingerprint = config_fingerprint(cfg)
    cfg.launcher = launcher
    cfg.work_dir = work_dir
    if check_backbone and not osp.isfile(backbone):
        raise FileNotFoundError(f'exported backbone {backbone} does not exist '
                                '(tools/export_backbone.py writes it)')
    cfg.model.backbone.init_cfg = dict(type='Pretrained', checkpoint=backbone)
    hooks = [dict(h, checkpoint=backbone) if h.get('type') == 'FrozenBackboneCheckHook' else h
             for h in cfg.get('custom_hooks', [])]
    cfg.custom_hooks = [dict(type='BackboneLoadCheckHook', checkpoint=backbone), *hooks,
                        dict(type='StopOnNonFiniteLossHook'),  # a NaN or infinite loss stops the run, in one line
                        dict(type='WeightsAgreeHook')]  # every rank ends with the same weights
    if check_data:
        check_dataset_layout(cfg, TASKS[task][1] if task in TASKS else 'coco')
    info = dict(task=task, protocol=cfg.get('protocol', task), config=config_path or task_config_path(task),
                backbone=osp.abspath(backbone), checkpoint=osp.abspath(pretrained or backbone),
                seed=cfg.get('randomness', {}).get('seed'), config_sha256=fingerprint,
                checkpoint_sha256=(read_source_record(backbone) or {}).get('source_sha256'))
    info.update(protocol_record(cfg))
    info.update(scale_to_global_batch(cfg, launcher_world_size(launcher)))
    if info['reference_protocol']:
        info['protocol_deviations'] += run_batch_deviation(info['reference_protocol'], info['global_batch'])
    # TensorBoard beside the frameworks' local logs (tensorboard --logdir WORK_DIR).
    backends = cfg.visualizer.setdefault('vis_backends', [dict(type='LocalVisBackend')])
    if not any(b.get('type') == 'TensorboardVisBackend' for b in backends):
        backends.append(dict(type='TensorboardVisBackend'))
    add_wandb_backend(cfg)
    # One evaluation, on the test split after training (no validation during
    # training: for these protocols it is the same split).
    cfg.val_dataloader = cfg.val_cfg = cfg.val_evaluator = None
    return cfg, info


def _write_json(path: str, payload: dict):
    if get_rank() == 0:
        write_json(path, payload)


def library_versions(cfg: Config) -> dict:
    """mmengine's version and those of the libraries the task's config runs on."""
    import importlib

    import mmengine
    libraries = ('mmpretrain',) if cfg.get('default_scope') == 'mmpretrain' else ('mmdet', 'mmseg')
    return dict(mmengine=mmengine.__version__,
                **{name: importlib.import_module(name).__version__ for name in libraries})


def run_transfer(cfg: Config, info: dict) -> dict:
    """Trains and tests; returns the test metrics (also written to metrics.json).
    The runner's start-up dump (environment, config, hooks) goes to the log
    file only (QuietStartMixin)."""
    from mmengine.runner import Runner

    from ..engine.console import QuietStartMixin

    class TransferRunner(QuietStartMixin, Runner):
        pass

    runner = TransferRunner.from_cfg(cfg)
    if get_world_size() != info['world_size']:
        raise RuntimeError(f"expected {info['world_size']} processes, torch.distributed has "
                           f'{get_world_size()}')
    info.update(**library_versions(cfg),
                started=datetime.datetime.now().isoformat(timespec='seconds'),
                max_iters=runner.cfg.train_cfg.get('max_iters'),
                max_epochs=runner.cfg.train_cfg.get('max_epochs'), machine=machine_fingerprint())
    runner.logger.info('transfer run: ' + json.dumps(info, default=str))
    _write_json(osp.join(cfg.work_dir, 'run_info.json'), info)
    start = time.time()
    runner.train()
    metrics = runner.test()
    images = cfg.train_dataloader.batch_size * get_world_size() * (runner.iter or 0)
    result = dict(info, metrics={k: float(v) for k, v in metrics.items()}, finished=True,
                  ended=datetime.datetime.now().isoformat(timespec='seconds'),
                  cost=cost_record(time.time() - start, get_world_size(), images))
    _write_json(osp.join(cfg.work_dir, 'metrics.json'), result)
    return result
