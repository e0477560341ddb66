"""Every pretraining config loads, builds, and states the recipe of docs/method.md section 4."""
import glob
import os

import pytest
from mmengine.config import Config
from mmengine.registry import MODELS

import r2o_mm  # noqa: F401

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CONFIGS = sorted(glob.glob(os.path.join(ROOT, 'configs', '*.py')))


def hooks(cfg):
    return {hook['type']: hook for hook in cfg.custom_hooks}


@pytest.mark.parametrize('path', CONFIGS, ids=os.path.basename)
def test_config_builds_its_model(path):
    cfg = Config.fromfile(path)
    model_cfg = cfg.model.copy()
    model_cfg.update(depth=18, projector_hidden=32, predictor_hidden=32, projection_dim=16)
    model = MODELS.build(model_cfg)
    assert model.paint_mode == 'bilinear_truncate' and model.pool_divisor == 'clamp_one'
    assert 'TargetEMAHook' in hooks(cfg)


def test_released_recipe():
    cfg = Config.fromfile(os.path.join(ROOT, 'configs', 'r2o_imagenet_300e.py'))
    assert cfg.model.depth == 50 and cfg.model.projector_hidden == 4096
    assert cfg.train_cfg.max_epochs == 300 and cfg.train_dataloader.batch_size == 32
    assert cfg.optim_wrapper.optimizer == dict(type='LARS', lr=0.0, momentum=0.9, weight_decay=1e-6,
                                               eta=1e-3, exclusion='released')  # Q10 as released
    assert cfg.optim_wrapper.constructor == 'LARSOptimWrapperConstructor'
    assert cfg.model.kmeans_empty_clusters == 'collapse'  # Q8 as released
    assert cfg.released_recipe == dict(global_batch=4096, world_size=128, epochs=300)
    h = hooks(cfg)
    assert (h['ClusterScheduleHook']['kind'], h['ClusterScheduleHook']['start'],
            h['ClusterScheduleHook']['end']) == ('cosine', 128, 4)
    assert h['R2OLearningRateHook']['lr_per_256'] == 0.3
    assert h['R2OLearningRateHook']['warmup_epochs'] == 3
    assert h['R2OLearningRateHook']['couple_to_clusters'] is True
    assert h['TargetEMAHook']['base_tau'] == 0.99
    slic = cfg.train_dataloader.dataset.pipeline[2]
    assert slic.type == 'RawViewSuperpixels' and slic.n_segments == 100 and slic.size == 224
    views = cfg.train_dataloader.dataset.pipeline[1]
    assert views.always_flip is True and views.blur_probs == (1.0, 0.1)
    assert views.solarize_probs == (0.0, 0.2)
    assert cfg.sync_bn == 'torch' and cfg.default_hooks.checkpoint.interval == 100


def test_coco_and_ablation_configs():
    coco = Config.fromfile(os.path.join(ROOT, 'configs', 'r2o_coco.py'))
    assert coco.train_cfg.max_epochs == 800 and coco.train_dataloader.dataset.type == 'CocoUnlabeled'
    assert coco.train_dataloader.dataset.pipeline[2].type == 'RawViewSuperpixels'
    grid = {os.path.basename(p): Config.fromfile(p) for p in CONFIGS if 'imagenet100' in p}
    assert set(grid) == {'r2o_imagenet100_full.py', 'r2o_imagenet100_no_mask_prediction.py',
                         'r2o_imagenet100_no_slic_prior.py', 'r2o_imagenet100_constant_k.py',
                         'r2o_imagenet100_byol.py'}
    for cfg in grid.values():
        assert cfg.train_dataloader.dataset.subset_file.endswith('imagenet100.txt')
    assert hooks(grid['r2o_imagenet100_no_mask_prediction.py'])['ClusterScheduleHook']['start'] == 9999
    assert grid['r2o_imagenet100_no_slic_prior.py'].model.superpixel_source == 'grid'
    assert hooks(grid['r2o_imagenet100_constant_k.py'])['ClusterScheduleHook']['kind'] == 'constant'
    assert grid['r2o_imagenet100_byol.py'].model.mask_source == 'whole_image'
