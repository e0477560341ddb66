# Runtime shared by every pretraining config.
custom_imports = dict(imports=['r2o_mm'], allow_failed_imports=False)
default_scope = None

default_hooks = dict(
    runtime_info=dict(type='RuntimeInfoHook'),
    timer=dict(type='IterTimerHook'),  # iteration time and ETA in the logs
    logger=dict(type='LoggerHook', interval=50),
    param_scheduler=dict(type='ParamSchedulerHook'),
    # Every 100 epochs as released, plus `last_checkpoint` for --resume.
    checkpoint=dict(type='CheckpointHook', interval=100, max_keep_ckpts=-1, save_last=True),
    sampler_seed=dict(type='DistSamplerSeedHook'),
    # pretrain_info.json: what tools/collect_results.py needs to place the run.
    pretrain_info=dict(type='PretrainInfoHook'),
    # The total of unreadable images skipped by all data workers, at the end.
    skipped_images=dict(type='SkippedImagesHook'),
    # Health signals: stop on a NaN/inf loss; every 10 epochs the mBO of the
    # predicted masks on a fixed labelled set (a few hundred COCO val2017
    # images) at the current K and at K = 128, 16, 4, with the Fig. 3 picture.
    # Without the annotation file one log line says how to turn it on.
    nonfinite_loss=dict(type='StopOnNonFiniteLossHook'),
    mask_quality=dict(type='MaskQualityHook', ann_file='data/coco/annotations/instances_val2017.json',
                      image_dir='data/coco/val2017', interval=10, reference_ks=(128, 16, 4),
                      max_images=300, size=224, batch=32),
)
env_cfg = dict(
    cudnn_benchmark=True,
    mp_cfg=dict(mp_start_method='fork', opencv_num_threads=0),
    dist_cfg=dict(backend='nccl'),  # tools/train.py switches to gloo without CUDA
)
vis_backends = [dict(type='LocalVisBackend')]  # add dict(type='TensorboardVisBackend')
visualizer = dict(type='Visualizer', vis_backends=vis_backends)
# K and tau are logged as they are (not smoothed), so a resumed run's log
# continues the same values.
log_processor = dict(window_size=10, by_epoch=True,
                     custom_cfg=[dict(data_src='K', method_name='current'),
                                 dict(data_src='tau', method_name='current')])
log_level = 'INFO'
load_from = None
resume = False
randomness = dict(seed=0, diff_rank_seed=True)
