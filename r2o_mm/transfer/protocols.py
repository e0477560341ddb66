"""The released evaluation protocols as data, and the protocol that a merged
mmdet/mmseg config actually implements.

:data:`REFERENCE_PROTOCOLS` holds, for each protocol, the fields that decide
the numbers, written from the authors' evaluation configs (docs/method.md section 5).
:func:`protocol_of` reads the same fields from a merged config; resize
semantics cannot be read from the text of a config, so they are observed: the
config's own resize steps are applied to a 500x375 image (200 draws for the
training steps, one for the test steps). :func:`protocol_diff` compares the
two, field by field.
"""
from __future__ import annotations

import copy

import numpy as np
from mmengine.config import Config, ConfigDict

PROBE_SIZE = (500, 375)  # (width, height) of the image the resize steps are applied to
SCALE_TOLERANCE = 0.02   # relative, for the observed scale ranges

_SEG_COMMON = {
    'backbone': 'ResNet-50, pytorch style',
    'stage strides': (1, 2, 2, 1),
    'stage dilations': (1, 1, 1, 2),
    'contract dilation': True,
    'backbone norm': 'SyncBN',
    'frozen stages': -1,
    'norm_eval': False,
    'augmentations': ('RandomFlip(prob=0.5)',),
    'batch': 16,
    'norm layer weight decay': 1.0,
    'warm-up': 'none',
    'test mode': 'whole',
    'input normalisation': 'RGB, mean (123.675, 116.28, 103.53), std (58.395, 57.12, 57.375)',
    'precise BN': False,
}
_COCO_DETCON = {
    'backbone': 'ResNet-50, pytorch style',
    'stage strides': (1, 2, 2, 2),
    'stage dilations': (1, 1, 1, 1),
    'backbone norm': 'SyncBN',
    'frozen stages': -1,
    'norm_eval': False,
    'neck': 'FPN, norm SyncBN',
    'box head': 'Shared2FCBBoxHead: 0 convs, 2 fc x 1024, norm none',
    'mask head': 'FCNMaskHead: 4 convs x 256, norm SyncBN',
    'training sets': ('annotations/instances_train2017.json',),
    'train scale on 500x375': (1.6384, 2.56),   # long side 1024 x U(0.8, 1.25)
    'test size on 500x375': (1024, 768),        # long side 1024
    'crop': (1024, 1024),
    'pad': '1024x1024, image 128 (before normalisation)',
    'augmentations': ('RandomFlip(prob=0.5)',),
    'batch': 64,
    'optimiser': 'SGD lr 0.1, momentum 0.9, weight decay 4e-05',
    'norm layer weight decay': 0.0,
    'schedule': '24000 iterations, x0.1 at (16000, 21333)',
    'warm-up': 'linear from 0.001 over 500 iterations',
    'input normalisation': 'RGB, mean (123.675, 116.28, 103.53), std (58.395, 57.12, 57.375)',
    'evaluation set': 'annotations/instances_val2017.json',
    'precise BN': True,
}

REFERENCE_PROTOCOLS = {
    'voc': dict(source="authors' evaluation/pascal/config_pascal.py (mmseg 0.x), docs/method.md section 5", fields={
        **_SEG_COMMON,
        'decode head': 'FCNHead: 2 convs x 256, dilation 6, concat_input True, dropout 0.1, '
                       'align_corners False, norm SyncBN, 21 classes',
        'auxiliary head': 'FCNHead on input 2: 2 convs x 256, dilation 6, concat_input False, dropout 0.1, '
                          'loss weight 0.2, norm SyncBN',
        'training sets': ('ImageSets/Segmentation/train.txt -> SegmentationClass',
                          'ImageSets/Segmentation/aug.txt -> SegmentationClassAug'),
        'train scale on 500x375': (0.5, 2.0),   # 0.5-2.0 of the image's own size
        'test size on 500x375': (500, 375),     # the image's own size
        'crop': (513, 513),
        'cat_max_ratio': 0.99,
        'pad': '513x513, label 255',
        'optimiser': 'SGD lr 0.01, momentum 0.9, weight decay 0.0001',
        'schedule': '30000 iterations, x0.1 at (21000, 27000)',
        'evaluation set': 'ImageSets/Segmentation/val.txt',
    }),
    'cityscapes': dict(source="authors' evaluation/cityscapes/config_cityscapes.py (mmseg 0.x, its "
                              "data.train.pipeline), docs/method.md section 5", fields={
        **_SEG_COMMON,
        'decode head': 'FCNHead: 2 convs x 256, dilation 6, concat_input False, dropout 0.1, '
                       'align_corners True, norm SyncBN, 19 classes',
        'auxiliary head': 'none',
        'training sets': ('leftImg8bit/train -> gtFine/train',),
        'train scale on 500x375': (1.3667, 5.4667),  # (2049, 1025) x U(0.5, 2.0), keep ratio
        'test size on 500x375': (1367, 1025),        # (2049, 1025), keep ratio
        'crop': (769, 769),
        'cat_max_ratio': 0.99,
        'pad': '769x769, label 255',
        'optimiser': 'SGD lr 0.04, momentum 0.9, weight decay 0.0001',
        'schedule': '160 epochs, x0.1 at epochs (112, 144)',
        'evaluation set': 'leftImg8bit/val',
    }),
    'coco_1x': dict(source="authors' evaluation/coco/base.yaml + config_coco.yaml with detectron2's "
                           "defaults (DetCon protocol 1x), docs/method.md section 5", fields=_COCO_DETCON),
    'coco_2x': dict(source="as coco_1x with the 2x schedule (DetCon protocol), docs/method.md section 5", fields={
        **_COCO_DETCON, 'schedule': '48000 iterations, x0.1 at (32000, 42666)'}),
    'coco_mocov2_1x': dict(source='MoCo / mmselfsup COCO protocol (as docs/method.md section 5 states it)', fields={
        'backbone': 'ResNet-50, pytorch style',
        'backbone norm': 'SyncBN',
        'box head': 'Shared4Conv1FCBBoxHead: 4 convs, 1 fc x 1024, norm SyncBN',
        'train scale on 500x375': (1.7067, 2.1333),  # short side 640-800 (long side at most 1333)
        'batch': 16,
        'optimiser': 'SGD lr 0.02, momentum 0.9, weight decay 0.0001',
        'schedule': '12 epochs, x0.1 at epochs (8, 11)',
    }),
}

_CLS_COMMON = {
    'backbone': 'ResNet-50, pytorch style',
    'neck': 'GlobalAveragePooling',
    'head': 'LinearClsHead: 2048 -> 1000, CrossEntropyLoss',
    'augmentations': ('RandomFlip(prob=0.5)',),
    'batch': 4096,
    'warm-up': 'none',
    'input normalisation': 'RGB, mean (123.675, 116.28, 103.53), std (58.395, 57.12, 57.375)',
    'evaluation set': 'val (all images)',
    'metrics': 'top-1, top-5',
}
_SIMCLR_SEMI = {
    **_CLS_COMMON,
    'frozen stages': -1,
    'backbone norm': 'SyncBN',
    'BatchNorm in training': 'train mode',
    'train crop': 'RandomResizedCrop 224, area (0.08, 1.0), ratio (0.75, 1.3333), bicubic, pillow',
    'test transform': 'ResizeEdge short 256 (bicubic, pillow), CenterCrop 224',
    'optimiser': 'SGD lr 0.8, momentum 0.9, nesterov, weight decay 0.0',
}
REFERENCE_PROTOCOLS.update({
    'imagenet_linear': dict(source="mmpretrain 1.2.0 configs/byol/benchmarks/resnet50_8xb512-linear-coslr-90e_in1k.py "
                                   '(with its _base_ files)', fields={
        **_CLS_COMMON,
        'frozen stages': 4,
        'backbone norm': 'BN',
        'BatchNorm in training': 'eval mode (frozen)',
        'train crop': 'RandomResizedCrop 224, area (0.08, 1.0), ratio (0.75, 1.3333), bilinear, pillow',
        'test transform': 'ResizeEdge short 256 (bilinear, pillow), CenterCrop 224',
        'optimiser': 'LARS lr 1.6, momentum 0.9, weight decay 0.0',
        'schedule': '90 epochs, cosine to 0.0, stepped per epoch',
        'training set': 'train (all images)',
    }),
    'imagenet_semi_1pct': dict(source='SimCLR (Chen et al. 2020, arXiv 2002.05709) appendix B.5, 1% of the labels',
                               fields={**_SIMCLR_SEMI, 'schedule': '60 epochs, cosine to 0.0, stepped per iteration',
                                       'training set': 'train, subset data/imagenet/1percent.txt'}),
    'imagenet_semi_10pct': dict(source='SimCLR (Chen et al. 2020, arXiv 2002.05709) appendix B.5, 10% of the labels',
                                fields={**_SIMCLR_SEMI, 'schedule': '30 epochs, cosine to 0.0, stepped per iteration',
                                        'training set': 'train, subset data/imagenet/10percent.txt'}),
})


# Global batches that also reproduce a protocol's published numbers: the
# authors' 8-GPU detectron2 runs rescaled batch 64 to 32 (lr 0.05, iterations
# x2, same epochs), and R2O's COCO numbers come from those runs.
ALSO_RELEASED_BATCHES = {'coco_1x': (32,), 'coco_2x': (32,)}


def run_batch_deviation(reference: str, global_batch: int) -> list[str]:
    """A deviation when a run's actual global batch is not the protocol's
    (iterations and lr are rescaled to keep the epochs, but batch statistics
    and the optimisation path change)."""
    expected = REFERENCE_PROTOCOLS[reference]['fields'].get('batch')
    if expected is None or global_batch == expected or global_batch in ALSO_RELEASED_BATCHES.get(reference, ()):
        return []
    return [f'global batch of this run: {global_batch} (protocol: {expected}; iterations and lr rescaled '
            'to keep the epochs)']


# ----------------------------------------------------------------- reading
def _get(node, key, default=None):
    return node.get(key, default) if isinstance(node, (dict, ConfigDict)) else default


def _norm_type(node) -> str:
    norm = _get(node, 'norm_cfg')
    return norm['type'] if norm else 'none'


def _train_datasets(cfg) -> list:
    dataset = cfg.train_dataloader.dataset
    while 'dataset' in dataset and 'datasets' not in dataset:  # RepeatDataset and friends
        dataset = dataset.dataset
    return list(dataset.datasets) if 'datasets' in dataset else [dataset]


def _pipeline(dataset) -> list:
    while 'pipeline' not in dataset and 'dataset' in dataset:
        dataset = dataset.dataset
    return list(dataset.get('pipeline', []))


def _is_resize(step) -> bool:
    return 'Resize' in step['type'] or 'Rescale' in step['type']


def _transform_registry(scope: str):
    if scope == 'mmdet':
        from mmdet.registry import TRANSFORMS
    else:
        from mmseg.registry import TRANSFORMS
    return TRANSFORMS


def observed_scales(steps: list, scope: str, draws: int = 200, seed: int = 0) -> tuple[float, float]:
    """Smallest and largest width ratio output/input when ``steps`` are
    applied to a 500x375 image ``draws`` times (numpy seeded: the same on
    every machine). (1.0, 1.0) when there is no step."""
    if not steps:
        return (1.0, 1.0)
    registry = _transform_registry(scope)
    transforms = [registry.build(copy.deepcopy(step)) for step in steps]
    state = np.random.get_state()
    np.random.seed(seed)
    try:
        ratios = []
        for _ in range(draws):
            results = {'img': np.zeros((PROBE_SIZE[1], PROBE_SIZE[0], 3), np.uint8),
                       'img_shape': PROBE_SIZE[::-1], 'ori_shape': PROBE_SIZE[::-1]}
            for transform in transforms:
                results = transform(results)
            ratios.append(results['img'].shape[1] / PROBE_SIZE[0])
    finally:
        np.random.set_state(state)
    return (round(min(ratios), 4), round(max(ratios), 4))


def _test_size(cfg, scope: str) -> tuple[int, int]:
    steps = [s for s in _pipeline(cfg.test_dataloader.dataset) if _is_resize(s)]
    if not steps:
        return PROBE_SIZE
    registry = _transform_registry(scope)
    results = {'img': np.zeros((PROBE_SIZE[1], PROBE_SIZE[0], 3), np.uint8),
               'img_shape': PROBE_SIZE[::-1], 'ori_shape': PROBE_SIZE[::-1]}
    for step in steps:
        results = registry.build(copy.deepcopy(step))(results)
    return (int(results['img'].shape[1]), int(results['img'].shape[0]))


def _schedule(cfg) -> str:
    steps = [s for s in cfg.get('param_scheduler', []) if s['type'] == 'MultiStepLR']
    loop = cfg.train_cfg
    if loop.get('type') == 'IterBasedTrainLoop' or 'max_iters' in loop:
        text = f"{loop['max_iters']} iterations"
        unit = ''
    else:
        text = f"{loop['max_epochs']} epochs"
        unit = 'epochs '
    for step in steps:
        text += f", x{step.get('gamma', 0.1)} at {unit}{tuple(step['milestones'])}"
    return text


def _warm_up(cfg) -> str:
    for step in cfg.get('param_scheduler', []):
        if step['type'] == 'LinearLR':
            unit = 'epochs' if step.get('by_epoch', True) else 'iterations'
            return f"linear from {step.get('start_factor', 1 / 3)} over {step['end']} {unit}"
    return 'none'


def _optimiser(cfg) -> str:
    opt = cfg.optim_wrapper.optimizer
    return (f"{opt['type']} lr {opt['lr']}, momentum {opt.get('momentum', 0)}, "
            f"weight decay {opt.get('weight_decay', 0)}")


def _normalisation(cfg) -> str:
    pre = cfg.model.data_preprocessor
    colour = 'RGB' if pre.get('bgr_to_rgb') or pre.get('rgb_to_bgr') is False else 'BGR'
    return f"{colour}, mean {tuple(pre['mean'])}, std {tuple(pre['std'])}"


def _augmentations(pipeline) -> tuple:
    skip = ('Load', 'Pack', 'RandomCrop', 'Pad', 'FilterAnnotations')
    found = []
    for step in pipeline:
        if _is_resize(step) or step['type'].startswith(skip):
            continue
        args = ', '.join(f'{k}={v}' for k, v in step.items() if k == 'prob')
        found.append(f"{step['type']}({args})" if args else step['type'])
    return tuple(found)


def _seg_head(head, auxiliary: bool) -> str:
    if not head:
        return 'none'
    where = f" on input {head.get('in_index', -1)}" if auxiliary else ''
    text = (f"{head['type']}{where}: {head.get('num_convs', 2)} convs x {head['channels']}, "
            f"dilation {head.get('dilation', 1)}, concat_input {head.get('concat_input', True)}, "
            f"dropout {head.get('dropout_ratio', 0.1)}")
    if auxiliary:
        loss = head.get('loss_decode', {})
        text += f", loss weight {_get(loss, 'loss_weight', 1.0)}"
    else:
        text += f", align_corners {head.get('align_corners', False)}"
    text += f', norm {_norm_type(head)}'
    if not auxiliary:
        text += f", {head['num_classes']} classes"
    return text


def _box_head(bbox_head) -> str:
    from mmdet.registry import MODELS
    from mmdet.utils import register_all_modules
    register_all_modules(init_default_scope=False)
    head = MODELS.build(copy.deepcopy(bbox_head))
    return (f"{bbox_head['type']}: {getattr(head, 'num_shared_convs', 0)} convs, "
            f"{getattr(head, 'num_shared_fcs', 0)} fc x {getattr(head, 'fc_out_channels', 0)}, "
            f"norm {_norm_type(bbox_head) if getattr(head, 'num_shared_convs', 0) else 'none'}")


def _built(step: dict):
    from mmpretrain.registry import TRANSFORMS
    from mmpretrain.utils import register_all_modules
    register_all_modules(init_default_scope=False)
    return TRANSFORMS.build(copy.deepcopy(step))


def _crop_text(step: dict) -> str:
    crop = _built(step)
    low, high = crop.aspect_ratio_range
    return (f'{step["type"]} {crop.scale[0] if crop.scale[0] == crop.scale[1] else crop.scale}, area '
            f'{tuple(crop.crop_ratio_range)}, ratio ({round(low, 4)}, {round(high, 4)}), {crop.interpolation}, '
            f'{crop.backend}')


def _test_text(pipeline: list) -> str:
    parts = []
    for step in pipeline:
        if step['type'].startswith(('Load', 'Pack')):
            continue
        built = _built(step)
        if step['type'] == 'ResizeEdge':
            parts.append(f'ResizeEdge {built.edge} {built.scale} ({built.interpolation}, {built.backend})')
        elif step['type'] == 'CenterCrop':
            size = built.crop_size if isinstance(built.crop_size, (list, tuple)) else (built.crop_size,) * 2
            parts.append(f'CenterCrop {size[0] if size[0] == size[1] else tuple(size)}')
        else:
            parts.append(step['type'])
    return ', '.join(parts) or 'none'


def _dataset_text(dataset) -> str:
    subset = dataset.get('subset_file')
    return f"{dataset.get('split', '?')}, subset {subset}" if subset else f"{dataset.get('split', '?')} (all images)"


def classification_protocol_of(cfg: Config) -> dict:
    """The fields of the ImageNet classification protocols, read from a merged mmpretrain config."""
    backbone, head = cfg.model.backbone, cfg.model.head
    frozen = backbone.get('frozen_stages', -1)
    pre = cfg.model.get('data_preprocessor') or cfg.get('data_preprocessor') or {}
    train = _train_datasets(cfg)[0]
    pipeline = _pipeline(train)
    crops = [s for s in pipeline if 'Crop' in s['type']]
    opt = cfg.optim_wrapper.optimizer
    schedules = [s for s in cfg.get('param_scheduler', []) if s['type'] == 'CosineAnnealingLR']
    schedule = f"{cfg.train_cfg.get('max_epochs')} epochs"
    for step in schedules:
        per = 'iteration' if step.get('convert_to_iter_based') or not step.get('by_epoch', True) else 'epoch'
        schedule += f", cosine to {float(step.get('eta_min', 0.0))}, stepped per {per}"
    if frozen >= backbone.get('num_stages', 4):
        bn_mode = 'eval mode (frozen)'
    else:
        bn_mode = 'eval mode (norm_eval)' if backbone.get('norm_eval') else 'train mode'
    loss = head.get('loss', {}).get('type', 'CrossEntropyLoss')
    return {
        'backbone': f"{backbone['type']}-{backbone.get('depth')}, {backbone.get('style', 'pytorch')} style",
        'frozen stages': frozen,
        'backbone norm': (_get(backbone, 'norm_cfg') or {'type': 'BN'})['type'],
        'BatchNorm in training': bn_mode,
        'neck': cfg.model.neck['type'],
        'head': f"{head['type']}: {head.get('in_channels')} -> {head.get('num_classes')}, {loss}",
        'train crop': _crop_text(crops[0]) if crops else 'none',
        'augmentations': _augmentations(pipeline),
        'test transform': _test_text(_pipeline(cfg.test_dataloader.dataset)),
        'batch': cfg.get('reference_batch'),
        'optimiser': (f"{opt['type']} lr {opt['lr']}, momentum {opt.get('momentum', 0)}"
                      + (', nesterov' if opt.get('nesterov') else '') + f", weight decay {float(opt.get('weight_decay', 0))}"),
        'schedule': schedule,
        'warm-up': _warm_up(cfg),
        'input normalisation': (f"{'RGB' if pre.get('to_rgb') else 'BGR'}, mean {tuple(pre.get('mean', ()))}, "
                                f"std {tuple(pre.get('std', ()))}"),
        'training set': _dataset_text(train),
        'evaluation set': _dataset_text(cfg.test_dataloader.dataset),
        'metrics': ', '.join(f'top-{k}' for k in cfg.get('test_evaluator', {}).get('topk', (1,))),
    }


def protocol_of(cfg: Config) -> dict:
    """The fields of :data:`REFERENCE_PROTOCOLS`, read from a merged config."""
    scope = cfg.get('default_scope', 'mmseg')
    if scope == 'mmpretrain':
        return classification_protocol_of(cfg)
    backbone = cfg.model.backbone
    train_pipeline = _pipeline(_train_datasets(cfg)[0])
    fields = {
        'backbone': f"{backbone['type']}-{backbone.get('depth')}, {backbone.get('style', 'pytorch')} style",
        'stage strides': tuple(backbone.get('strides', (1, 2, 2, 2))),
        'stage dilations': tuple(backbone.get('dilations', (1, 1, 1, 1))),
        'contract dilation': bool(backbone.get('contract_dilation', False)),
        'backbone norm': _norm_type(backbone),
        'frozen stages': backbone.get('frozen_stages', -1),
        'norm_eval': bool(backbone.get('norm_eval', False)),
        'train scale on 500x375': observed_scales([s for s in train_pipeline if _is_resize(s)], scope),
        'test size on 500x375': _test_size(cfg, scope),
        'augmentations': _augmentations(train_pipeline),
        'batch': cfg.get('reference_batch'),
        'optimiser': _optimiser(cfg),
        'norm layer weight decay': float(cfg.optim_wrapper.get('paramwise_cfg', {}).get('norm_decay_mult', 1.0)),
        'schedule': _schedule(cfg),
        'warm-up': _warm_up(cfg),
        'input normalisation': _normalisation(cfg),
        'precise BN': any(h['type'] == 'PreciseBNHook' for h in cfg.get('custom_hooks', [])),
    }
    test_set = cfg.test_dataloader.dataset
    crop = next((s for s in train_pipeline if s['type'] == 'RandomCrop'), None)
    fields['crop'] = tuple(crop['crop_size']) if crop else None
    if scope == 'mmdet':
        roi = cfg.model.roi_head
        mask = roi.get('mask_head')
        fields.update({
            'neck': f"{cfg.model.neck['type']}, norm {_norm_type(cfg.model.neck)}",
            'box head': _box_head(roi.bbox_head),
            'mask head': (f"{mask['type']}: {mask.get('num_convs', 4)} convs x "
                          f"{mask.get('conv_out_channels', 256)}, norm {_norm_type(mask)}") if mask else 'none',
            'training sets': tuple(d.get('ann_file') for d in _train_datasets(cfg)),
            'evaluation set': test_set.get('ann_file'),
        })
        pad = next((s for s in train_pipeline if s['type'] == 'Pad'), None)
        augments = [a for a in cfg.model.data_preprocessor.get('batch_augments') or []
                    if a['type'] == 'BatchFixedSizePad']
        if pad:
            value = _get(pad.get('pad_val'), 'img', pad.get('pad_val', 0))
            value = value[0] if isinstance(value, (list, tuple)) and len(set(value)) == 1 else value
            fields['pad'] = f"{pad['size'][0]}x{pad['size'][1]}, image {value} (before normalisation)"
        elif augments:
            size = augments[0]['size']
            fields['pad'] = f'{size[0]}x{size[1]}, image 0 (after normalisation)'
        else:
            fields['pad'] = 'none'
    else:
        pre = cfg.model.data_preprocessor
        size = pre.get('size')
        fields.update({
            'decode head': _seg_head(cfg.model.decode_head, auxiliary=False),
            'auxiliary head': _seg_head(cfg.model.get('auxiliary_head'), auxiliary=True),
            'training sets': tuple(
                f"{d.get('ann_file') or d.data_prefix.get('img_path')} -> {d.data_prefix.get('seg_map_path')}"
                for d in _train_datasets(cfg)),
            'cat_max_ratio': crop.get('cat_max_ratio', 1.0) if crop else None,
            'pad': f"{size[0]}x{size[1]}, label {pre.get('seg_pad_val', 255)}" if size else 'none',
            'test mode': cfg.model.test_cfg.get('mode', 'whole'),
            'evaluation set': test_set.get('ann_file') or test_set.data_prefix.get('img_path'),
        })
    return fields


# ----------------------------------------------------------------- comparing
def _same(reference, value, field: str) -> bool:
    if field.startswith('train scale') and isinstance(value, tuple) and isinstance(reference, tuple):
        return all(abs(v - r) <= SCALE_TOLERANCE * r for v, r in zip(value, reference))
    if isinstance(reference, tuple) and isinstance(value, (list, tuple)):
        return tuple(value) == reference
    return value == reference


def reference_name(cfg: Config) -> str:
    name = cfg.get('reference_protocol')
    if name not in REFERENCE_PROTOCOLS:
        raise ValueError(f'reference_protocol must be one of {", ".join(REFERENCE_PROTOCOLS)}, got {name!r} '
                         '(set it in the config)')
    return name


def protocol_diff(cfg: Config, reference: str | None = None) -> list[dict]:
    """One row per field of the reference: field, reference, this config, same."""
    reference = reference or reference_name(cfg)
    observed = protocol_of(cfg)
    return [dict(field=field, reference=expected, config=observed.get(field),
                 same=_same(expected, observed.get(field), field))
            for field, expected in REFERENCE_PROTOCOLS[reference]['fields'].items()]


def deviations(rows: list[dict]) -> list[str]:
    """'field: this config (protocol: reference)' for each differing row."""
    return [f"{row['field']}: {row['config']} (protocol: {row['reference']})" for row in rows if not row['same']]
