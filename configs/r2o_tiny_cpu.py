# Tiny R2O for tests and the demo: ResNet-18, 64x64 input, a folder of a few
# images (r2o_mm.data.sample_images.write_photo_folder('data/tiny') writes
# one), 2 epochs of batch 4, CPU friendly. The demo overrides sizes and epochs.
# Same code paths as the paper's config; only sizes change.
_base_ = ['r2o_imagenet_300e.py']

input_size = 64
model = dict(depth=18, projector_hidden=256, projection_dim=64, predictor_hidden=256,
             num_clusters=8, kmeans_iters=50)
train_pipeline = [
    dict(type='LoadImageRGB'),
    dict(type='TwoViews', size=input_size, always_flip=True),
    dict(type='RawViewSuperpixels', size=input_size, n_segments=100, compactness=10,
         slic_on_normalized=True, ignore_n_segments=True, cache_dir=None),
    dict(type='PackR2OInputs'),
]
train_dataloader = dict(
    batch_size=4, num_workers=0, persistent_workers=False, pin_memory=False,
    dataset=dict(_delete_=True, type='ImageList', data_root='data/tiny', pipeline=train_pipeline))

max_epochs = 2
train_cfg = dict(max_epochs=max_epochs)
released_recipe = None  # a test size, not a recipe
default_hooks = dict(logger=dict(interval=1), checkpoint=dict(interval=1),
                     mask_quality=dict(interval=1, reference_ks=(8, 4), max_images=16, size=input_size,
                                       batch=8, ann_file=None, image_dir=None),
                     knn_monitor=dict(interval=1, size=input_size, batch=16, train_dir=None, val_dir=None))
custom_hooks = [
    dict(type='ClusterScheduleHook', kind='cosine', start=8, end=2),
    dict(type='R2OLearningRateHook', lr_per_256=0.3, warmup_epochs=1, couple_to_clusters=True),
    dict(type='TargetEMAHook', base_tau=0.99),
    dict(type='MaskVisualizationHook', interval=4, num_images=2),
]
env_cfg = dict(cudnn_benchmark=False)
