"""Weights-only loading of mmengine checkpoints under torch >= 2.6.

torch loads with ``weights_only=True`` by default, and mmengine 0.10.7
checkpoints hold a few non-tensor objects (the message hub's
``HistoryBuffer`` with numpy arrays, and references to its statistics methods
pickled as ``getattr(HistoryBuffer, 'mean')``). Instead of turning the safety
off, this module allow-lists exactly those classes, and maps the pickled
``getattr`` to a version that only resolves HistoryBuffer's statistics
methods. Anything else in a checkpoint is refused with
:class:`UnsafeCheckpointError`, which names what was found.
"""
from __future__ import annotations

import os.path as osp
import pickle

import numpy as np
import torch
from mmengine.logging import HistoryBuffer
from mmengine.runner.checkpoint import CheckpointLoader

_HISTORY_BUFFER_METHODS = ('min', 'max', 'current', 'mean')


class UnsafeCheckpointError(pickle.UnpicklingError):
    """A checkpoint holds pickled objects outside the allow-list."""


def _history_buffer_getattr(owner, name):
    """Stands in for ``builtins.getattr`` while unpickling: only
    ``getattr(HistoryBuffer, <statistics method>)`` is resolved."""
    if owner is HistoryBuffer and name in _HISTORY_BUFFER_METHODS:
        return getattr(HistoryBuffer, name)
    raise UnsafeCheckpointError(f'checkpoint asks for getattr({owner!r}, {name!r}); refused')


MMENGINE_CHECKPOINT_GLOBALS = [
    HistoryBuffer,
    np.ndarray,
    np.dtype,
    np._core.multiarray._reconstruct,
    np._core.multiarray.scalar,
    *{type(np.dtype(code)) for code in '?bBhHiIlLqQefdgFDG'},  # numpy 2 dtype classes
    (_history_buffer_getattr, 'builtins.getattr'),
]


def allow_mmengine_checkpoints():
    """Allow-list the classes of mmengine checkpoints and route mmengine's
    local-file loader through :func:`load_checkpoint_file`."""
    torch.serialization.add_safe_globals(MMENGINE_CHECKPOINT_GLOBALS)
    CheckpointLoader.register_scheme(prefixes='', loader=load_checkpoint_file, force=True)


def load_checkpoint_file(filename: str, map_location=None):
    """``torch.load(weights_only=True)`` with a clear error for refused content."""
    filename = osp.expanduser(filename)
    if not osp.isfile(filename):
        raise FileNotFoundError(f'checkpoint {filename} does not exist')
    try:
        return torch.load(filename, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as error:
        try:
            found = torch.serialization.get_unsafe_globals_in_checkpoint(filename)
        except Exception:  # not a zip checkpoint: report the original error only
            found = []
        raise UnsafeCheckpointError(
            f'refusing to load {filename}: it holds pickled objects that could run arbitrary code '
            f'and are not on r2o_mm\'s allow-list ({", ".join(found) or "see below"}). Only load '
            f'checkpoints from sources you trust; export tensor-only weights with '
            f'tools/export_backbone.py.\n{error}') from error
