"""Pretrain R2O with mmengine's Runner.

    python tools/train.py CONFIG [--work-dir DIR] [--resume [CHECKPOINT]] [--amp]
                          [--cfg-options key=value ...] [--launcher none|pytorch|slurm]

Multi-GPU and multi-node runs go through tools/dist_train.sh (torchrun) or
tools/slurm_train.sh, which call this script with --launcher.
"""
import argparse
import os
import os.path as osp
import signal
import sys

# A preemption signal (Slurm's time-limit warning, a requeue's SIGTERM) that arrives while this process still
# imports torch and mmengine would end it with the signal's default action, and a requeued job that is
# signalled during its start-up would fail instead of saving: from here on it is remembered, and
# PreemptionHook acts on it at the first iteration (main() hands it over). Only in a process of its own: the
# tests call main() in process.
SIGNALS_DURING_IMPORT: list[int] = []
if __name__ == '__main__':
    for _name in ('SIGTERM', 'SIGUSR1'):
        signal.signal(getattr(signal, _name), lambda number, frame: SIGNALS_DURING_IMPORT.append(number))

import torch  # noqa: E402
from mmengine.config import Config  # noqa: E402
from mmengine.registry import RUNNERS  # noqa: E402
from mmengine.runner import Runner  # noqa: E402

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
sys.path.insert(0, ROOT)  # r2o_mm from this checkout, also before it is installed
from r2o_mm.utils.config import OptionsAction  # noqa: E402


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Pretrain R2O')
    parser.add_argument('config', help='pretraining config file')
    parser.add_argument('--work-dir', help='where logs and checkpoints go '
                        '(default: work_dirs/<config name>)')
    parser.add_argument('--resume', nargs='?', const='auto', default=None,
                        help='resume from CHECKPOINT, or from the latest one in the work dir '
                        'when no path is given')
    parser.add_argument('--amp', action='store_true',
                        help='bfloat16 autocast of the forward pass, on CPU or GPU (the paper used fp32)')
    parser.add_argument('--cfg-options', nargs='+', action=OptionsAction, default={},
                        help='override config values, e.g. train_dataloader.batch_size=16')
    parser.add_argument('--overwrite', action='store_true',
                        help='start over in a work dir that holds checkpoints of another run (or of this one), '
                        'removing them; without it such a work dir is refused unless --resume')
    parser.add_argument('--launcher', choices=['none', 'pytorch', 'slurm', 'mpi'], default='none')
    parser.add_argument('--check-only', action='store_true',
                        help='validate the config and the dataset layout in this one process and exit '
                        '(the launchers run this before starting any worker)')
    parser.add_argument('--check-processes', type=int, default=0,
                        help='with --check-only: the number of processes per node about to start; '
                        'says once when they will be CPU processes')
    parser.add_argument('--check-world-size', type=int, default=0,
                        help='with --check-only: the number of processes of the whole run (default: '
                        '--check-processes x $NNODES), for the steps per epoch')
    parser.add_argument('--local-rank', '--local_rank', type=int, default=0, dest='local_rank')
    args = parser.parse_args(argv)
    os.environ.setdefault('LOCAL_RANK', str(args.local_rank))
    return args


def build_config(args) -> Config:
    import r2o_mm  # noqa: F401  registers modules, allow-lists checkpoint classes
    from r2o_mm.utils.config import load_config, unfollowed_options
    cfg = load_config(args.config, args.cfg_options)  # one line for a missing or unreadable config
    unfollowed = unfollowed_options(args.config, cfg, args.cfg_options)
    if unfollowed:
        sys.exit(unfollowed[0])
    cfg.launcher = args.launcher
    cfg.work_dir = args.work_dir or cfg.get('work_dir') or osp.join(
        'work_dirs', osp.splitext(osp.basename(args.config))[0])
    from r2o_mm.utils.config import add_wandb_backend
    add_wandb_backend(cfg)
    if args.amp:  # bf16 autocast on CPU and GPU alike; R2O's region arithmetic stays float32
        cfg.optim_wrapper.type = 'BF16AutocastOptimWrapper'
    from r2o_mm.engine.preflight import run_fingerprint
    cfg.run_fingerprint = run_fingerprint(cfg)  # recorded in every checkpoint (whose run a work dir holds)
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


def check_run(cfg: Config, processes: int = 0, world_size: int = 0, overwrite: bool = False):
    """Check the type and range of every value handed to a class, build what
    a bad value would break (model, optimiser, hooks, train loop, data loader; the documented switches Q1-Q10 are checked where they
    are used), list the dataset and decode a sample of it, check that the
    work dir can be written and holds no other run, and check the --resume
    file; exit with one line naming the key or the path."""
    import copy
    from mmengine.optim import build_optim_wrapper
    from mmengine.registry import DATASETS, HOOKS, MODELS
    from r2o_mm.data.datasets import DatasetLayoutError
    from r2o_mm.engine import preflight
    from r2o_mm.engine.resume import checkpoint_problem, model_mismatch, outside_work_dir
    resuming = bool(cfg.get('resume') and cfg.get('load_from'))
    if resuming:
        problem = checkpoint_problem(cfg.load_from)
        if problem:
            sys.exit(f'--resume {cfg.load_from}: {problem}')
    from r2o_mm.engine.config_values import check_config_values
    try:  # the type and range of every value handed to a class, before building anything
        check_config_values(cfg)
    except preflight.PreflightError as error:
        sys.exit(str(error))
    model = None
    parts = [('model', cfg.model, MODELS)]
    parts += [(f"custom_hooks ({hook['type']})", hook, HOOKS) for hook in cfg.get('custom_hooks', [])]
    parts += [(f'default_hooks.{name}', hook, HOOKS) for name, hook in cfg.get('default_hooks', {}).items()
              if hook]
    dataset = copy.deepcopy(cfg.train_dataloader.dataset)
    dataset['lazy_init'] = True  # the folders first; the listing below
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
    if resuming:
        different = model_mismatch(cfg.load_from, model)
        if different:
            sys.exit(f'--resume {cfg.load_from}: the checkpoint holds another model ({different}); '
                     'refusing to resume (check --cfg-options model.* and the config)')
        outside = outside_work_dir(cfg.load_from, cfg.work_dir)
        if outside:
            print(outside, file=sys.stderr)
    if processes:
        gpus = torch.cuda.device_count()
        if gpus == 0:
            print(f'no GPU visible: {processes} CPU processes (gloo backend, plain BN) will run', file=sys.stderr)
        elif processes > gpus:
            sys.exit(f'{processes} processes per node asked for, but only {gpus} GPUs are visible')
    world_size = world_size or max(processes, 1) * int(os.environ.get('NNODES', 1))
    try:
        preflight.check_train_loop(cfg.train_cfg)
        preflight.check_dataloader(cfg.train_dataloader)
        listed, seconds = preflight.list_dataset(cfg.train_dataloader.dataset)
        sample = preflight.sample_dataset(listed)
        accumulation = cfg.optim_wrapper.get('accumulative_counts', 1)
        steps = preflight.check_steps(len(listed), cfg.train_dataloader, world_size, accumulation)
        notes = preflight.check_work_dir(cfg.work_dir, preflight.checkpoint_bytes(
            model, cfg.optim_wrapper.get('optimizer', {}).get('type', '')))
        if not resuming:
            notes += preflight.check_work_dir_owner(cfg.work_dir, cfg.run_fingerprint, overwrite)
    except DatasetLayoutError as error:
        sys.exit(f'dataset error: {error}')
    except preflight.PreflightError as error:
        sys.exit(str(error))
    if sample['first_unreadable']:
        path, reason = sample['first_unreadable']
        notes.append(f"{sample['sampled'] - sample['decoded']} of {sample['sampled']} sampled images do not decode "
                     f'(first: {path}: {reason}); they will be skipped')
    for line in notes:
        print(line, file=sys.stderr)
    print(f'{osp.basename(cfg.filename)}: config OK; {len(listed)} images listed in {seconds:.1f} s, '
          f"{sample['decoded']} of {sample['sampled']} sampled decode; {steps} optimiser steps per epoch "
          f'with {world_size} process(es)', file=sys.stderr)


def main(argv=None):
    args = parse_args(argv)
    if args.check_only and __name__ == '__main__':  # a check has nothing to save: a signal ends it as before
        for number in (signal.SIGTERM, signal.SIGUSR1):
            signal.signal(number, signal.SIG_DFL)
        for number in SIGNALS_DURING_IMPORT:
            os.kill(os.getpid(), number)
    cfg = build_config(args)
    if args.check_only:
        check_run(cfg, args.check_processes, args.check_world_size, args.overwrite)
        return
    if args.launcher == 'none':  # the launchers ran the check once before starting workers
        check_run(cfg, overwrite=args.overwrite)
    from r2o_mm.data.datasets import DatasetLayoutError
    from r2o_mm.engine.health import NonFiniteLossError
    from r2o_mm.engine.resume import CheckpointWriteError, NoTrainingStepError, catch_early_signals
    from r2o_mm.utils.dist import configure_cpu_processes
    configure_cpu_processes(cfg)
    catch_early_signals()  # a preemption signal during start-up is acted on at the first iteration
    from r2o_mm.engine.resume import EARLY_SIGNALS
    EARLY_SIGNALS.extend(SIGNALS_DURING_IMPORT)  # those that came while this script imported and checked
    from r2o_mm.engine.console import closing_line, run_header
    from r2o_mm.transfer.run import launcher_world_size
    main_process = int(os.environ.get('RANK', os.environ.get('SLURM_PROCID', 0))) == 0
    if main_process:
        print(run_header(osp.basename(args.config), cfg.work_dir, launcher_world_size(args.launcher),
                         cfg.load_from if cfg.get('resume') else None), flush=True)
    try:
        runner = RUNNERS.build(cfg) if 'runner_type' in cfg else Runner.from_cfg(cfg)
        runner.train()
        from r2o_mm.utils.dist import close_process_group
        close_process_group()
        if main_process:
            print(closing_line(cfg.work_dir, runner.log_dir), flush=True)
    except DatasetLayoutError as error:
        sys.exit(f'dataset error: {error}')
    except NonFiniteLossError as error:
        sys.exit(f'stopped: {error}')
    except (CheckpointWriteError, NoTrainingStepError) as error:
        sys.exit(f'stopped: {error}')
    except KeyboardInterrupt:
        sys.exit(f'interrupted: nothing saved after {kept_checkpoint(cfg.work_dir)}')


def kept_checkpoint(work_dir: str) -> str:
    """What a resume of ``work_dir`` would continue from, in words."""
    from r2o_mm.engine.resume import resolve_resume
    latest = resolve_resume(work_dir, say=lambda line: None) if osp.isdir(work_dir) else None
    return f'{latest} (continue with --resume)' if latest else 'the start (no checkpoint in the work dir yet)'


if __name__ == '__main__':
    try:
        main()
    except KeyboardInterrupt:  # Ctrl-C before training started (during training: main says what was kept)
        sys.exit('interrupted before training started; nothing was written')
