"""Transfer configs equal the released protocols of docs/method.md section 5, field by
field (r2o_mm/transfer/protocols.py), and the diff sees a change."""
import os
import subprocess
import sys

import numpy as np
import pytest
from mmengine.config import Config

from r2o_mm.transfer.protocols import REFERENCE_PROTOCOLS, deviations, protocol_diff, run_batch_deviation

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PAPER_CONFIGS = {'voc': 'voc_fcn_r50_d16_30k.py', 'cityscapes': 'cityscapes_fcn_r50_d16_160e.py',
                 'coco_1x': 'coco_mask_rcnn_r50_fpn_detcon_1x.py',
                 'coco_2x': 'coco_mask_rcnn_r50_fpn_detcon_2x.py',
                 'coco_mocov2_1x': 'coco_mask_rcnn_r50_fpn_mocov2_1x.py'}
# ImageNet classification through mmpretrain (no paper table: the evaluations SSL comparisons use).
CLASSIFICATION_CONFIGS = {'imagenet_linear': 'imagenet_linear_r50_byol_lars_90e.py',
                          'imagenet_semi_1pct': 'imagenet_semi_1pct_r50_simclr_60e.py',
                          'imagenet_semi_10pct': 'imagenet_semi_10pct_r50_simclr_30e.py'}


def load(name, **options):
    cfg = Config.fromfile(os.path.join(ROOT, 'configs', 'transfer', name))
    cfg.merge_from_dict(options)
    return cfg


@pytest.mark.parametrize('reference', sorted(PAPER_CONFIGS))
def test_paper_config_equals_the_released_protocol(reference):
    cfg = load(PAPER_CONFIGS[reference])
    assert cfg.reference_protocol == reference
    rows = protocol_diff(cfg)
    assert [row['field'] for row in rows] == list(REFERENCE_PROTOCOLS[reference]['fields'])
    assert deviations(rows) == []


@pytest.mark.parametrize('reference', sorted(CLASSIFICATION_CONFIGS))
def test_classification_config_equals_its_published_protocol(reference):
    cfg = load(CLASSIFICATION_CONFIGS[reference])
    assert cfg.reference_protocol == reference and cfg.default_scope == 'mmpretrain'
    rows = protocol_diff(cfg)
    assert [row['field'] for row in rows] == list(REFERENCE_PROTOCOLS[reference]['fields'])
    assert deviations(rows) == []


def test_linear_config_reads_as_mmpretrain_byol_benchmark_itself():
    """The same fields read from mmpretrain's own config file (its dataset is mmpretrain's ImageNet): an
    independent check that the reference describes that file, not only this project's config."""
    import mmpretrain

    from r2o_mm.transfer.protocols import protocol_of
    own = Config.fromfile(os.path.join(os.path.dirname(mmpretrain.__file__), '.mim', 'configs', 'byol', 'benchmarks',
                                       'resnet50_8xb512-linear-coslr-90e_in1k.py'))
    own.reference_batch = own.train_dataloader.batch_size * 8  # its name: 8 GPUs x 512
    assert own.train_dataloader.dataset.type == 'ImageNet'
    assert protocol_of(own) == protocol_of(load(CLASSIFICATION_CONFIGS['imagenet_linear']))
    assert protocol_of(own) == REFERENCE_PROTOCOLS['imagenet_linear']['fields']


def test_protocol_diff_tool_on_a_classification_config(tool_main):
    code, lines = tool_main('protocol_diff.py', [f'configs/transfer/{CLASSIFICATION_CONFIGS["imagenet_semi_10pct"]}'])
    assert code == 0 and lines[-1] == "no difference: the authors' protocol, exactly"
    assert '| optimiser | SGD lr 0.8, momentum 0.9, nesterov, weight decay 0.0 |' in '\n'.join(lines)
    code, lines = tool_main('protocol_diff.py', [f'configs/transfer/{CLASSIFICATION_CONFIGS["imagenet_linear"]}',
                                                 '--cfg-options', 'model.backbone.frozen_stages=-1'])
    assert code == 1 and '2 field(s) differ: frozen stages, BatchNorm in training' in lines


@pytest.mark.parametrize('reference, options, field', [
    ('imagenet_linear', {'optim_wrapper.optimizer.lr': 0.8}, 'optimiser'),
    ('imagenet_linear', {'model.head.loss': dict(type='LabelSmoothLoss', label_smooth_val=0.1)}, 'head'),
    ('imagenet_semi_1pct', {'train_dataloader.dataset.subset_file': 'data/imagenet/10percent.txt'}, 'training set'),
    ('imagenet_semi_10pct', {'param_scheduler.0.convert_to_iter_based': False}, 'schedule'),
    ('imagenet_semi_10pct', {'train_dataloader.dataset.pipeline.1.interpolation': 'bilinear'}, 'train crop'),
])
def test_a_changed_classification_config_shows_that_difference(reference, options, field):
    rows = protocol_diff(load(CLASSIFICATION_CONFIGS[reference], **options))
    assert [row['field'] for row in rows if not row['same']] == [field]


@pytest.mark.parametrize('reference, options, field', [
    ('voc', {'train_dataloader.dataset.datasets.0.pipeline.3.cat_max_ratio': 0.75}, 'cat_max_ratio'),
    ('voc', {'model.auxiliary_head.num_convs': 1}, 'auxiliary head'),
    ('voc', {'train_dataloader.dataset.datasets.0.pipeline.2': dict(
        type='RandomResize', scale=(2048, 512), ratio_range=(0.5, 2.0), keep_ratio=True)}, 'train scale on 500x375'),
    ('voc', {'test_dataloader.dataset.pipeline': [dict(type='LoadImageFromFile'),
                                                  dict(type='Resize', scale=(2048, 512), keep_ratio=True),
                                                  dict(type='LoadAnnotations'), dict(type='PackSegInputs')]},
     'test size on 500x375'),
    ('cityscapes', {'optim_wrapper.optimizer.lr': 0.01}, 'optimiser'),
    ('coco_1x', {'optim_wrapper.paramwise_cfg.norm_decay_mult': 1.0}, 'norm layer weight decay'),
    ('coco_1x', {'model.roi_head.bbox_head.type': 'Shared4Conv1FCBBoxHead'}, 'box head'),
])
def test_a_changed_config_shows_exactly_that_difference(reference, options, field):
    rows = protocol_diff(load(PAPER_CONFIGS[reference], **options))
    assert [row['field'] for row in rows if not row['same']] == [field]


def test_observed_resize_semantics_on_500x375():
    voc = {row['field']: row['config'] for row in protocol_diff(load(PAPER_CONFIGS['voc']))}
    assert voc['test size on 500x375'] == (500, 375)
    low, high = voc['train scale on 500x375']
    assert 0.5 <= low < 0.52 and 1.98 < high <= 2.0  # 200 seeded draws of U(0.5, 2.0)
    city = {row['field']: row['config'] for row in protocol_diff(load(PAPER_CONFIGS['cityscapes']))}
    # (2049, 1025) keeping the ratio: factor min(2049 / 500, 1025 / 375) = 2.7333 -> 1367 x 1025.
    assert city['test size on 500x375'] == (1367, 1025)


def test_batch_deviation_of_a_run():
    assert run_batch_deviation('voc', 16) == []
    assert run_batch_deviation('coco_1x', 32) == []  # the authors' 8-GPU runs
    assert run_batch_deviation('voc', 2) == [
        'global batch of this run: 2 (protocol: 16; iterations and lr rescaled to keep the epochs)']


def test_rescale_by_own_size_ratio_by_hand():
    from r2o_mm.transfer.transforms import RandomRescaleByRatio
    transform = RandomRescaleByRatio((0.5, 2.0))
    image = np.zeros((375, 500, 3), np.uint8)
    labels = np.arange(375 * 500, dtype=np.int64).reshape(375, 500) % 21
    np.random.seed(3)
    ratio = np.random.random_sample() * 1.5 + 0.5
    np.random.seed(3)
    out = transform({'img': image, 'gt_seg_map': labels.astype(np.uint8)})
    # scale (int(500 r), int(375 r)); imrescale keeps the ratio: factor min of the two.
    factor = min(int(500 * ratio) / 500, int(375 * ratio) / 375)
    assert out['img'].shape[:2] == (int(375 * factor + 0.5), int(500 * factor + 0.5))
    assert out['gt_seg_map'].shape == out['img'].shape[:2]
    assert set(np.unique(out['gt_seg_map'])) <= set(range(21))  # nearest: no new label values
    with pytest.raises(ValueError, match='ratio_range'):
        RandomRescaleByRatio((2.0, 0.5))


def test_traps_of_spec_section_8():
    voc = load(PAPER_CONFIGS['voc'])
    assert voc.model.backbone.type == 'ResNet' and voc.model.pretrained is None  # not ResNetV1c
    assert voc.model.backbone.init_cfg.type == 'Pretrained'
    coco = load(PAPER_CONFIGS['coco_1x'])
    assert coco.model.backbone.init_cfg.type == 'Pretrained'


def test_protocol_diff_tool_exit_codes(tool_main):
    """One run as a process (the command's own exit code); the other cases in process (conftest.tool_main:
    the same main(), without three more interpreter starts)."""
    config = os.path.join(ROOT, 'configs', 'transfer', PAPER_CONFIGS['voc'])
    tool = [sys.executable, os.path.join(ROOT, 'tools', 'protocol_diff.py'), config]
    same = subprocess.run(tool + ['--cfg-options', 'optim_wrapper.optimizer.lr=0.02'], capture_output=True,
                          text=True, timeout=300)
    assert same.returncode == 1 and '1 field(s) differ: optimiser' in same.stdout
    code, lines = tool_main('protocol_diff.py', [config])
    assert code == 0 and lines[-1] == "no difference: the authors' protocol, exactly"
    code, lines = tool_main('protocol_diff.py', [config, '--allow-diff', '--cfg-options', 'optim_wrapper.optimizer.lr=0.02'])
    assert code == 0 and '1 field(s) differ: optimiser' in lines


def test_protocol_diff_tool_shows_the_difference_it_found(tool_main):
    """Both values in full and the differing parts, even where the table cuts cells."""
    config = os.path.join(ROOT, 'configs', 'transfer', PAPER_CONFIGS['voc'])
    code, lines = tool_main('protocol_diff.py', [config, '--cfg-options', 'model.auxiliary_head.loss_decode.loss_weight=0.4'])
    assert code == 1
    at = lines.index('auxiliary head:')
    assert lines[at + 1].startswith('  reference:   FCNHead') and lines[at + 1].endswith('norm SyncBN')
    assert 'loss weight 0.2' in lines[at + 1] and 'loss weight 0.4' in lines[at + 2]
    assert lines[at + 3] == '  differs:     loss weight 0.2  ->  loss weight 0.4'


def test_top_level_parts_keep_brackets_whole():
    sys.path.insert(0, os.path.join(ROOT, 'tools'))
    from protocol_diff import explain_difference, top_level_parts
    assert top_level_parts('crop (513, 513), flip 0.5; pad 255') == ['crop (513, 513)', 'flip 0.5', 'pad 255']
    row = {'field': 'f', 'reference': 'a 1, b (2, 3)', 'config': 'a 1, b (2, 4), c'}
    assert explain_difference(row)[-1] == '  differs:     b (2, 3)  ->  b (2, 4); c'
