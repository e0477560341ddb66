# The released 300-epoch recipe (docs/method.md section 4).
max_epochs = 300
optim_wrapper = dict(
    type='OptimWrapper',
    # lr is set every step by R2OLearningRateHook. Biases and norm parameters
    # get no weight decay and no trust ratio; exclusion='released' (Quirk Q10)
    # keeps the released name rule's slip (the stem BN weight is adapted and
    # decayed; trust eta / wd where the gradient is 0), 'ndim' excludes every
    # parameter with ndim <= 1.
    constructor='LARSOptimWrapperConstructor',
    optimizer=dict(type='LARS', lr=0.0, momentum=0.9, weight_decay=1e-6, eta=1e-3,
                   exclusion='released'),
)
# mmengine's epoch loop that also resumes inside an epoch (with the next batch).
train_cfg = dict(type='ResumableEpochBasedTrainLoop', max_epochs=max_epochs)
custom_hooks = [
    # K: cosine from 128 at epoch 0 to 4 at the last epoch, set once per epoch.
    dict(type='ClusterScheduleHook', kind='cosine', start=128, end=4),
    # lr = 0.3 x (actual global batch) / 256, 3 warm-up epochs, cosine to 0,
    # then x K/16: the released "lr fix" (Quirk Q3; VOC 76.7 -> 77.3).
    dict(type='R2OLearningRateHook', lr_per_256=0.3, warmup_epochs=3, couple_to_clusters=True),
    # tau from 0.99 to 1 (share of the old target weights), once per optimiser step.
    dict(type='TargetEMAHook', base_tau=0.99),
    dict(type='MaskVisualizationHook', interval=5000, num_images=4),
]
# SyncBN across GPUs (a single process keeps plain BN: not comparable numbers).
sync_bn = 'torch'
