"""Pretrain R2O with mmengine's Runner.

    python tools/train.py CONFIG [--work-dir DIR] [--resume [CHECKPOINT]] [--amp]
                          [--cfg-options key=value ...] [--launcher none|pytorch|slurm]

Multi-GPU and multi-node runs go through tools/dist_train.sh (torchrun) or
tools/slurm_train.sh, which call this script with --launcher.
"""
import argparse
import os
import os.path as osp
import sys

import torch
from mmengine.config import Config, DictAction
from mmengine.registry import RUNNERS
from mmengine.runner import Runner

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Pretrain R2O')
    parser.add_argument('config', help='pretraining config file')
    parser.add_argument('--work-dir', help='where logs and checkpoints go '
                        '(default: work_dirs/<config name>)')
    parser.add_argument('--resume', nargs='?', const='auto', default=None,
                        help='resume from CHECKPOINT, or from the latest one in the work dir '
                        'when no path is given')
    parser.add_argument('--amp', action='store_true',
                        help='bfloat16 automatic mixed precision (GPU only; the paper used fp32)')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction, default={},
                        help='override config values, e.g. train_dataloader.batch_size=16')
    parser.add_argument('--launcher', choices=['none', 'pytorch', 'slurm', 'mpi'], default='none')
    parser.add_argument('--check-only', action='store_true',
                        help='validate the config and the dataset layout in this one process and exit '
                        '(the launchers run this before starting any worker)')
    parser.add_argument('--check-processes', type=int, default=0,
                        help='with --check-only: the number of processes per node about to start; '
                        'says once when they will be CPU processes')
    parser.add_argument('--local-rank', '--local_rank', type=int, default=0, dest='local_rank')
    args = parser.parse_args(argv)
    os.environ.setdefault('LOCAL_RANK', str(args.local_rank))
    return args


def missing_config_message(path: str) -> str:
    """One line for a config path that does not exist, with the nearest names."""
    import difflib
    import glob
    folder = osp.dirname(path) or '.'
    candidates = sorted(osp.basename(p) for p in glob.glob(osp.join(folder, '*.py')))
    close = difflib.get_close_matches(osp.basename(path), candidates, n=3, cutoff=0.6)
    hint = f'; did you mean {" or ".join(osp.join(folder, c) for c in close)}?' if close else (
        f'; configs are in {ROOT}/configs' if not candidates else '')
    return f'config file {path} does not exist{hint}'


def build_config(args) -> Config:
    import r2o_mm  # noqa: F401  registers modules, allow-lists checkpoint classes
    if not osp.isfile(args.config):
        sys.exit(missing_config_message(args.config))
    try:
        cfg = Config.fromfile(args.config)
        cfg.merge_from_dict(args.cfg_options)
    except Exception as error:  # noqa: BLE001  a syntax or merge error in the user's config: one line
        sys.exit(f'config error in {args.config}: {type(error).__name__}: {error}'.replace('\n', ' '))
    cfg.launcher = args.launcher
    cfg.work_dir = args.work_dir or cfg.get('work_dir') or osp.join(
        'work_dirs', osp.splitext(osp.basename(args.config))[0])
    from r2o_mm.utils.config import add_wandb_backend
    add_wandb_backend(cfg)
    if args.amp:
        if not torch.cuda.is_available():
            raise SystemExit('--amp needs a CUDA GPU; run without it on CPU')
        cfg.optim_wrapper.type = 'AmpOptimWrapper'
        cfg.optim_wrapper.dtype = 'bfloat16'
    # Data workers append skipped (unreadable) images here; reported at the end.
    os.environ.setdefault('R2O_SKIPPED_IMAGES_LOG', osp.join(osp.abspath(cfg.work_dir),
                                                             'skipped_images.txt'))
    if args.resume == 'auto':
        from r2o_mm.engine.resume import resolve_resume
        quiet = int(os.environ.get('RANK', os.environ.get('SLURM_PROCID', 0))) != 0
        latest = resolve_resume(cfg.work_dir, say=(lambda line: None) if quiet else
                                (lambda line: print(line, file=sys.stderr)))
        if latest:
            cfg.resume, cfg.load_from = True, latest
        elif not quiet and not args.check_only:
            print(f'--resume: no checkpoint in {cfg.work_dir} yet; starting from the beginning', file=sys.stderr)
    elif args.resume:
        cfg.resume, cfg.load_from = True, args.resume
    return cfg


def check_run(cfg: Config, processes: int = 0):
    """Build what a bad value would break (model, optimiser, hooks, dataset
    without listing its images; the documented switches Q1-Q10 are checked
    where they are used) and check the --resume file; exit with one line
    naming the key or the path."""
    import copy
    from mmengine.optim import build_optim_wrapper
    from mmengine.registry import DATASETS, HOOKS, MODELS
    from r2o_mm.data.datasets import DatasetLayoutError
    from r2o_mm.engine.resume import checkpoint_problem, model_mismatch
    if cfg.get('resume') and cfg.get('load_from'):
        problem = checkpoint_problem(cfg.load_from)
        if problem:
            sys.exit(f'--resume {cfg.load_from}: {problem}')
    model = None
    parts = [('model', cfg.model, MODELS)]
    parts += [(f"custom_hooks ({hook['type']})", hook, HOOKS) for hook in cfg.get('custom_hooks', [])]
    parts += [(f'default_hooks.{name}', hook, HOOKS) for name, hook in cfg.get('default_hooks', {}).items()
              if hook]
    dataset = copy.deepcopy(cfg.train_dataloader.dataset)
    dataset['lazy_init'] = True  # check the folders, do not scan a million files
    parts.append(('train_dataloader.dataset', dataset, DATASETS))
    for key, part, registry in parts:
        try:
            built = registry.build(copy.deepcopy(part))
            if key == 'model':
                model = built
                build_optim_wrapper(model, copy.deepcopy(cfg.optim_wrapper))
        except DatasetLayoutError as error:
            sys.exit(f'dataset error: {error}')
        except (ValueError, TypeError, KeyError, AttributeError) as error:
            where = 'optim_wrapper' if key == 'model' and model is not None else key
            sys.exit(f'config error in {where}: {error}')
    if cfg.get('resume') and cfg.get('load_from'):
        different = model_mismatch(cfg.load_from, model)
        if different:
            sys.exit(f'--resume {cfg.load_from}: the checkpoint holds another model ({different}); '
                     'refusing to resume (check --cfg-options model.* and the config)')
    if processes:
        gpus = torch.cuda.device_count()
        if gpus == 0:
            print(f'no GPU visible: {processes} CPU processes (gloo backend, plain BN) will run', file=sys.stderr)
        elif processes > gpus:
            sys.exit(f'{processes} processes per node asked for, but only {gpus} GPUs are visible')
    print(f'{osp.basename(cfg.filename)}: config and dataset layout OK', file=sys.stderr)


def main(argv=None):
    args = parse_args(argv)
    cfg = build_config(args)
    if args.check_only:
        check_run(cfg, args.check_processes)
        return
    if args.launcher == 'none':  # the launchers ran the check once before starting workers
        check_run(cfg)
    from r2o_mm.data.datasets import DatasetLayoutError
    from r2o_mm.engine.health import NonFiniteLossError
    from r2o_mm.utils.dist import configure_cpu_processes
    configure_cpu_processes(cfg)
    try:
        runner = RUNNERS.build(cfg) if 'runner_type' in cfg else Runner.from_cfg(cfg)
        runner.train()
        from r2o_mm.utils.dist import close_process_group
        close_process_group()
    except DatasetLayoutError as error:
        sys.exit(f'dataset error: {error}')
    except NonFiniteLossError as error:
        sys.exit(f'stopped: {error}')


if __name__ == '__main__':
    main()
