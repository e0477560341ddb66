# Mask R-CNN R50-FPN of the authors' detectron2 config (docs/method.md section 5): SyncBN
# in the backbone, the FPN and the mask head (4 convs x 256); the box head is
# mmdet's default Shared2FCBBoxHead (detectron2 NUM_FC 2, NUM_CONV 0: no conv,
# hence no norm); nothing frozen, norm_eval off. The backbone is initialised
# from the exported R2O encoder, whose path tools/transfer_run.py writes into
# `model.backbone.init_cfg.checkpoint`.
_base_ = ['mmdet::_base_/models/mask-rcnn_r50_fpn.py']
custom_imports = dict(imports=['r2o_mm'], allow_failed_imports=False)

norm_cfg = dict(type='SyncBN', requires_grad=True)
model = dict(
    backbone=dict(frozen_stages=-1, norm_cfg=norm_cfg, norm_eval=False,
                  init_cfg=dict(type='Pretrained', checkpoint=None)),
    neck=dict(norm_cfg=norm_cfg),
    roi_head=dict(mask_head=dict(norm_cfg=norm_cfg)))
