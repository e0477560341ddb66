"""Loading a config the way every tool does."""
from __future__ import annotations

import os.path as osp
import sys

from mmengine.config import Config


def load_config(path: str, options: dict | None = None) -> Config:
    """The merged config (``_base_`` resolved) with ``--cfg-options``
    applied; exits with one line when the file does not exist."""
    if not osp.isfile(path):
        sys.exit(f'config file {path} does not exist')
    cfg = Config.fromfile(path)
    cfg.merge_from_dict(options or {})
    return cfg


def require_switch(key: str, value, allowed=(True, False)):
    """Raises ValueError naming the config key when ``value`` is not one of
    ``allowed`` (for on/off switches: a real bool, so that ``'False'``, a
    string and therefore true, is refused instead of silently meaning True)."""
    if not any(value is option or (type(value) is type(option) and value == option) for option in allowed):
        raise ValueError(f'{key} must be one of {", ".join(map(repr, allowed))}, got {value!r}')


def add_wandb_backend(cfg: Config):
    """``R2O_WANDB=<project>``: log to Weights & Biases too (mmengine's
    WandbVisBackend beside the others; ``wandb`` must be installed, it is not
    a dependency of this project)."""
    import os
    project = os.environ.get('R2O_WANDB')
    if not project:
        return
    backends = cfg.visualizer.setdefault('vis_backends', [dict(type='LocalVisBackend')])
    if not any(b.get('type') == 'WandbVisBackend' for b in backends):
        backends.append(dict(type='WandbVisBackend', init_kwargs=dict(project=project)))
