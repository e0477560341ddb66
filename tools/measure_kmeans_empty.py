"""How often K-means hits an empty cluster at the paper's settings (Quirk Q8).

    python tools/measure_kmeans_empty.py [--checkpoint CKPT] [--depth 50] [--batch 32]
        [--size 224] [--ks 128 64 16 4] [--seeds 16] [--data DIR] [--out FILE.json]

Images: photographs shipped with scikit-image (crops) and generated scenes,
written to --data on first use. Masks are predicted as in pretraining: raw
view at --size, SLIC 100 segments, layer3 descriptors of the target encoder
(of --checkpoint, or a random init), K-means over each batch's superpixels.
Prints, per K, the calls and the share that hit an empty cluster: with the
released K-means each of those collapsed its batch into one cluster.
"""
import argparse
import json
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--checkpoint', help='training checkpoint (its target encoder) or exported '
                        'encoder; default: a random init')
    parser.add_argument('--depth', type=int, default=50)
    parser.add_argument('--batch', type=int, default=32, help='images per K-means call (per GPU)')
    parser.add_argument('--size', type=int, default=224)
    parser.add_argument('--ks', type=int, nargs='+', default=[128, 64, 16, 4])
    parser.add_argument('--seeds', type=int, default=16, help='K-means seedings per batch (16: 64 calls per K with the 128 images)')
    parser.add_argument('--data', default='work_dirs/kmeans_empty/data')
    parser.add_argument('--out', help='write the rows as JSON here')
    args = parser.parse_args(argv)

    import torch
    import r2o_mm  # noqa: F401  allow-lists checkpoint classes
    from r2o_mm.analysis.kmeans_empty import empty_cluster_rates, load_mask_encoder, write_measurement_images
    from r2o_mm.transfer.export import ExportError
    from r2o_mm.utils.checkpoint import CheckpointReadError
    try:
        encoder = load_mask_encoder(args.checkpoint, args.depth)
    except (CheckpointReadError, ExportError) as error:
        sys.exit(f'measure_kmeans_empty: {error}')
    from r2o_mm.evaluation.mask_prediction import raw_views
    from r2o_mm.data.datasets import list_images
    root = write_measurement_images(args.data)
    paths = [os.path.join(root, 'train', key) for key in list_images(os.path.join(root, 'train'))]
    # Interleave photographs and scenes so every batch holds both.
    photos = [p for p in paths if '/photos/' in p]
    scenes = [p for p in paths if '/scenes/' in p]
    mixed = [p for pair in zip(scenes[::3], scenes[1::3], scenes[2::3], photos) for p in pair]
    device = 'cuda' if torch.cuda.is_available() else 'cpu'
    raws, labels = raw_views(mixed, args.size)
    rows = empty_cluster_rates(encoder, raws, labels, args.ks, args.batch, args.seeds, device)
    source = args.checkpoint or f'random init (ResNet-{args.depth})'
    print(f'K-means empty clusters, {source}: {len(mixed)} images ({len(photos)} photographs), '
          f'{args.batch} per call, {args.size}px, SLIC 100')
    print('| K | calls | hit an empty cluster | rate |\n|---|---|---|---|')
    for row in rows:
        print(f"| {row['K']} | {row['calls']} | {row['hit_empty']} | {100 * row['rate']:.1f}% |")
    if args.out:
        os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
        with open(args.out, 'w') as handle:
            json.dump({'encoder': source, 'images': len(mixed), 'rows': rows}, handle, indent=2)


if __name__ == '__main__':
    main()
