# Baseline in the same code: BYOL = R2O with one whole-image mask (global
# average pooling), no mask prediction, no lr coupling.
_base_ = ['_base_/r2o_imagenet100.py']

model = dict(mask_source='whole_image')
custom_hooks = [
    dict(type='R2OLearningRateHook', lr_per_256=0.3, warmup_epochs=3, couple_to_clusters=False),
    dict(type='TargetEMAHook', base_tau=0.99),
]
