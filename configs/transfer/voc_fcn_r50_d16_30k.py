# PASCAL VOC 2012 semantic segmentation, SPEC section 5 (DetCon protocol):
# FCN R50-D16 (head: 2 convs, 256 channels, dilation 6, concat input, dropout
# 0.1; auxiliary FCN head on layer3 with loss weight 0.2), SyncBN, train_aug
# (10,582 images), rescale 0.5-2.0, crop 513, flip, batch 16, SGD lr 0.01,
# momentum 0.9, wd 1e-4, x0.1 at 21k and 27k, 30k iterations, single-scale
# test on val (1,449 images), mIoU over 21 classes.
_base_ = ['./_base_/fcn_r50_d16_plain.py', 'mmseg::_base_/datasets/pascal_voc12_aug.py']

protocol = 'DetCon VOC FCN-R50-D16, 30k iterations, batch 16'
reference_batch = 16  # batch and iteration counts are rescaled to the actual batch
crop_size = (513, 513)
model = dict(
    data_preprocessor=dict(size=crop_size),
    decode_head=dict(num_classes=21),
    auxiliary_head=dict(num_classes=21, loss_decode=dict(loss_weight=0.2)))

train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations'),
    dict(type='RandomResize', scale=(2048, 512), ratio_range=(0.5, 2.0), keep_ratio=True),
    dict(type='RandomCrop', crop_size=crop_size, cat_max_ratio=0.75),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PhotoMetricDistortion'),
    dict(type='PackSegInputs'),
]
# train_aug only (SegmentationClassAug, aug.txt: 10,582 images, VOC train included).
train_dataloader = dict(
    batch_size=2,  # per GPU: 2 x 8 GPUs = 16
    dataset=dict(_delete_=True, type='PascalVOCDataset', data_root='data/VOCdevkit/VOC2012',
                 data_prefix=dict(img_path='JPEGImages', seg_map_path='SegmentationClassAug'),
                 ann_file='ImageSets/Segmentation/aug.txt', pipeline=train_pipeline))

optim_wrapper = dict(type='OptimWrapper',
                     optimizer=dict(type='SGD', lr=0.01, momentum=0.9, weight_decay=1e-4))
param_scheduler = [dict(type='MultiStepLR', by_epoch=False, begin=0, end=30000,
                        milestones=[21000, 27000], gamma=0.1)]
train_cfg = dict(type='IterBasedTrainLoop', max_iters=30000, val_interval=30000)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
default_hooks = dict(checkpoint=dict(type='CheckpointHook', by_epoch=False, interval=5000,
                                     max_keep_ckpts=2, save_last=True))
auto_scale_lr = dict(enable=True, base_batch_size=16)
