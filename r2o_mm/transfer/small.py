"""Shrinking options for the transfer configs: a ResNet-18, small images, a
few iterations, one process. Used by the tests and the demo, so that the real
mmdet/mmseg code paths run on the generated datasets in seconds."""
from __future__ import annotations

RESNET18_CHANNELS = [64, 128, 256, 512]


# VOC trains on two lists (VOC train + SBD aug): a ConcatDataset of two.
_VOC_TRAIN_SETS = ('train_dataloader.dataset.datasets.0', 'train_dataloader.dataset.datasets.1')


def _loaders(data_root: str, train_sets=('train_dataloader.dataset',)) -> dict:
    options = {}
    for loader in ('train_dataloader', 'test_dataloader'):
        options.update({f'{loader}.num_workers': 0, f'{loader}.persistent_workers': False})
    for dataset in (*train_sets, 'test_dataloader.dataset'):
        options[f'{dataset}.data_root'] = data_root
    return options


def small_transfer_options(task: str, data_root: str, iterations: int = 2, batch: int = 2,
                           depth: int = 18, image: int = 128) -> dict:
    """--cfg-options for ``task`` on the generated dataset at ``data_root``
    (for the ImageNet tasks: :func:`r2o_mm.data.synthetic_scenes.write_imagenet_folder`'s)."""
    family = 'coco' if task.startswith('coco') else 'imagenet' if task.startswith('imagenet') else task
    # No spaces or commas: the value travels through shell words and DictAction.
    # The ImageNet tasks share one set of options (one CFG_OPTIONS for the three): named by the family.
    name = family if family == 'imagenet' else task
    options = {'protocol': f'shrunk-for-tests-and-demo:{name}/ResNet-{depth}/{iterations}iters/'
                           f'batch{batch}/{image}px',
               'reference_batch': batch, 'train_dataloader.batch_size': batch,
               'model.backbone.depth': depth,
               **_loaders(data_root, _VOC_TRAIN_SETS if family == 'voc' else ('train_dataloader.dataset',)),
               # no checkpoints: small runs are evaluated at once and thrown away
               'default_hooks.checkpoint.save_last': False,
               'default_hooks.checkpoint.interval': 10 ** 9}
    if family == 'imagenet':
        from ..data.synthetic_scenes import CLASSIFICATION_SHAPES
        options.update({
            'model.head.in_channels': RESNET18_CHANNELS[-1] if depth == 18 else 2048,
            'model.head.num_classes': len(CLASSIFICATION_SHAPES),
            'train_dataloader.dataset.pipeline.1.scale': image,
            'test_dataloader.dataset.pipeline.1.scale': image * 8 // 7,
            'test_dataloader.dataset.pipeline.2.crop_size': image,
            'test_dataloader.batch_size': batch * 4,
            'train_cfg.max_epochs': 1, 'train_cfg.val_interval': 1,
            'param_scheduler.0.T_max': 1, 'param_scheduler.0.end': 1,
            # One lr for the three (LARS 1.6 and SGD 0.8 are for batch 4096: at batch 8 the
            # fine-tuning loss explodes within two steps).
            'optim_wrapper.optimizer.lr': 0.01,
        })
        subset = {'imagenet_semi_1pct': '1percent.txt', 'imagenet_semi_10pct': '10percent.txt'}.get(task)
        if subset:
            options['train_dataloader.dataset.subset_file'] = f'{data_root.rstrip("/")}/{subset}'
        return options
    if family == 'coco':
        ann = f'{data_root.rstrip("/")}/annotations/instances_val2017.json'
        options.update({
            'test_evaluator.ann_file': ann,
            'model.neck.in_channels': RESNET18_CHANNELS if depth == 18 else [256, 512, 1024, 2048],
            'test_dataloader.dataset.pipeline.1.scale': (image, image),
            # A barely trained Mask R-CNN scores below the default 0.05: keep
            # every detection so that the box and mask branches are evaluated.
            'model.test_cfg.rcnn.score_thr': 0.0,
            'custom_hooks.0.num_iters': 2,
            # 32 sampled RoIs per image instead of 512, and fewer proposals: the
            # 4conv1fc box head dominates CPU time otherwise (about 13 s per step).
            'model.train_cfg.rcnn.sampler.num': 32,
            'model.train_cfg.rpn_proposal.max_per_img': 300,
            'model.test_cfg.rpn.max_per_img': 100,
            'model.test_cfg.rcnn.max_per_img': 20,
            # lr for 4 images per step (the protocol's 0.1 is for 64), no warm-up.
            'optim_wrapper.optimizer.lr': 0.02,
            'param_scheduler.0.start_factor': 1.0,
        })
        if task == 'coco_mocov2_1x':
            options.update({'train_cfg.max_epochs': 1, 'train_cfg.val_interval': 1,
                            'train_dataloader.dataset.pipeline.2.scales': [(image, image)],
                            'param_scheduler.1.milestones': [1], 'param_scheduler.1.end': 1,
                            'param_scheduler.0.end': 1})
        else:
            options.update({
                'train_cfg.max_iters': iterations, 'train_cfg.val_interval': iterations,
                'train_dataloader.dataset.pipeline.2.scale': (image, image),
                'train_dataloader.dataset.pipeline.6.size': (image, image),
                'train_dataloader.dataset.pipeline.3.crop_size': (image, image),
                'param_scheduler.0.end': 1, 'param_scheduler.1.end': iterations,
                'param_scheduler.1.milestones': [iterations],
            })
        return options
    crop = image // 2
    options['model.data_preprocessor.size'] = (crop, crop)
    if family == 'voc':  # rescaled by a ratio of the image's own size; tested at its own size
        options.update({f'{dataset}.pipeline.3.crop_size': (crop, crop) for dataset in _VOC_TRAIN_SETS})
    else:
        options.update({'train_dataloader.dataset.pipeline.2.scale': (image * 2, crop),
                        'train_dataloader.dataset.pipeline.3.crop_size': (crop, crop),
                        'test_dataloader.dataset.pipeline.1.scale': (image * 2, image)})
    if depth == 18:
        options['model.decode_head.in_channels'] = 512
        options['model.decode_head.channels'] = 64
    if family == 'voc':
        options.update({'train_cfg.max_iters': iterations, 'train_cfg.val_interval': iterations,
                        'param_scheduler.0.end': iterations,
                        'param_scheduler.0.milestones': [iterations]})
        if depth == 18:
            options.update({'model.auxiliary_head.in_channels': 256,
                            'model.auxiliary_head.channels': 64})
    else:  # cityscapes, epoch-based
        options.update({'train_cfg.max_epochs': 1, 'train_cfg.val_interval': 1,
                        'param_scheduler.0.end': 1, 'param_scheduler.0.milestones': [1]})
    return options


def as_cli(options: dict) -> list[str]:
    """The options as ``--cfg-options`` arguments."""
    def fmt(value):
        if isinstance(value, tuple):
            return '(' + ','.join(fmt(v) for v in value) + ')'
        if isinstance(value, list):
            return '[' + ','.join(fmt(v) for v in value) + ']'
        return str(value)
    return [f'{key}={fmt(value)}' for key, value in options.items()]


def main(argv=None):
    """``python -m r2o_mm.transfer.small TASK DATA_ROOT [--depth 18] [--iterations 2] [--batch 2] [--image 128]``
    prints the task's shrinking options as CFG_OPTIONS words (docs/transfer.md, "Transfers at CPU size")."""
    import argparse
    parser = argparse.ArgumentParser(description='The shrinking options of a transfer task, as CFG_OPTIONS words')
    parser.add_argument('task')
    parser.add_argument('data_root', help='the generated dataset (write_synthetic_datasets, write_imagenet_folder)')
    parser.add_argument('--depth', type=int, default=18, choices=(18, 50))
    parser.add_argument('--iterations', type=int, default=2)
    parser.add_argument('--batch', type=int, default=2)
    parser.add_argument('--image', type=int, default=128)
    args = parser.parse_args(argv)
    print(' '.join(as_cli(small_transfer_options(args.task, args.data_root, args.iterations, args.batch,
                                                 args.depth, args.image))))


if __name__ == '__main__':
    main()
