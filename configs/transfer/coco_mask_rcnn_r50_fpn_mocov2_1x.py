# The MoCo / mmselfsup COCO protocol, for comparison with other methods'
# tables (not the protocol of R2O's published numbers): Mask R-CNN R50-FPN,
# SyncBN, 4conv1fc box head, multi-scale training 640-800, batch 16, SGD lr
# 0.02, 12 epochs (x0.1 at 8 and 11).
_base_ = ['mmdet::mask_rcnn/mask-rcnn_r50_fpn_1x_coco.py']
custom_imports = dict(imports=['r2o_mm'], allow_failed_imports=False)

protocol = 'MoCo/mmselfsup COCO Mask R-CNN R50-FPN 1x (12 epochs at batch 16, ms 640-800)'
reference_batch = 16
norm_cfg = dict(type='SyncBN', requires_grad=True)
model = dict(
    backbone=dict(frozen_stages=-1, norm_cfg=norm_cfg, norm_eval=False,
                  init_cfg=dict(type='Pretrained', checkpoint=None)),
    neck=dict(norm_cfg=norm_cfg),
    roi_head=dict(
        bbox_head=dict(type='Shared4Conv1FCBBoxHead', conv_out_channels=256, norm_cfg=norm_cfg),
        mask_head=dict(norm_cfg=norm_cfg)))
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
