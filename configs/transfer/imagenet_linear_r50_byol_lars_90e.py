# ImageNet-1k linear classification on the frozen encoder: mmpretrain 1.2.0's
# BYOL benchmark, configs/byol/benchmarks/resnet50_8xb512-linear-coslr-90e_in1k.py
# (the protocol of mmpretrain's model zoo for ResNet-50 SSL methods: BYOL
# 71.8 top-1 after 200 epochs, results/published.csv), inherited as it is;
# `tools/protocol_diff.py` checks every field against r2o_mm/transfer/protocols.py.
#   model: ResNet-50 (pytorch style), frozen_stages=4: stem and all four
#     stages frozen, their BatchNorm layers in eval mode (mmpretrain's
#     ResNet._freeze_stages, called again by train()); global average pooling;
#     a linear head 2048 -> 1000, cross-entropy, initialised N(0, 0.01)
#     (mmpretrain's LinearClsHead default)
#   data: all of ImageNet train, RandomResizedCrop 224 (scale 0.08-1, ratio
#     3/4-4/3, bilinear, pillow) and flip 0.5 (the base
#     _base_/datasets/imagenet_bs32_pil_resize.py); test: short side 256
#     (bilinear, pillow), centre crop 224, on val; RGB, ImageNet mean/std
#   batch 4096 (8 GPUs x 512), LARS lr 1.6, momentum 0.9, weight decay 0,
#     cosine to 0 over 90 epochs, stepped per epoch, no warm-up
#     (_base_/schedules/imagenet_lars_coslr_90e.py)
#   metrics: top-1 and top-5 on val
# The only changes: the dataset reads ImageNet's folder layout through
# r2o_mm's ImageNetFolder (mmpretrain's CustomDataset; the same images and
# class order as mmpretrain's ImageNet), the backbone is initialised from the
# exported encoder (no 'backbone.' prefix: the export is the bare ResNet), and
# a check after training that the frozen backbone still equals the export.
_base_ = ['mmpretrain::byol/benchmarks/resnet50_8xb512-linear-coslr-90e_in1k.py']
custom_imports = dict(imports=['r2o_mm', 'r2o_mm.transfer.classification'], allow_failed_imports=False)

protocol = 'mmpretrain BYOL linear (resnet50_8xb512-linear-coslr-90e_in1k), 90 epochs, batch 4096'
reference_protocol = 'imagenet_linear'
reference_batch = 4096  # lr is rescaled linearly to the actual global batch (recorded as a deviation)
data_root = 'data/imagenet'
model = dict(backbone=dict(init_cfg=dict(_delete_=True, type='Pretrained', checkpoint=None)))
train_dataloader = dict(dataset=dict(_delete_=True, type='ImageNetFolder', data_root=data_root, split='train',
                                     pipeline={{_base_.train_pipeline}}))
val_dataloader = dict(dataset=dict(_delete_=True, type='ImageNetFolder', data_root=data_root, split='val',
                                   pipeline={{_base_.test_pipeline}}))
test_dataloader = val_dataloader
custom_hooks = [dict(type='FrozenBackboneCheckHook')]
