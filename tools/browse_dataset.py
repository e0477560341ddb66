"""See what a pretraining config feeds the model, without training.

    python tools/browse_dataset.py CONFIG [--num 4] [--out DIR] [--checkpoint CKPT] [--seed 0]
                                   [--cfg-options k=v ...]

Builds the config's training dataset with its real pipeline and writes one
picture per sample to --out (default work_dirs/browse/<config name>): the raw
view with its SLIC boundaries, the raw view with the two views' crop boxes
(view 1 red, view 2 blue; "flipped" when the view is), and the two views as
the model sees them. With --checkpoint (a pretraining checkpoint of this
config), also the masks its target encoder predicts at the config's initial K,
cut into each view with the same RoIAlign and flip as in training.
"""
import argparse
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)


def main(argv=None):
    import r2o_mm  # noqa: F401  (registers the pipeline; first, for quiet imports)
    from mmengine.config import DictAction
    from r2o_mm.utils.config import load_config
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('config')
    parser.add_argument('--num', type=int, default=4, help='samples to draw')
    parser.add_argument('--out', help='output folder (default work_dirs/browse/<config name>)')
    parser.add_argument('--checkpoint', help='pretraining checkpoint: also draw its predicted masks')
    parser.add_argument('--seed', type=int, default=0, help='seed of the augmentations')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction, default={})
    args = parser.parse_args(argv)

    import numpy as np
    import torch
    from mmengine.registry import DATASETS, MODELS
    from r2o_mm.data.datasets import DatasetLayoutError
    from r2o_mm.utils.checkpoint import CheckpointReadError, read_checkpoint
    cfg = load_config(args.config, args.cfg_options)
    try:
        dataset = DATASETS.build(cfg.train_dataloader.dataset)
        model = None
        if args.checkpoint:
            model = MODELS.build(cfg.model)
            state = read_checkpoint(args.checkpoint)
            model.load_state_dict(state.get('state_dict', state))
            model.eval()
    except DatasetLayoutError as error:
        sys.exit(f'dataset error: {error}')
    except CheckpointReadError as error:
        sys.exit(f'browse_dataset: {error}')
    out = args.out or os.path.join('work_dirs', 'browse', os.path.splitext(os.path.basename(args.config))[0])
    os.makedirs(out, exist_ok=True)
    np.random.seed(args.seed)
    torch.manual_seed(args.seed)
    for index in range(min(args.num, len(dataset))):
        sample = dataset[index]['inputs']
        path = os.path.join(out, f'sample_{index:03d}.png')
        draw_sample(sample, path, model)
        print(f'wrote {path} ({dataset.get_data_info(index)["img_path"]})')


def draw_sample(sample: dict, path: str, model=None):
    """raw + SLIC | raw + crop boxes | view 1 | view 2 [| masks in view 1 | masks in view 2]."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    import torch
    from matplotlib.patches import Rectangle
    from skimage.segmentation import mark_boundaries
    raw = sample['raw'].permute(1, 2, 0).numpy()
    size = raw.shape[0]
    panels = [(mark_boundaries(raw, sample['superpixels'].numpy()), 'raw view + SLIC'), (raw, 'crop boxes'),
              (sample['view1'].permute(1, 2, 0).numpy(), 'view 1' + (' (flipped)' if sample['flips'][0] else '')),
              (sample['view2'].permute(1, 2, 0).numpy(), 'view 2' + (' (flipped)' if sample['flips'][1] else ''))]
    if model is not None:
        from r2o_mm.models.data_preprocessor import R2ODataPreprocessor
        from r2o_mm.models.regions import view_masks
        inputs = R2ODataPreprocessor()({'inputs': {k: [v] for k, v in sample.items()}})['inputs']
        with torch.no_grad():
            masks, _ = model.predict_masks(inputs['raw'], inputs['superpixels'])
            for view in (0, 1):
                cut = view_masks(masks, inputs['boxes'][:, view], inputs['flips'][:, view], masks.shape[-1])
                labels = cut.view(masks.shape[1], masks.shape[-1], masks.shape[-1]).argmax(0).numpy()
                panels.append((labels, f'masks in view {view + 1}, K={model.num_clusters}'))
    fig, axes = plt.subplots(1, len(panels), figsize=(2.6 * len(panels), 2.8))
    for axis, (picture, title) in zip(axes, panels):
        axis.imshow(picture, cmap=None if picture.ndim == 3 else 'tab20', interpolation='nearest')
        axis.set_title(title, fontsize=8)
        axis.axis('off')
    for (y1, x1, y2, x2), colour in zip(sample['boxes'].tolist(), ('red', 'blue')):
        axes[1].add_patch(Rectangle((x1 * size, y1 * size), (x2 - x1) * size, (y2 - y1) * size, fill=False,
                                    edgecolor=colour, linewidth=1.5))
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


if __name__ == '__main__':
    main()
