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
