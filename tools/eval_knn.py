"""k-NN top-1/top-5 accuracy from frozen features (Table 4).

    python tools/eval_knn.py CHECKPOINT --train data/imagenet/train --val data/imagenet/val
                             [--classes data/imagenet/imagenet100.txt] [--k 20] [--temperature 0.07]

Global-average-pooled, L2-normalised features of the online encoder;
weighted voting exp(similarity / T) over the k nearest training images.
--classes restricts both splits to a class list (ImageNet-100). Writes
knn_metrics.json (read by tools/collect_results.py) in --out.
"""
import argparse
import os
import sys

import torch


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('checkpoint')
    parser.add_argument('--train', required=True, help='training images, <root>/<class>/<image>')
    parser.add_argument('--val', required=True, help='validation images, <root>/<class>/<image>')
    parser.add_argument('--classes', help='class list file (one folder per line), e.g. ImageNet-100')
    parser.add_argument('--k', type=int, default=20)
    parser.add_argument('--temperature', type=float, default=0.07)
    parser.add_argument('--batch-size', type=int, default=128)
    parser.add_argument('--workers', type=int, default=8)
    parser.add_argument('--out', help='output folder (default: next to the checkpoint)')
    parser.add_argument('--device', default='cuda' if torch.cuda.is_available() else 'cpu')
    args = parser.parse_args(argv)

    import r2o_mm  # noqa: F401
    from r2o_mm.data.datasets import DatasetLayoutError
    from r2o_mm.evaluation.encoder import Progress, load_encoder
    from r2o_mm.utils.io import write_json
    from r2o_mm.utils.machine import machine_fingerprint
    from r2o_mm.evaluation.knn import (extract_features, knn_predict, labelled_folder, read_class_list,
                                       topk_accuracy)
    from r2o_mm.transfer.export import ExportError
    from r2o_mm.utils.checkpoint import CheckpointReadError
    try:
        classes = read_class_list(args.classes) if args.classes else None
        train, classes = labelled_folder(args.train, classes)
        val, _ = labelled_folder(args.val, classes)
        encoder = load_encoder(args.checkpoint, args.device)
    except (DatasetLayoutError, CheckpointReadError, ExportError) as error:
        sys.exit(f'eval_knn: {error}')
    features = {}
    for name, samples in (('train', train), ('val', val)):
        progress = Progress(len(samples), f'{name} features')
        features[name] = extract_features(encoder, samples, args.batch_size, args.workers, args.device,
                                          progress=progress.update)
    scores = knn_predict(*features['train'], features['val'][0], len(classes), args.k, args.temperature)
    metrics = topk_accuracy(scores, features['val'][1])
    out = args.out or os.path.join(os.path.dirname(os.path.abspath(args.checkpoint)), 'eval_knn')
    write_json(os.path.join(out, 'knn_metrics.json'), {
        'benchmark': 'knn', 'protocol': f'k-NN k={args.k} T={args.temperature}, {len(classes)} classes',
        'checkpoint': os.path.abspath(args.checkpoint), 'num_train': len(train), 'num_val': len(val),
        'metrics': metrics, 'machine': machine_fingerprint(), 'finished': True})
    print(f"k-NN ({len(classes)} classes, {len(train)} train / {len(val)} val): "
          + ', '.join(f'{k} {v:.2f}' for k, v in metrics.items()) + f'; written to {out}')


if __name__ == '__main__':
    main()
