"""Dense linear probe on frozen features (VOC layout), several seeds.

    python tools/eval_linear_probe.py CHECKPOINT --data data/VOCdevkit/VOC2012
        [--seeds 5] [--size 128] [--epochs 60] [--classes 21] [--out DIR]

CHECKPOINT: any checkpoint tools/export_backbone.py reads (the online encoder
is probed). The encoder is frozen (BatchNorm in eval mode); a per-pixel
linear classifier on its last feature map, upsampled to the labels, is trained
on `train` and scored on `val` (mIoU), once per seed. Writes
probe_metrics.json (each seed's mIoU, mean, standard deviation and 95%
confidence interval), read by tools/collect_results.py.
"""
import argparse
import json
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('checkpoint')
    parser.add_argument('--data', required=True, help='VOC-layout root (JPEGImages, SegmentationClass, '
                        'ImageSets/Segmentation/{train,val}.txt)')
    parser.add_argument('--seeds', type=int, default=5)
    parser.add_argument('--size', type=int, default=128)
    parser.add_argument('--epochs', type=int, default=60)
    parser.add_argument('--classes', type=int, default=21)
    parser.add_argument('--out', help='output folder (default: next to the checkpoint)')
    args = parser.parse_args(argv)
    import r2o_mm  # noqa: F401
    import torch
    from r2o_mm.data.datasets import DatasetLayoutError
    from r2o_mm.evaluation.encoder import load_encoder
    from r2o_mm.evaluation.linear_probe import linear_probe
    from r2o_mm.results.statistics import summarise
    from r2o_mm.utils.checkpoint import CheckpointReadError
    try:
        encoder = load_encoder(args.checkpoint, 'cuda' if torch.cuda.is_available() else 'cpu')
        runs = linear_probe(encoder, args.data, range(args.seeds), args.size, args.classes, args.epochs)
    except (DatasetLayoutError, CheckpointReadError, ValueError) as error:
        sys.exit(f'eval_linear_probe: {error}')
    from r2o_mm.utils.machine import machine_fingerprint
    summary = summarise([run['mIoU'] for run in runs])
    out = args.out or os.path.dirname(os.path.abspath(args.checkpoint))
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, 'probe_metrics.json'), 'w') as handle:
        json.dump({'benchmark': 'voc_probe', 'protocol': f'dense linear probe, frozen, {args.size}px, '
                   f'{args.epochs} epochs', 'checkpoint': os.path.abspath(args.checkpoint), 'data': args.data,
                   'runs': runs, 'summary': summary, 'variance_source': 'probe seed',
                   'machine': machine_fingerprint(), 'finished': True}, handle, indent=2)
    print(f"linear probe mIoU: {summary['mean']:.2f} ± {summary['std']:.2f} over {summary['n']} seeds, "
          f"95% CI [{summary['ci_low']:.2f}, {summary['ci_high']:.2f}]")


if __name__ == '__main__':
    main()
