"""Config helpers."""

def test_wandb_is_a_switch_not_a_dependency(monkeypatch):
    from mmengine.config import Config

    from r2o_mm.utils.config import add_wandb_backend
    cfg = Config(dict(visualizer=dict(type='Visualizer', vis_backends=[dict(type='LocalVisBackend')])))
    monkeypatch.delenv('R2O_WANDB', raising=False)
    add_wandb_backend(cfg)
    assert [b['type'] for b in cfg.visualizer.vis_backends] == ['LocalVisBackend']
    monkeypatch.setenv('R2O_WANDB', 'r2o')
    add_wandb_backend(cfg)
    add_wandb_backend(cfg)  # once only
    assert [b['type'] for b in cfg.visualizer.vis_backends] == ['LocalVisBackend', 'WandbVisBackend']
    assert cfg.visualizer.vis_backends[1]['init_kwargs'] == {'project': 'r2o'}
