"""CUB-200-2011 unsupervised foreground/background segmentation (Table 3).

    python tools/eval_cub.py CHECKPOINT --data data/CUB_200_2011 [--k 5] [--out DIR]

Frozen encoder, no training: SLIC superpixels, layer3 descriptors, K-means
with K clusters per image, clusters named foreground/background by majority
vote against the ground truth (many-to-one matching; see
r2o_mm/evaluation/cub.py for the protocol and why). Writes DIR/cub_metrics.json
(read by tools/collect_results.py), DIR/cub_per_image.csv and
DIR/cub_examples.png.
"""
import argparse
import os
import sys

import torch


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('checkpoint')
    parser.add_argument('--data', default='data/CUB_200_2011')
    parser.add_argument('--k', type=int, default=5, help='clusters per image (paper: 5)')
    parser.add_argument('--size', type=int, default=224)
    parser.add_argument('--n-segments', type=int, default=100)
    parser.add_argument('--limit', type=int, default=0, help='evaluate only the first N test images')
    parser.add_argument('--out', help='output folder (default: next to the checkpoint)')
    parser.add_argument('--device', default='cuda' if torch.cuda.is_available() else 'cpu')
    args = parser.parse_args(argv)

    import pandas as pd

    import r2o_mm  # noqa: F401
    from r2o_mm.data.datasets import DatasetLayoutError
    from r2o_mm.evaluation.cub import evaluate_cub, read_cub_test_split, save_example_grid
    from r2o_mm.evaluation.encoder import Progress, load_encoder
    from r2o_mm.utils.io import write_json
    from r2o_mm.utils.machine import machine_fingerprint
    from r2o_mm.transfer.export import ExportError
    from r2o_mm.utils.checkpoint import CheckpointReadError
    try:
        items = read_cub_test_split(args.data)
        encoder = load_encoder(args.checkpoint, args.device)
    except (DatasetLayoutError, CheckpointReadError, ExportError) as error:
        sys.exit(f'eval_cub: {error}')
    items = items[:args.limit] if args.limit else items
    out = args.out or os.path.join(os.path.dirname(os.path.abspath(args.checkpoint)), 'eval_cub')
    os.makedirs(out, exist_ok=True)
    progress = Progress(len(items), 'CUB test images')
    metrics, rows, examples = evaluate_cub(encoder.forward_c4, items, args.size, args.k,
                                           args.n_segments, args.device, progress=progress.update,
                                           keep=6)
    pd.DataFrame(rows).to_csv(os.path.join(out, 'cub_per_image.csv'), index=False)
    save_example_grid(examples, os.path.join(out, 'cub_examples.png'))
    write_json(os.path.join(out, 'cub_metrics.json'), {
        'benchmark': 'cub', 'protocol': f'CUB-200-2011 test, K={args.k} per image, majority-vote fg/bg',
        'checkpoint': os.path.abspath(args.checkpoint), 'num_images': len(items), 'k': args.k,
        'metrics': metrics, 'machine': machine_fingerprint(), 'finished': True})
    print(f"CUB fg/bg over {len(items)} images, K={args.k}: mIoU {metrics['mIoU']:.2f} "
          f"(fg {metrics['fg_IoU']:.2f}, bg {metrics['bg_IoU']:.2f}); files in {out}")


if __name__ == '__main__':
    main()
