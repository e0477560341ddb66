# Table 4, no mask prediction: the SLIC superpixels themselves are the regions
# (K "off" = 9999 for the whole run). The lr is not coupled to K here (K/16
# would be meaningless for superpixels).
_base_ = ['_base_/r2o_imagenet100.py']

custom_hooks = [
    dict(type='ClusterScheduleHook', kind='constant', start=9999),
    dict(type='R2OLearningRateHook', lr_per_256=0.3, warmup_epochs=3, couple_to_clusters=False),
    dict(type='TargetEMAHook', base_tau=0.99),
    dict(type='MaskVisualizationHook', interval=5000, num_images=4),
]
