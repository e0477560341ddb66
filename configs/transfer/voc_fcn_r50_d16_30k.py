# PASCAL VOC 2012 semantic segmentation: the authors' evaluation/pascal/
# config_pascal.py (mmseg 0.x), docs/method.md section 5; `tools/protocol_diff.py` checks
# every field against r2o_mm/transfer/protocols.py.
#   model: FCN, plain ResNet-50 at output stride 16 (base); decode head 2 convs
#     x 256, dilation 6, concat input, dropout 0.1; auxiliary FCN head on layer3
#     with 2 convs x 256, dilation 6, no concat, dropout 0.1, loss weight 0.2
#   data: VOC train (train.txt, SegmentationClass, 1,464) + SBD aug (aug.txt,
#     SegmentationClassAug, 9,118) = 10,582 images: mmseg's voc_aug converter
#     writes aug.txt without the VOC train images, so both lists are read
#   train: rescale by U(0.5, 2.0) of the image's *own* size (mmseg 0.x
#     Resize(img_scale=None, ratio_range=(0.5, 2.0))), crop 513 with
#     cat_max_ratio 0.99, flip 0.5, no photometric distortion, pad 513 (label 255)
#   batch 16 (2 GPUs x 8 in the release), SGD lr 0.01, momentum 0.9, wd 1e-4,
#   x0.1 at 21k and 27k of 30k iterations
#   test: single scale at the image's own size (no resize), whole image, val
_base_ = ['./_base_/fcn_r50_d16_plain.py', 'mmseg::_base_/datasets/pascal_voc12_aug.py']

protocol = "DetCon VOC FCN-R50-D16 (the authors' config), 30k iterations, batch 16"
reference_protocol = 'voc'
reference_batch = 16  # iterations and lr are rescaled to the actual global batch
crop_size = (513, 513)
model = dict(
    data_preprocessor=dict(size=crop_size),
    decode_head=dict(num_classes=21),
    auxiliary_head=dict(num_classes=21, channels=256, num_convs=2, dilation=6, concat_input=False,
                        dropout_ratio=0.1, loss_decode=dict(loss_weight=0.2)))

train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations'),
    dict(type='RandomRescaleByRatio', ratio_range=(0.5, 2.0)),
    dict(type='RandomCrop', crop_size=crop_size, cat_max_ratio=0.99),  # mmseg's base: 0.75
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackSegInputs'),
]
test_pipeline = [  # the image's own size
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations'),
    dict(type='PackSegInputs'),
]
data_root = 'data/VOCdevkit/VOC2012'
voc_train = dict(type='PascalVOCDataset', data_root=data_root,
                 data_prefix=dict(img_path='JPEGImages', seg_map_path='SegmentationClass'),
                 ann_file='ImageSets/Segmentation/train.txt', pipeline=train_pipeline)
sbd_aug = dict(type='PascalVOCDataset', data_root=data_root,
               data_prefix=dict(img_path='JPEGImages', seg_map_path='SegmentationClassAug'),
               ann_file='ImageSets/Segmentation/aug.txt', pipeline=train_pipeline)
train_dataloader = dict(
    batch_size=2,  # per GPU: 2 x 8 GPUs = 16
    dataset=dict(_delete_=True, type='ConcatDataset', datasets=[voc_train, sbd_aug]))
val_dataloader = dict(dataset=dict(data_root=data_root, pipeline=test_pipeline))
test_dataloader = val_dataloader

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
