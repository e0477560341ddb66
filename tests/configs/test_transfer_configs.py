"""Transfer configs state the protocols of SPEC section 5 (and its traps, section 8)."""
import os

from mmengine.config import Config

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def load(name):
    return Config.fromfile(os.path.join(ROOT, 'configs', 'transfer', name))


def test_voc_protocol():
    cfg = load('voc_fcn_r50_d16_30k.py')
    backbone = cfg.model.backbone
    assert backbone.type == 'ResNet' and backbone.depth == 50  # plain stem, not ResNetV1c
    assert backbone.strides == (1, 2, 2, 1) and backbone.dilations == (1, 1, 1, 2)
    assert backbone.norm_cfg.type == 'SyncBN' and backbone.norm_eval is False
    assert cfg.model.pretrained is None and backbone.init_cfg.type == 'Pretrained'
    head = cfg.model.decode_head
    assert (head.num_convs, head.channels, head.dilation, head.concat_input, head.dropout_ratio,
            head.num_classes) == (2, 256, 6, True, 0.1, 21)
    assert cfg.model.auxiliary_head.in_index == 2 and cfg.model.auxiliary_head.loss_decode.loss_weight == 0.2
    assert cfg.crop_size == (513, 513) and cfg.train_dataloader.dataset.ann_file.endswith('aug.txt')
    assert cfg.train_dataloader.dataset.data_prefix.seg_map_path == 'SegmentationClassAug'
    assert cfg.train_dataloader.dataset.pipeline[2].ratio_range == (0.5, 2.0)
    assert cfg.optim_wrapper.optimizer == dict(type='SGD', lr=0.01, momentum=0.9, weight_decay=1e-4)
    assert cfg.param_scheduler[0].milestones == [21000, 27000] and cfg.train_cfg.max_iters == 30000
    assert cfg.train_dataloader.batch_size * 8 == cfg.reference_batch == 16


def test_cityscapes_protocol():
    cfg = load('cityscapes_fcn_r50_d16_160e.py')
    assert cfg.model.auxiliary_head is None and cfg.model.test_cfg.mode == 'whole'
    head = cfg.model.decode_head
    assert head.concat_input is False and head.align_corners is True and head.num_classes == 19
    assert cfg.crop_size == (769, 769)
    assert cfg.train_dataloader.dataset.pipeline[2].scale == (2049, 1025)
    assert cfg.test_dataloader.dataset.pipeline[1].scale == (2049, 1025)
    assert cfg.optim_wrapper.optimizer.lr == 0.04 and cfg.optim_wrapper.optimizer.weight_decay == 1e-4
    assert cfg.train_cfg.max_epochs == 160 and cfg.param_scheduler[0].milestones == [112, 144]


def test_coco_detcon_protocols():
    one = load('coco_mask_rcnn_r50_fpn_detcon_1x.py')
    assert one.model.backbone.frozen_stages == -1 and one.model.backbone.norm_eval is False
    assert one.model.neck.norm_cfg.type == 'SyncBN'
    assert one.model.roi_head.bbox_head.norm_cfg.type == 'SyncBN'
    assert one.model.roi_head.mask_head.norm_cfg.type == 'SyncBN'
    assert one.optim_wrapper.optimizer.lr == 0.1 and one.optim_wrapper.optimizer.weight_decay == 4e-5
    assert one.param_scheduler[0].end == 500
    assert one.train_cfg.max_iters == 24000 and one.param_scheduler[1].milestones == [16000, 21333]
    assert one.train_dataloader.dataset.pipeline[2].ratio_range == (0.8, 1.25)
    assert one.train_dataloader.dataset.pipeline[3].crop_size == (1024, 1024)
    assert one.reference_batch == 64 and one.custom_hooks[0].type == 'PreciseBNHook'
    two = load('coco_mask_rcnn_r50_fpn_detcon_2x.py')
    assert two.train_cfg.max_iters == 48000 and two.param_scheduler[1].milestones == [32000, 42666]
    moco = load('coco_mask_rcnn_r50_fpn_mocov2_1x.py')
    assert moco.train_cfg.max_epochs == 12 and moco.optim_wrapper.optimizer.lr == 0.02
    assert moco.model.backbone.norm_cfg.type == 'SyncBN' and moco.reference_batch == 16
