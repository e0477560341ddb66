# FCN on a *plain* ResNet-50 (torchvision stem, not mmseg's ResNetV1c), output
# stride 16 (strides 1,2,2,1; dilations 1,1,1,2; contract_dilation), SyncBN
# everywhere, norm_eval off: the backbone of the authors' VOC and Cityscapes
# configs (docs/method.md section 5). The backbone is initialised from the exported R2O
# encoder, whose path tools/transfer_run.py writes into
# `model.backbone.init_cfg.checkpoint`.
_base_ = ['mmseg::_base_/models/fcn_r50-d8.py', 'mmseg::_base_/default_runtime.py']
custom_imports = dict(imports=['r2o_mm'], allow_failed_imports=False)

norm_cfg = dict(type='SyncBN', requires_grad=True)
model = dict(
    pretrained=None,
    backbone=dict(
        _delete_=True,
        type='ResNet',
        depth=50,
        num_stages=4,
        out_indices=(0, 1, 2, 3),
        strides=(1, 2, 2, 1),
        dilations=(1, 1, 1, 2),
        norm_cfg=norm_cfg,
        norm_eval=False,
        style='pytorch',
        contract_dilation=True,
        init_cfg=dict(type='Pretrained', checkpoint=None)),
    # Both released configs: 2 convs of 256 channels with dilation 6, dropout 0.1.
    decode_head=dict(channels=256, num_convs=2, dilation=6, concat_input=True, dropout_ratio=0.1),
)
