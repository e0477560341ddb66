# DetCon protocol 2x: 48k iterations at batch 64, x0.1 at 32k and 42.666k.
_base_ = ['./coco_mask_rcnn_r50_fpn_detcon_1x.py']

protocol = "DetCon COCO Mask R-CNN R50-FPN 2x (the authors' config: 48k iterations at batch 64)"
reference_protocol = 'coco_2x'
max_iters = 48000
train_cfg = dict(max_iters=max_iters, val_interval=max_iters)
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-3, by_epoch=False, begin=0, end=500),
    dict(type='MultiStepLR', by_epoch=False, begin=0, end=max_iters,
         milestones=[32000, 42666], gamma=0.1),
]
