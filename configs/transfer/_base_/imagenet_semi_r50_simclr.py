# Semi-supervised ImageNet fine-tuning, SimCLR's protocol (Chen et al. 2020,
# "A Simple Framework for Contrastive Learning of Visual Representations",
# appendix B.5; the protocol BYOL and most ResNet-50 SSL papers report 1% and
# 10% results with), on mmpretrain 1.2.0's classifier. The label subsets are
# SimCLR's published lists (1percent.txt: 12,811 images; 10percent.txt:
# 128,116 images), set by the two task configs with the number of epochs.
#   model: ResNet-50 (pytorch style), the whole network fine-tuned, BatchNorm
#     synchronised across GPUs (SimCLR's global BN), a linear head
#     2048 -> 1000 with cross-entropy (mmpretrain's LinearClsHead; SimCLR's
#     text does not state the head's initialisation: mmpretrain's N(0, 0.01))
#   data: "only random cropping (with random left-to-right flipping and
#     resizing to 224x224)": Inception crop, scale 0.08-1, ratio 3/4-4/3,
#     bicubic (SimCLR's random_crop_with_resize), flip 0.5; test: short side
#     256 (bicubic), centre crop 224, i.e. the central 87.5% (SimCLR's
#     center_crop, crop_proportion 0.875, which crops before resizing); RGB,
#     ImageNet mean/std; evaluation on the whole val set
#   batch 4096, SGD with Nesterov momentum 0.9, lr 0.8 (0.05 x 4096 / 256),
#     no weight decay (no regularisation), no warm-up; cosine decay to 0,
#     stepped per iteration (SimCLR's learning-rate schedule)
#   metrics: top-1 and top-5 on val
_base_ = ['mmpretrain::_base_/models/resnet50.py', 'mmpretrain::_base_/datasets/imagenet_bs32_pil_resize.py',
          'mmpretrain::_base_/default_runtime.py']
custom_imports = dict(imports=['r2o_mm', 'r2o_mm.transfer.classification'], allow_failed_imports=False)

reference_batch = 4096  # lr is rescaled linearly to the actual global batch (recorded as a deviation)
data_root = 'data/imagenet'
model = dict(backbone=dict(frozen_stages=-1, norm_cfg=dict(type='SyncBN', requires_grad=True),
                           init_cfg=dict(type='Pretrained', checkpoint=None)))
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='RandomResizedCrop', scale=224, crop_ratio_range=(0.08, 1.0), aspect_ratio_range=(3. / 4., 4. / 3.),
         interpolation='bicubic', backend='pillow'),
    dict(type='RandomFlip', prob=0.5, direction='horizontal'),
    dict(type='PackInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='ResizeEdge', scale=256, edge='short', interpolation='bicubic', backend='pillow'),
    dict(type='CenterCrop', crop_size=224),
    dict(type='PackInputs'),
]
train_dataloader = dict(batch_size=512,  # per GPU: 8 x 512 = 4096
                        dataset=dict(_delete_=True, type='ImageNetFolder', data_root=data_root, split='train',
                                     subset_file=None, pipeline=train_pipeline))
val_dataloader = dict(batch_size=64, dataset=dict(_delete_=True, type='ImageNetFolder', data_root=data_root,
                                                  split='val', pipeline=test_pipeline))
test_dataloader = val_dataloader
optim_wrapper = dict(type='OptimWrapper',
                     optimizer=dict(type='SGD', lr=0.8, momentum=0.9, nesterov=True, weight_decay=0.0))
max_epochs = 60
param_scheduler = [dict(type='CosineAnnealingLR', T_max=max_epochs, by_epoch=True, begin=0, end=max_epochs,
                        eta_min=0.0, convert_to_iter_based=True)]
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=max_epochs, val_interval=max_epochs)
val_cfg = dict()
test_cfg = dict()
default_hooks = dict(checkpoint=dict(type='CheckpointHook', interval=10, max_keep_ckpts=2, save_last=True))
