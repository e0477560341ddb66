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


def test_configs_are_read_without_yapf_and_their_text_reads_back_the_same(monkeypatch):
    """The runner asks for the config text six or seven times a run (log, dump, every
    checkpoint): read_config leaves yapf out, and that text still loads to the same config,
    also through the deep copy the Runner makes."""
    import copy
    import os

    from mmengine.config import Config

    import yapf.yapflib.yapf_api as yapf_api
    from r2o_mm.transfer.run import task_config_path
    from r2o_mm.utils.config import ROOT, config_sha256, load_config, read_config

    asked = []

    def counted(text, **kwargs):
        asked.append(len(text))
        return yapf_api.FormatCode(text, **kwargs)

    monkeypatch.setattr('mmengine.config.config.FormatCode', counted)
    tiny = load_config(os.path.join(ROOT, 'configs', 'r2o_tiny_cpu.py'), {'train_cfg.max_epochs': 3})
    voc = read_config(task_config_path('voc'))  # what prepare_config reads (mmseg's bases included)
    for cfg in (tiny, voc, copy.deepcopy(tiny)):
        text = cfg.pretty_text
        back = Config.fromstring(text, '.py')
        assert config_sha256(back) == config_sha256(cfg)
    assert Config.fromstring(tiny.pretty_text, '.py').train_cfg.max_epochs == 3
    assert asked == []
    # A Config read by mmengine itself is formatted (the count above is live).
    raw = Config.fromfile(os.path.join(ROOT, 'configs', 'r2o_tiny_cpu.py'))
    assert config_sha256(Config.fromstring(raw.pretty_text, '.py')) == config_sha256(raw)
    assert len(asked) == 1
