"""Precompute the SLIC label maps of a pretraining config's dataset.

    python tools/build_slic_cache.py CONFIG --out data/slic_cache/imagenet [--workers 16]
                                     [--cfg-options key=value ...]

Reads the dataset and the RawViewSuperpixels settings from CONFIG, computes
the maps that are missing (resumable: interrupt and run again), shows
progress with an ETA, and prints the option that makes training read the
cache.
"""
import argparse
import os
import sys

from mmengine.registry import DATASETS

# More failed images than this share: a warning and exit status 1 (the cache is usable, the data suspect).
FAILED_SHARE_WARNING = 0.01


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('config')
    parser.add_argument('--out', required=True, help='cache folder (one per dataset and SLIC setting)')
    parser.add_argument('--workers', type=int, default=os.cpu_count(), help='processes')
    from r2o_mm.utils.config import OptionsAction, load_config
    parser.add_argument('--cfg-options', nargs='+', action=OptionsAction, default={})
    args = parser.parse_args(argv)

    import r2o_mm  # noqa: F401
    from r2o_mm.data.slic_cache import build_superpixel_cache
    cfg = load_config(args.config, args.cfg_options)
    dataset_cfg = cfg.train_dataloader.dataset
    pipeline = dataset_cfg.get('pipeline', [])
    step = next((i for i, t in enumerate(pipeline) if t['type'] == 'RawViewSuperpixels'), None)
    if step is None:
        sys.exit(f'{args.config}: the train pipeline has no RawViewSuperpixels step')
    settings = {k: v for k, v in pipeline[step].items() if k != 'type'}
    from r2o_mm.data.datasets import DatasetLayoutError
    try:
        dataset = DATASETS.build({**dataset_cfg, 'pipeline': []})
    except DatasetLayoutError as error:
        sys.exit(f'dataset error: {error}')
    items = [(info['img_key'], info['img_path']) for info in
             (dataset.get_data_info(i) for i in range(len(dataset)))]
    stats = build_superpixel_cache(items, args.out, settings, args.workers)
    size_kb = sum(os.path.getsize(os.path.join(d, f)) for d, _, files in os.walk(args.out)
                  for f in files) / 1024
    cached = stats['computed'] + stats['cached_before']
    if cached == 0:
        first = f", first: {stats['first_failure']}" if stats.get('first_failure') else ''
        sys.exit(f"build_slic_cache: nothing cached: all {stats['total']} images of {dataset.data_root} failed to "
                 f'decode{first}; {args.out} is not usable')
    print(f"done: {stats['computed']} computed, {stats['cached_before']} already there, "
          f"{stats['failed']} failed, {stats['seconds']:.1f}s; cache {size_kb / 1024:.1f} MB "
          f"({size_kb / max(cached, 1):.1f} KB per image)")
    share = stats['failed'] / max(stats['total'], 1)
    if share > FAILED_SHARE_WARNING:
        print(f"warning: {stats['failed']} of {stats['total']} images ({share:.0%}, more than "
              f'{FAILED_SHARE_WARNING:.0%}) failed to decode; training skips them', file=sys.stderr)
    print(f'train with: --cfg-options train_dataloader.dataset.pipeline.{step}.cache_dir={args.out}')
    return 1 if share > FAILED_SHARE_WARNING else 0


if __name__ == '__main__':
    sys.exit(main())
