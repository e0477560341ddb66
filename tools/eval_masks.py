"""Mask quality of an encoder: mean best overlap (mBO) of the masks that R2O's
mask-prediction path makes from its features, against COCO-format objects.

    python tools/eval_masks.py CHECKPOINT --ann instances.json --images DIR
        [--k 128 16 4] [--size 224] [--batch 32] [--max-images 300] [--depth 50] [--out DIR]

CHECKPOINT: a pretraining checkpoint (its target encoder predicts masks, as in
training), any exported or torchvision encoder, or ``random`` (a random init
of --depth): the same clustering on other features is the control. Per batch
of --batch images (one GPU's batch): raw view at --size, SLIC 100, layer3
descriptors, K-means with K; each image's label map is resized to its own size
and every object scores the best IoU of any mask. Writes eval_masks.json and
mask_examples.png (Fig. 3 layout) to --out (default: next to the checkpoint).
"""
import argparse
import json
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('checkpoint', help="checkpoint, exported encoder, or 'random'")
    parser.add_argument('--ann', required=True, help='COCO-format instance annotations (JSON)')
    parser.add_argument('--images', required=True, help='folder of the annotated images')
    parser.add_argument('--k', type=int, nargs='+', default=[128, 16, 4])
    parser.add_argument('--size', type=int, default=224)
    parser.add_argument('--batch', type=int, default=32)
    parser.add_argument('--max-images', type=int, default=300)
    parser.add_argument('--depth', type=int, default=50, help='ResNet depth for random')
    parser.add_argument('--out', help='output folder (default: next to the checkpoint)')
    args = parser.parse_args(argv)

    import r2o_mm  # noqa: F401
    import torch
    from r2o_mm.analysis.kmeans_empty import load_mask_encoder
    from r2o_mm.data.datasets import DatasetLayoutError
    from r2o_mm.evaluation.mask_prediction import (load_coco_objects, mask_model_for, raw_views, save_mask_grid,
                                                   score_masks)
    from r2o_mm.utils.checkpoint import CheckpointReadError
    try:
        items = load_coco_objects(args.ann, args.images, args.max_images)
        random = args.checkpoint == 'random'
        encoder = load_mask_encoder(None if random else args.checkpoint, args.depth)
    except (DatasetLayoutError, CheckpointReadError, ValueError) as error:
        sys.exit(f'eval_masks: {error}')
    model = mask_model_for(encoder, encoder.depth).to('cuda' if torch.cuda.is_available() else 'cpu')
    views = raw_views([path for path, _ in items], args.size)
    scores, labels = score_masks(model, items, args.k, args.size, args.batch, views)
    source = f'random init (ResNet-{args.depth})' if random else args.checkpoint
    out = args.out or (os.path.dirname(os.path.abspath(args.checkpoint)) if not random else 'work_dirs/eval_masks')
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, 'eval_masks.json'), 'w') as handle:
        json.dump({'encoder': source, 'annotations': args.ann, 'images': len(items),
                   'objects': int(sum(len(o) for _, o in items)), 'size': args.size, 'batch': args.batch,
                   'mBO': {str(k): v for k, v in scores.items()}}, handle, indent=2)
    shown = min(4, len(items))
    save_mask_grid(views[0][:shown], views[1][:shown], {k: v[:shown] for k, v in labels.items()},
                   os.path.join(out, 'mask_examples.png'), source)
    print(f'mask quality of {source} on {len(items)} images '
          f'({sum(len(o) for _, o in items)} objects), {args.size}px, {args.batch} images per K-means call')
    print('| K | mBO |\n|---|---|')
    for k, value in scores.items():
        print(f'| {k} | {value:.1f} |')
    print(f'written: {os.path.join(out, "eval_masks.json")}, {os.path.join(out, "mask_examples.png")}')


if __name__ == '__main__':
    main()
