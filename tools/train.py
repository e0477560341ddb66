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
from mmengine.runner import Runner


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
    parser.add_argument('--local-rank', '--local_rank', type=int, default=0, dest='local_rank')
    args = parser.parse_args(argv)
    os.environ.setdefault('LOCAL_RANK', str(args.local_rank))
    return args


def build_config(args) -> Config:
    import r2o_mm  # noqa: F401  registers modules, allow-lists checkpoint classes
    if not osp.isfile(args.config):
        raise FileNotFoundError(f'config file {args.config} does not exist')
    cfg = Config.fromfile(args.config)
    cfg.merge_from_dict(args.cfg_options)
    cfg.launcher = args.launcher
    cfg.work_dir = args.work_dir or cfg.get('work_dir') or osp.join(
        'work_dirs', osp.splitext(osp.basename(args.config))[0])
    if args.amp:
        if not torch.cuda.is_available():
            raise SystemExit('--amp needs a CUDA GPU; run without it on CPU')
        cfg.optim_wrapper.type = 'AmpOptimWrapper'
        cfg.optim_wrapper.dtype = 'bfloat16'
    # Data workers append skipped (unreadable) images here; reported at the end.
    os.environ.setdefault('R2O_SKIPPED_IMAGES_LOG', osp.join(osp.abspath(cfg.work_dir),
                                                             'skipped_images.txt'))
    if args.resume == 'auto':
        cfg.resume, cfg.load_from = True, None
    elif args.resume:
        cfg.resume, cfg.load_from = True, args.resume
    return cfg


def main(argv=None):
    cfg = build_config(parse_args(argv))
    from r2o_mm.data.datasets import DatasetLayoutError
    from r2o_mm.utils.dist import configure_cpu_processes
    configure_cpu_processes(cfg)
    try:
        runner = Runner.from_cfg(cfg)
        runner.train()
    except DatasetLayoutError as error:
        sys.exit(f'dataset error: {error}')


if __name__ == '__main__':
    main()
