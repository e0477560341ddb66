# Runtime shared by every pretraining config.
custom_imports = dict(imports=['r2o_mm'], allow_failed_imports=False)
default_scope = None
# mmengine's Runner with atomic checkpoint writes (temporary name, fsync, rename).
runner_type = 'R2ORunner'

default_hooks = dict(
    runtime_info=dict(type='RuntimeInfoHook'),
    timer=dict(type='IterTimerHook'),  # iteration time and ETA in the logs
    # images/s every iteration; device-hours, images/s and peak memory in pretrain_info.json.
    throughput=dict(type='ThroughputHook'),
    logger=dict(type='LoggerHook', interval=50),
    param_scheduler=dict(type='ParamSchedulerHook'),
    # Every 100 epochs as released (the snapshots the tables use) ...
    checkpoint=dict(type='CheckpointHook', interval=100, max_keep_ckpts=-1, save_last=True),
    # ... and last.pth after every epoch, replaced each time: a kill loses at most one epoch.
    last_checkpoint=dict(type='LastCheckpointHook'),
    # SIGTERM / SIGUSR1: every rank finishes its iteration, last.pth is saved at
    # that iteration, exit code 75; under Slurm the job requeues itself.
    preemption=dict(type='PreemptionHook', signals=('SIGTERM', 'SIGUSR1'), requeue=True),
    # World size and global batch in every checkpoint; a resume that changes them warns.
    run_shape=dict(type='RunShapeHook'),
    # At the end: every rank holds the same weights (one log line).
    weights_agree=dict(type='WeightsAgreeHook'),
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
    # Every 10 epochs, k-NN top-1 (tools/eval_knn.py's definition) of the online
    # encoder on a class-balanced sample of ImageNet: 5 train and 2 val images
    # per class (7,000 images for ImageNet-1k), each rank embedding its share.
    # Without the folders one log line says how to turn it on.
    knn_monitor=dict(type='KnnMonitorHook', train_dir='data/imagenet/train', val_dir='data/imagenet/val',
                     train_per_class=5, val_per_class=2, interval=10, k=20, temperature=0.07, size=224,
                     batch=64),
)
env_cfg = dict(
    cudnn_benchmark=True,
    mp_cfg=dict(mp_start_method='fork', opencv_num_threads=0),
    dist_cfg=dict(backend='nccl'),  # tools/train.py switches to gloo without CUDA
)
# TensorBoard (`tensorboard --logdir work_dirs`) beside the local JSON logs;
# Weights & Biases: add dict(type='WandbVisBackend', init_kwargs=dict(project='r2o'))
# (after `pip install wandb`; it is not a dependency of this project).
vis_backends = [dict(type='LocalVisBackend'), dict(type='TensorboardVisBackend')]
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
