# COCO detection and instance segmentation: the authors' detectron2 config
# (evaluation/coco/base.yaml + config_coco.yaml, detectron2's defaults where
# they set nothing; DetCon protocol, the released R2O numbers), docs/method.md section 5.
#   model: Mask R-CNN R50-FPN (base), RGB with torchvision mean/std
#   batch 64, SGD lr 0.1, momentum 0.9, wd 4e-5 and none on norm layers
#   (detectron2's WEIGHT_DECAY_NORM = 0; biases keep it), 500 linear warm-up
#   iterations from 0.001, x0.1 at 2/3 and 8/9 of training, 1x = 24k iterations
#   large-scale jitter: flip, long side 1024 x U(0.8, 1.25), fixed 1024x1024
#   crop, padded with 128 where the image is smaller (detectron2's
#   FixedSizeCrop, before normalisation)
#   test: long side 1024, no padding to a fixed size; precise BN first
# With fewer images per step, tools/transfer_run.py scales iterations up and
# the lr down (same epochs), as the authors' 8-GPU runs did (batch 32, lr
# 0.05, 48k iterations).
_base_ = ['./_base_/mask_rcnn_r50_fpn_syncbn.py', 'mmdet::common/lsj-100e_coco-instance.py']

protocol = "DetCon COCO Mask R-CNN R50-FPN 1x (the authors' config: 24k iterations at batch 64)"
reference_protocol = 'coco_1x'
reference_batch = 64
image_size = (1024, 1024)
model = dict(data_preprocessor=dict(batch_augments=None))

train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
    dict(type='RandomResize', scale=image_size, ratio_range=(0.8, 1.25), keep_ratio=True),
    dict(type='RandomCrop', crop_type='absolute_range', crop_size=image_size,
         recompute_bbox=True, allow_negative_crop=True),
    dict(type='FilterAnnotations', min_gt_bbox_wh=(1e-2, 1e-2)),
    dict(type='RandomFlip', prob=0.5),
    dict(type='Pad', size=image_size, pad_val=dict(img=(128, 128, 128), seg=255)),
    dict(type='PackDetInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=image_size, keep_ratio=True),
    dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
    dict(type='PackDetInputs',
         meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape', 'scale_factor')),
]
train_dataloader = dict(
    batch_size=8,  # per GPU: 8 x 8 GPUs = 64
    sampler=dict(type='InfiniteSampler', shuffle=True),
    dataset=dict(_delete_=True, type='CocoDataset', data_root='data/coco/',
                 ann_file='annotations/instances_train2017.json', data_prefix=dict(img='train2017/'),
                 filter_cfg=dict(filter_empty_gt=True, min_size=32), pipeline=train_pipeline))
val_dataloader = dict(dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader

max_iters = 24000
train_cfg = dict(_delete_=True, type='IterBasedTrainLoop', max_iters=max_iters,
                 val_interval=max_iters)
optim_wrapper = dict(type='OptimWrapper',
                     optimizer=dict(type='SGD', lr=0.1, momentum=0.9, weight_decay=4e-5),
                     paramwise_cfg=dict(norm_decay_mult=0.0))
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-3, by_epoch=False, begin=0, end=500),
    dict(type='MultiStepLR', by_epoch=False, begin=0, end=max_iters,
         milestones=[16000, 21333], gamma=0.1),
]
default_hooks = dict(checkpoint=dict(by_epoch=False, interval=4000, max_keep_ckpts=2, save_last=True),
                     logger=dict(log_metric_by_epoch=False))
log_processor = dict(by_epoch=False)
custom_hooks = [dict(type='PreciseBNHook', num_iters=200)]
auto_scale_lr = dict(enable=True, base_batch_size=64)
