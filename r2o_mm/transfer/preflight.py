"""The pre-flight of ``tools/transfer.sh``: everything that can be checked in
one process before any torchrun starts, and the plan the launcher follows.

    python -m r2o_mm.transfer.preflight CHECKPOINT --gpus N --tasks voc coco_1x
                                        [--nnodes M] [--work-dir DIR] [--backbone FILE]
                                        [--cfg-options k=v ...]

1. The checkpoint is hashed (sha256): transfer runs are keyed by *what* was
   transferred, not by its file name. The default work dir is
   ``work_dirs/transfer/<checkpoint's folder>/<checkpoint name>-<sha256[:8]>``,
   so ``.../full/epoch_200.pth`` and ``.../no_slic/epoch_200.pth`` never share
   one, and a checkpoint replaced in place gets a new one.
2. Each task's config, options and dataset layout are checked, its model is
   built and run once on a small zero image (a channel mismatch shows here),
   and its protocol's ResNet depth is compared with the checkpoint's: every
   problem of a task is one line, all of them at once, and that task is not
   started (the others are).
3. A task whose ``metrics.json`` exists is "done earlier" only when it names
   the same checkpoint sha256 and the same config fingerprint; otherwise the
   pre-flight stops with one line per difference, before anything is
   exported or trained.
4. ``backbone.pth`` is (re-)exported when missing or when its source record
   names another checkpoint.

Human-readable lines go to stderr; the plan goes to stdout, one
tab-separated line each: ``WORK_DIR <dir>``, then ``RUN <task>``,
``DONE <task> <metrics.json>`` or ``FAILED <task> <reason>``. Exit status 2:
nothing can run (bad checkpoint, unknown task, too many processes, every task
refused), 1: a work dir that belongs to another checkpoint or config.

A task is refused (one line per problem) when its dataset is missing, when
its config, with the options applied, does not build its model or the model
does not run, or when the checkpoint's ResNet depth (read from its tensors)
is not the protocol's: that line gives the complete CFG_OPTIONS that run it
at the checkpoint's depth.
"""
from __future__ import annotations

import argparse
import json
import os
import os.path as osp
import sys

from ..data.datasets import DatasetLayoutError
from ..utils.checkpoint import CheckpointReadError, file_sha256
from ..utils.config import OptionsAction
from .export import ExportError, export_backbone, read_source_record
from .run import TASKS, check_dataset_layout, prepare_config
from .small import as_cli


def default_work_dir(checkpoint: str, sha256: str, root: str = 'work_dirs/transfer') -> str:
    """``<root>/<checkpoint's folder name>/<checkpoint stem>-<sha256[:8]>``."""
    folder = osp.basename(osp.dirname(osp.abspath(checkpoint))) or 'root'
    stem = osp.splitext(osp.basename(checkpoint))[0]
    return osp.join(root, folder, f'{stem}-{sha256[:8]}')


def earlier_result_conflict(metrics_path: str, checkpoint_sha256: str, config_sha256: str) -> str | None:
    """None when ``metrics_path`` records this checkpoint and this config,
    else what differs, in words."""
    try:
        with open(metrics_path) as handle:
            earlier = json.load(handle)
    except (OSError, ValueError) as error:
        return f'{metrics_path} is unreadable ({error})'
    differences = []
    if earlier.get('checkpoint_sha256') != checkpoint_sha256:
        found = earlier.get('checkpoint_sha256')
        differences.append(f"it was trained from checkpoint {earlier.get('checkpoint', '?')} "
                           + (f'(sha256 {found[:12]}...)' if found else '(no sha256 recorded)')
                           + f', not this one (sha256 {checkpoint_sha256[:12]}...)')
    if earlier.get('config_sha256') != config_sha256:
        differences.append('its config or --cfg-options differ from this run\'s')
    if not differences:
        return None
    return f'{metrics_path} exists but ' + ' and '.join(differences)


# Blocks per stage -> depth, for the torchvision ResNets (18/34: basic blocks, 50+: bottlenecks).
_RESNET_DEPTHS = {((2, 2, 2, 2), False): 18, ((3, 4, 6, 3), False): 34, ((3, 4, 6, 3), True): 50,
                  ((3, 4, 23, 3), True): 101, ((3, 8, 36, 3), True): 152}


def resnet_depth(state: dict) -> int | None:
    """The depth of a torchvision-layout ResNet state_dict, from its keys
    (blocks per stage and whether blocks have a third conv); None when it is
    none of 18, 34, 50, 101, 152."""
    blocks = tuple(len({k.split('.')[1] for k in state if k.startswith(f'layer{i}.')}) for i in range(1, 5))
    bottleneck = any('.conv3.' in k for k in state)
    return _RESNET_DEPTHS.get((blocks, bottleneck))


def build_task_model(cfg):
    """Builds the task's model (mmdet, mmseg or mmpretrain) as the run will,
    without loading weights: a bad ``model.*`` option fails here, in one process."""
    scope = cfg.get('default_scope', 'mmdet')
    if scope == 'mmpretrain':
        from mmpretrain.registry import MODELS
        from mmpretrain.utils import register_all_modules
    elif scope == 'mmseg':
        from mmseg.registry import MODELS
        from mmseg.utils import register_all_modules
    else:
        from mmdet.registry import MODELS
        from mmdet.utils import register_all_modules
    import warnings
    register_all_modules(init_default_scope=False)
    with warnings.catch_warnings():  # the libraries' deprecation notes would bury the one line that matters
        warnings.simplefilter('ignore')
        return MODELS.build(cfg.model)


# Output channels of the four ResNet stages: basic blocks (18, 34), bottlenecks (50 and deeper).
_STAGE_CHANNELS = {False: [64, 128, 256, 512], True: [256, 512, 1024, 2048]}


def depth_options(cfg, depth: int) -> dict:
    """The options that run the task's model on a ResNet-``depth`` backbone:
    the depth, and the ``in_channels`` of the modules fed by the backbone
    (mmdet's neck, mmseg's decode and auxiliary heads, mmpretrain's head)
    mapped stage by stage from the configured depth's channels."""
    now = cfg.model.backbone.get('depth', 50)
    mapping = dict(zip(_STAGE_CHANNELS[now >= 50], _STAGE_CHANNELS[depth >= 50]))
    options = {'model.backbone.depth': depth}
    neck = cfg.model.get('neck') or {}
    for name in ('neck', 'decode_head', 'auxiliary_head', 'head'):
        part = cfg.model.get(name) or {}
        if 'in_channels' not in part or (name == 'head' and 'in_channels' in neck):
            continue  # a head behind a neck with channels is fed by the neck
        value = part['in_channels']
        if isinstance(value, (list, tuple)):
            value = list(value)
            new = [mapping.get(v, v) for v in value]
        else:
            new = mapping.get(value, value)
        if new != value:
            options[f'model.{name}.in_channels'] = new
    return options


def forward_once(model, size: int = 64) -> None:
    """Runs the built task model on one zero image of ``size`` px, as far as
    every module fed by the backbone (backbone and neck, then each head that
    takes features): a channel mismatch fails here, in one process."""
    import torch
    model.eval()
    with torch.no_grad():
        features = model.extract_feat(torch.zeros(1, 3, size, size))
        for name in ('decode_head', 'auxiliary_head', 'head'):
            head = getattr(model, name, None)
            if head is not None and callable(head):
                head(features)


def _one_line(error: Exception) -> str:
    return f'{type(error).__name__}: {error}'.replace('\n', ' ')


def visible_gpus() -> int:
    import torch
    return torch.cuda.device_count()


def preflight(checkpoint: str, tasks: list[str], gpus: int, nnodes: int = 1, work_dir: str | None = None,
              cfg_options: dict | None = None, say=lambda line: print(line, file=sys.stderr),
              backbone: str | None = None) -> tuple[int, list]:
    """Returns (exit status, plan lines). See the module docstring.
    ``backbone``: where the export goes (default ``<work dir>/backbone.pth``;
    several fine-tuning seeds, each in its own work dir, share one)."""
    if not osp.isfile(checkpoint):
        say(f'checkpoint {checkpoint}: no such file')
        return 2, []
    unknown = [task for task in tasks if task not in TASKS]
    if unknown:
        say(f'unknown transfer task {", ".join(unknown)}; choose from {", ".join(TASKS)}')
        return 2, []
    available = visible_gpus()
    if available and gpus > available:
        say(f'{gpus} processes per node asked for, but only {available} GPUs are visible')
        return 2, []
    sha256 = file_sha256(checkpoint)
    out = work_dir or default_work_dir(checkpoint, sha256)
    backbone = backbone or osp.join(out, 'backbone.pth')
    plan, conflicts, depths = [('WORK_DIR', out)], [], {}
    problems: dict = {}  # task -> every problem found, one line each
    for task in tasks:
        task_dir = osp.join(out, task)
        try:
            cfg, info = prepare_config(task, backbone, task_dir, cfg_options, pretrained=checkpoint,
                                       check_backbone=False, check_data=False)
        except Exception as error:  # noqa: BLE001  one line per problem, whatever it is
            problems[task] = [_one_line(error)]
            continue
        found = problems.setdefault(task, [])
        try:
            check_dataset_layout(cfg, TASKS[task][1])
        except DatasetLayoutError as error:
            found.append(_one_line(error))
        try:
            forward_once(build_task_model(cfg))
        except Exception as error:  # noqa: BLE001  a bad model.* option (CFG_OPTIONS) or config
            found.append(f'config error in model: {_one_line(error)}')
        else:
            depths[task] = (cfg.model.backbone.get('depth'), cfg)
        if found:
            continue
        metrics = osp.join(task_dir, 'metrics.json')
        if osp.exists(metrics):
            conflict = earlier_result_conflict(metrics, sha256, info['config_sha256'])
            if conflict:
                conflicts.append(f'{task}: {conflict}; choose another WORK_DIR or remove {task_dir}')
            else:
                plan.append(('DONE', task, metrics))
            continue
        plan.append(('RUN', task))
    if conflicts:
        for line in conflicts:
            say(line)
        return 1, []
    os.makedirs(out, exist_ok=True)
    os.makedirs(osp.dirname(osp.abspath(backbone)), exist_ok=True)
    record = read_source_record(backbone)
    if not osp.isfile(backbone) or not record or record['source_sha256'] != sha256:
        try:
            state = export_backbone(checkpoint, backbone, source_sha256=sha256)
        except (CheckpointReadError, ExportError) as error:
            say(f'cannot export {checkpoint}: {error}')
            return 2, []
        say(f'exported {len(state)} tensors of {checkpoint} (sha256 {sha256}) to {backbone}')
    else:
        import torch
        state = torch.load(backbone, map_location='cpu', weights_only=True, mmap=True)  # its keys are enough
        say(f'{backbone} is the export of {checkpoint} (sha256 {sha256[:12]}...)')
    depth = resnet_depth(state)
    for task, (wanted, cfg) in depths.items():
        if wanted and depth and wanted != depth:
            options = ' '.join(as_cli(depth_options(cfg, depth)))
            problems[task].append(f'{checkpoint} holds a ResNet-{depth}; the {task} protocol is a ResNet-{wanted} '
                                  f'(to run it anyway, recorded as a deviation, add to CFG_OPTIONS: {options})')
    failed = {task: found for task, found in problems.items() if found}
    plan = [line for line in plan if line[0] == 'WORK_DIR' or line[1] not in failed]
    plan += [('FAILED', task, '; '.join(found)) for task, found in failed.items()]
    for task, found in failed.items():  # after the checkpoint: a bad checkpoint is the one line it prints
        for reason in found:
            say(f'{task}: {reason}')
    if not available and (gpus > 1 or nnodes > 1) and any(line[0] == 'RUN' for line in plan):
        say(f'no GPU visible: {gpus} CPU process(es) per node will run (gloo backend)')
    for line in plan:
        if line[0] == 'FAILED':
            os.makedirs(osp.join(out, line[1]), exist_ok=True)
            with open(osp.join(out, line[1], 'FAILED'), 'w') as handle:
                handle.write(f'pre-flight: {line[2]}\n')
    if not any(line[0] in ('RUN', 'DONE') for line in plan[1:]):
        return 2, []  # nothing can run: the lines above say why
    return 0, plan


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('checkpoint')
    parser.add_argument('--tasks', nargs='+', required=True)
    parser.add_argument('--gpus', type=int, default=1)
    parser.add_argument('--nnodes', type=int, default=1)
    parser.add_argument('--work-dir')
    parser.add_argument('--backbone', help='where the export goes (default: WORK_DIR/backbone.pth)')
    parser.add_argument('--cfg-options', nargs='+', action=OptionsAction, default={})
    args = parser.parse_args(argv)
    import r2o_mm  # noqa: F401  registers modules, allow-lists checkpoint classes
    status, plan = preflight(args.checkpoint, args.tasks, args.gpus, args.nnodes, args.work_dir,
                             args.cfg_options, backbone=args.backbone)
    for line in plan:
        print('\t'.join(line))
    sys.exit(status)


if __name__ == '__main__':
    main()
