# R2O, ImageNet-1k, 300 epochs: the released recipe (Table 1 weights).
# Global batch 4096 = 32 per GPU x 128 GPUs; the lr follows the actual global
# batch (0.3 x batch / 256), so fewer GPUs give a smaller batch and lr.
_base_ = [
    '_base_/default_runtime.py',
    '_base_/models/r2o_r50.py',
    '_base_/datasets/imagenet_r2o.py',
    '_base_/schedules/lars_300e.py',
]
# What the released run used; the start-up log warns when this run differs.
released_recipe = dict(global_batch=4096, world_size=128, epochs=300)
