# Cityscapes semantic segmentation: the authors' evaluation/cityscapes/
# config_cityscapes.py (mmseg 0.x; its data.train.pipeline is the one used,
# the top-level train_pipeline is never referenced), docs/method.md section 5.
#   model: the VOC FCN without auxiliary head; decode head concat_input off,
#     align_corners on; 19 classes
#   train: rescale (2049, 1025) x U(0.5, 2.0) keeping the ratio, crop 769 with
#     cat_max_ratio 0.99, flip 0.5, no photometric distortion, pad 769
#   batch 16 (4 GPUs x 4 in the release), SGD lr 0.04, momentum 0.9, wd 1e-4,
#   160 epochs, x0.1 at epochs 112 and 144
#   test: whole image at (2049, 1025) keeping the ratio, on val (500 images)
_base_ = ['./_base_/fcn_r50_d16_plain.py', 'mmseg::_base_/datasets/cityscapes_769x769.py']

protocol = "DetCon Cityscapes FCN-R50-D16 (the authors' config), 160 epochs, batch 16"
reference_protocol = 'cityscapes'
reference_batch = 16
crop_size = (769, 769)
model = dict(
    data_preprocessor=dict(size=crop_size),
    decode_head=dict(num_classes=19, concat_input=False, align_corners=True),
    auxiliary_head=None,
    test_cfg=dict(mode='whole'))

train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations'),
    dict(type='RandomResize', scale=(2049, 1025), ratio_range=(0.5, 2.0), keep_ratio=True),
    dict(type='RandomCrop', crop_size=crop_size, cat_max_ratio=0.99),  # mmseg's base: 0.75
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackSegInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(2049, 1025), keep_ratio=True),
    dict(type='LoadAnnotations'),
    dict(type='PackSegInputs'),
]
train_dataloader = dict(batch_size=2, sampler=dict(type='DefaultSampler', shuffle=True),
                        dataset=dict(pipeline=train_pipeline))
val_dataloader = dict(dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader
optim_wrapper = dict(type='OptimWrapper',
                     optimizer=dict(type='SGD', lr=0.04, momentum=0.9, weight_decay=1e-4))
param_scheduler = [dict(type='MultiStepLR', by_epoch=True, begin=0, end=160,
                        milestones=[112, 144], gamma=0.1)]
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=160, val_interval=160)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
default_hooks = dict(checkpoint=dict(type='CheckpointHook', by_epoch=True, interval=20,
                                     max_keep_ckpts=2, save_last=True),
                     logger=dict(type='LoggerHook', interval=50, log_metric_by_epoch=True))
log_processor = dict(by_epoch=True)
auto_scale_lr = dict(enable=True, base_batch_size=16)
