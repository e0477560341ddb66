"""The pre-flight of a pretraining run: what ``tools/train.py`` checks in
one process before any worker starts, so that a bad value, an unreadable
dataset or an unusable work dir ends in one line instead of hundreds.

Each check raises :class:`PreflightError` (one line) or returns the lines
worth saying.
"""
from __future__ import annotations

import glob
import inspect
import math
import os
import os.path as osp
import random
import shutil
import time

# Config keys that say where and how a run is launched, not what it computes:
# left out of the run fingerprint, so a resume or a relaunch elsewhere is the same run.
RUN_LOCAL_KEYS = ('work_dir', 'launcher', 'resume', 'load_from', 'visualizer', 'vis_backends', 'run_fingerprint')
# The sample of images the pre-flight decodes, and the share of it that must decode.
SAMPLE_FIRST, SAMPLE_RANDOM, MIN_DECODED_SHARE = 4, 4, 0.5
# Free space asked for in the work dir, in checkpoints of this run.
CHECKPOINTS_OF_SPACE = 3


class PreflightError(ValueError):
    """A problem found before training; the message is one line."""


def run_fingerprint(cfg) -> str:
    """sha256 (16 hex digits) of the merged config without the launch keys:
    two runs with the same fingerprint compute the same thing."""
    from ..utils.config import config_sha256
    return config_sha256(cfg, leave_out=RUN_LOCAL_KEYS)[:16]


# What a pretraining's weights depend on (the recipe) ...
RECIPE_KEYS = ('model', 'train_dataloader', 'optim_wrapper', 'param_scheduler', 'train_cfg', 'custom_hooks')
# ... less seeds, where the data and caches are, worker counts and the hooks that only look.
_NOT_RECIPE = ('seed', 'kmeans_seed', 'data_root', 'cache_dir', 'num_workers', 'persistent_workers', 'pin_memory')
_WATCHING_HOOKS = ('MaskVisualizationHook',)


def _without(value, keys):
    if isinstance(value, dict):
        return {k: _without(v, keys) for k, v in value.items() if k not in keys}
    if isinstance(value, (list, tuple)):
        return [_without(v, keys) for v in value
                if not (isinstance(v, dict) and v.get('type') in _WATCHING_HOOKS)]
    return value


def recipe_fingerprint(cfg) -> str:
    """sha256 (16 hex digits) of what the weights depend on but for the
    seeds: RECIPE_KEYS of the merged config without data paths, caches,
    worker counts and seeds. Pretraining seeds of one recipe share it; the
    results tables put runs in one row only when it is the same (with the
    same data, global batch and snapshot)."""
    from ..utils.config import json_sha256
    return json_sha256(_without({k: v for k, v in cfg.to_dict().items() if k in RECIPE_KEYS}, _NOT_RECIPE))[:16]


def _checkpoint_meta(path: str) -> dict | None:
    import torch
    try:
        return torch.load(path, map_location='cpu', weights_only=True, mmap=True).get('meta', {})
    except Exception:  # noqa: BLE001  unreadable: not evidence of another run
        return None


def work_dir_owner(work_dir: str, fingerprint: str) -> tuple[list[str], list[str]]:
    """(checkpoints of another run, checkpoints of this run) in ``work_dir``,
    by the run fingerprint each checkpoint records."""
    other, same = [], []
    for path in sorted(glob.glob(osp.join(work_dir, '*.pth'))):
        meta = _checkpoint_meta(path)
        if meta is None:
            continue
        (same if meta.get('run_fingerprint') == fingerprint else other).append(path)
    return other, same


def check_work_dir_owner(work_dir: str, fingerprint: str, overwrite: bool) -> list[str]:
    """Refuses a work dir holding another run's checkpoints (or this run's,
    which a fresh start would replace) unless ``overwrite``; with it, the
    other run's checkpoints are removed. Returns the lines to say."""
    other, same = work_dir_owner(work_dir, fingerprint)
    if not (other or same):
        return []
    if overwrite:
        for path in other + same + [osp.join(work_dir, 'last_checkpoint')]:
            if osp.exists(path):
                os.remove(path)
        return [f'--overwrite: removed {len(other) + len(same)} checkpoint(s) of an earlier run from {work_dir}']
    if other:
        names = ', '.join(osp.basename(p) for p in other[:3]) + (' ...' if len(other) > 3 else '')
        raise PreflightError(f'work dir {work_dir} holds checkpoints of another run ({names}: another config, seed '
                             'or options); continue that run with --resume, start over with --overwrite, '
                             'or choose another --work-dir')
    names = ', '.join(osp.basename(p) for p in same[:3]) + (' ...' if len(same) > 3 else '')
    raise PreflightError(f'work dir {work_dir} already holds checkpoints of this run ({names}); continue with '
                         '--resume, or start over with --overwrite')


def check_train_loop(train_cfg) -> None:
    """The keys of ``train_cfg`` are arguments of its loop class (a misspelt
    key is named with the nearest ones), and ``max_epochs`` is a positive integer."""
    import difflib
    from mmengine.registry import LOOPS
    loop_cfg = dict(train_cfg)
    name = loop_cfg.pop('type', 'EpochBasedTrainLoop')
    loop_cfg.pop('by_epoch', None)
    cls = LOOPS.get(name) if isinstance(name, str) else name
    if cls is None:
        raise PreflightError(f'config error in train_cfg.type: no loop named {name!r}')
    accepted = [p for p in inspect.signature(cls.__init__).parameters if p not in ('self', 'runner', 'dataloader')]
    for key in loop_cfg:
        if key not in accepted:
            close = difflib.get_close_matches(key, accepted, n=2)
            hint = f'; did you mean {" or ".join(f"train_cfg.{c}" for c in close)}?' if close else \
                f' (it takes {", ".join(accepted)})'
            raise PreflightError(f'config error in train_cfg: {name} has no setting {key!r}{hint}')
    for key in ('max_epochs', 'max_iters'):
        if key in loop_cfg and not _positive_int(loop_cfg[key]):
            raise PreflightError(f'config error in train_cfg.{key}: a positive integer, got {loop_cfg[key]!r}')


def _integer(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _positive_int(value) -> bool:
    return _integer(value) and value > 0


def check_dataloader(loader_cfg) -> None:
    """``batch_size`` a positive integer, ``num_workers`` a non-negative one."""
    batch = loader_cfg.get('batch_size')
    if not _positive_int(batch):
        raise PreflightError(f'config error in train_dataloader.batch_size: a positive integer, got {batch!r}')
    workers = loader_cfg.get('num_workers', 0)
    if not (_integer(workers) and workers >= 0):
        raise PreflightError(f'config error in train_dataloader.num_workers: an integer >= 0, got {workers!r}')


def _decodes(path: str) -> str | None:
    """None when ``path`` decodes as the pipeline reads it, else why not."""
    from PIL import Image
    try:
        with Image.open(path) as image:
            image.convert('RGB').load()
        return None
    except Exception as error:  # noqa: BLE001  PIL raises many types for bad files
        return f'{type(error).__name__}: {str(error).splitlines()[0][:100] if str(error) else ""}'


def sample_dataset(dataset) -> dict:
    """Decodes the first few images and a few at random (seeded: the same
    sample every time); raises PreflightError when none, or fewer than
    MIN_DECODED_SHARE of them, decode. Returns the counts."""
    count = len(dataset)
    chosen = list(range(min(SAMPLE_FIRST, count)))
    rest = list(range(len(chosen), count))
    chosen += sorted(random.Random(0).sample(rest, min(SAMPLE_RANDOM, len(rest))))
    failures = []
    for index in chosen:
        path = dataset.get_data_info(index)['img_path']
        reason = _decodes(path)
        if reason:
            failures.append((path, reason))
    decoded = len(chosen) - len(failures)
    record = dict(images=count, sampled=len(chosen), decoded=decoded,
                  first_unreadable=failures[0] if failures else None)
    if failures and decoded < MIN_DECODED_SHARE * len(chosen):
        path, reason = failures[0]
        raise PreflightError(f'dataset error: {decoded} of {len(chosen)} sampled images under {dataset.data_root} '
                             f'decode ({count} listed); first unreadable: {path} ({reason})')
    return record


def _per_rank(images: int, world_size: int, round_up: bool) -> int:
    """Samples per rank in an epoch of mmengine's DefaultSampler: ceil(images
    / world) with ``round_up``, else floor."""
    return math.ceil(images / world_size) if round_up else images // world_size


def optimiser_steps(images: int, batch: int, world_size: int, accumulation: int = 1, drop_last: bool = True,
                    round_up: bool = True) -> int:
    """Optimiser steps in one epoch of mmengine's DefaultSampler."""
    per_rank = _per_rank(images, world_size, round_up)
    batches = per_rank // batch if drop_last else math.ceil(per_rank / batch)
    return batches // accumulation


def check_steps(images: int, loader_cfg, world_size: int, accumulation: int = 1) -> int:
    """Raises PreflightError when an epoch has no optimiser step; returns the steps."""
    batch, drop_last = loader_cfg['batch_size'], loader_cfg.get('drop_last', False)
    round_up = (loader_cfg.get('sampler') or {}).get('round_up', True)
    steps = optimiser_steps(images, batch, world_size, accumulation, drop_last, round_up)
    if steps < 1:
        largest = _per_rank(images, world_size, round_up) // accumulation
        fix = (f'set train_dataloader.batch_size to at most {largest}' if largest >= 1 else 'use fewer processes')
        shape = f'{batch} per process x {world_size} process(es)' + (f' x {accumulation} accumulated'
                                                                     if accumulation > 1 else '')
        raise PreflightError(f'{images} images and a global batch of {batch * world_size * accumulation} ({shape}'
                             f'{", drop_last" if drop_last else ""}): an epoch would make no optimiser step and '
                             f'train nothing; {fix}, or add images')
    return steps


def checkpoint_bytes(model, optimizer_type: str = 'LARS') -> int:
    """About the size of a checkpoint: the model's state plus the
    optimiser's per-parameter buffers (one for momentum methods, two for Adam)."""
    state = sum(t.numel() * t.element_size() for t in model.state_dict().values())
    trainable = sum(p.numel() * p.element_size() for p in model.parameters() if p.requires_grad)
    buffers = 2 if 'adam' in optimizer_type.lower() else 1
    return state + buffers * trainable


def check_work_dir(work_dir: str, needed: int) -> list[str]:
    """Creates ``work_dir``, writes and removes a probe file; raises
    PreflightError when it cannot, or when not even one checkpoint fits;
    returns a line when fewer than CHECKPOINTS_OF_SPACE fit."""
    try:
        os.makedirs(work_dir, exist_ok=True)
        probe = osp.join(work_dir, f'.write_probe-{os.getpid()}')
        with open(probe, 'wb') as handle:
            handle.write(b'r2o')
            os.fsync(handle.fileno())
        os.remove(probe)
    except OSError as error:
        raise PreflightError(f'work dir {work_dir} cannot be written: {error.strerror or error} '
                             '(choose another --work-dir)') from None
    free = shutil.disk_usage(work_dir).free
    text = f'work dir {work_dir} has {free / 1e6:.0f} MB free; a checkpoint of this run takes about ' \
           f'{needed / 1e6:.0f} MB (model and optimiser state)'
    if free < needed:
        raise PreflightError(f'{text}: not even one fits; free space or choose another --work-dir')
    if free < CHECKPOINTS_OF_SPACE * needed:
        return [f'{text}: fewer than {CHECKPOINTS_OF_SPACE} fit (last.pth is replaced through a temporary copy)']
    return []


def list_dataset(dataset_cfg):
    """The dataset with its image list built (one directory walk, kept for
    the run in this process), and the seconds the listing took."""
    import copy
    from mmengine.registry import DATASETS
    from ..data.datasets import keep_next_listing
    began = time.time()
    keep_next_listing()
    try:
        dataset = DATASETS.build({**copy.deepcopy(dataset_cfg), 'pipeline': [], 'lazy_init': False})
    finally:
        keep_next_listing(False)
    return dataset, time.time() - began
