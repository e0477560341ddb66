# Cityscapes semantic segmentation, SPEC section 5 (DetCon protocol): the same
# FCN without auxiliary head, concat_input off, align_corners on; 19 classes,
# rescale 0.5-2.0 around 2049x1025, crop 769, flip, batch 16, SGD lr 0.04,
# wd 1e-4, 160 epochs with x0.1 at epochs 112 and 144; whole-image test at
# 2049x1025 on val (500 images).
_base_ = ['./_base_/fcn_r50_d16_plain.py', 'mmseg::_base_/datasets/cityscapes_769x769.py']

protocol = 'DetCon Cityscapes FCN-R50-D16, 160 epochs, batch 16'
reference_batch = 16
crop_size = (769, 769)
model = dict(
    data_preprocessor=dict(size=crop_size),
    decode_head=dict(num_classes=19, concat_input=False, align_corners=True),
    auxiliary_head=None,
    test_cfg=dict(mode='whole'))

train_dataloader = dict(batch_size=2, sampler=dict(type='DefaultSampler', shuffle=True))
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
