# Mask R-CNN R50-FPN for transfer: SyncBN in backbone, FPN and heads
# (4conv1fc box head), nothing frozen, norm_eval off. The backbone is
# initialised from the exported R2O encoder, whose path tools/transfer_run.py
# writes into `model.backbone.init_cfg.checkpoint`.
_base_ = ['mmdet::_base_/models/mask-rcnn_r50_fpn.py']
custom_imports = dict(imports=['r2o_mm'], allow_failed_imports=False)

norm_cfg = dict(type='SyncBN', requires_grad=True)
model = dict(
    backbone=dict(frozen_stages=-1, norm_cfg=norm_cfg, norm_eval=False,
                  init_cfg=dict(type='Pretrained', checkpoint=None)),
    neck=dict(norm_cfg=norm_cfg),
    roi_head=dict(
        bbox_head=dict(type='Shared4Conv1FCBBoxHead', conv_out_channels=256, norm_cfg=norm_cfg),
        mask_head=dict(norm_cfg=norm_cfg)))
