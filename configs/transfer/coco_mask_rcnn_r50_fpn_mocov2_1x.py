# The MoCo / mmselfsup COCO protocol, for comparison with other methods'
# tables (not the protocol of R2O's published numbers): Mask R-CNN R50-FPN,
# SyncBN, 4conv1fc box head, multi-scale training 640-800, batch 16, SGD lr
# 0.02, 12 epochs (x0.1 at 8 and 11).
_base_ = ['./_base_/mask_rcnn_r50_fpn_syncbn.py', 'mmdet::_base_/datasets/coco_instance.py',
          'mmdet::_base_/schedules/schedule_1x.py', 'mmdet::_base_/default_runtime.py']

protocol = 'MoCo/mmselfsup COCO Mask R-CNN R50-FPN 1x (12 epochs at batch 16, ms 640-800)'
reference_protocol = 'coco_mocov2_1x'
reference_batch = 16
model = dict(roi_head=dict(bbox_head=dict(
    type='Shared4Conv1FCBBoxHead', conv_out_channels=256, norm_cfg={{_base_.norm_cfg}})))
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
    dict(type='RandomChoiceResize', scales=[(1333, s) for s in range(640, 801, 32)], keep_ratio=True),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackDetInputs'),
]
train_dataloader = dict(batch_size=2, dataset=dict(pipeline=train_pipeline))
train_cfg = dict(val_interval=12)
auto_scale_lr = dict(enable=True, base_batch_size=16)
custom_hooks = [dict(type='PreciseBNHook', num_iters=200)]
