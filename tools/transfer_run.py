"""Train and test one transfer task from an exported encoder.

    python tools/transfer_run.py TASK --backbone BACKBONE.pth --work-dir DIR
                                 [--config FILE] [--cfg-options k=v ...] [--launcher pytorch]

TASK: coco_1x, coco_2x, coco_mocov2_1x, voc, cityscapes, imagenet_linear,
imagenet_semi_1pct, imagenet_semi_10pct (the config of
configs/transfer/ it uses is in r2o_mm/transfer/run.py; --config overrides).
Writes run_info.json at start and metrics.json at the end in DIR.
tools/transfer.sh runs several tasks, exporting the backbone once.
"""
import argparse
import os
import sys

from mmengine.config import DictAction


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('task')
    parser.add_argument('--backbone', required=True, help='exported encoder (torchvision or mmcv format)')
    parser.add_argument('--work-dir', required=True)
    parser.add_argument('--config', help='use this config instead of the task default')
    parser.add_argument('--pretrained', help='the pretraining checkpoint BACKBONE was exported from '
                        '(recorded in the metrics for the results tables)')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction, default={})
    parser.add_argument('--launcher', choices=['none', 'pytorch', 'slurm'], default='none')
    parser.add_argument('--local-rank', '--local_rank', type=int, default=0, dest='local_rank')
    args = parser.parse_args(argv)
    os.environ.setdefault('LOCAL_RANK', str(args.local_rank))

    import warnings
    # mmseg's deprecation notes about its own internals, printed at every model build: nothing a user can act on.
    for note in ('``build_loss`` would be deprecated', 'Default ``avg_non_ignore`` is False'):
        warnings.filterwarnings('ignore', message=note)
    import r2o_mm  # noqa: F401
    from r2o_mm.data.datasets import DatasetLayoutError
    from r2o_mm.transfer.run import prepare_config, run_transfer
    try:
        cfg, info = prepare_config(args.task, args.backbone, args.work_dir, args.cfg_options,
                                   args.launcher, args.config, args.pretrained)
    except (DatasetLayoutError, FileNotFoundError, ValueError) as error:
        sys.exit(f'{args.task}: {error}')
    from r2o_mm.utils.dist import configure_cpu_processes
    changes = configure_cpu_processes(cfg)
    if changes and info.get('protocol_deviations') is not None:
        info['protocol_deviations'] += changes
    result = run_transfer(cfg, info)
    from r2o_mm.utils.dist import close_process_group
    close_process_group()
    print('metrics: ' + ', '.join(f'{k}={v:.4f}' for k, v in result['metrics'].items()))


if __name__ == '__main__':
    main()
