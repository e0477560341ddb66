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
import re
import zipfile

import numpy as np
import torch
from mmengine.logging import HistoryBuffer
from mmengine.runner.checkpoint import CheckpointLoader

_HISTORY_BUFFER_METHODS = ('min', 'max', 'current', 'mean')


class UnsafeCheckpointError(pickle.UnpicklingError):
    """A checkpoint holds pickled objects outside the allow-list."""


class CheckpointReadError(ValueError):
    """A checkpoint cannot be read; the message is one line naming the file
    and the reason (missing, truncated or corrupt, or refused content)."""


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

# Files pickled under numpy 1.x name numpy's internals ``numpy.core.*``
# (numpy 2 moved them to ``numpy._core``): the authors' training checkpoint
# holds numpy float64 learning rates, their detectron2 file numpy arrays.
NUMPY1_GLOBALS = [
    (np._core.multiarray.scalar, 'numpy.core.multiarray.scalar'),
    (np._core.multiarray._reconstruct, 'numpy.core.multiarray._reconstruct'),
]


def allow_mmengine_checkpoints():
    """Allow-list the classes of mmengine checkpoints and route mmengine's
    local-file loader through :func:`load_checkpoint_file`."""
    torch.serialization.add_safe_globals(MMENGINE_CHECKPOINT_GLOBALS + NUMPY1_GLOBALS)
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


class _NumpyOnlyUnpickler(pickle.Unpickler):
    """Plain pickles (detectron2's .pkl weights) with numpy arrays and
    scalars only; any other global is refused before anything runs."""

    _ALLOWED = {
        ('numpy', 'ndarray'): np.ndarray,
        ('numpy', 'dtype'): np.dtype,
        ('numpy.core.multiarray', '_reconstruct'): np._core.multiarray._reconstruct,
        ('numpy._core.multiarray', '_reconstruct'): np._core.multiarray._reconstruct,
        ('numpy.core.multiarray', 'scalar'): np._core.multiarray.scalar,
        ('numpy._core.multiarray', 'scalar'): np._core.multiarray.scalar,
        ('_codecs', 'encode'): __import__('codecs').encode,  # bytes under protocol 2
        **{('numpy.dtypes', type(np.dtype(code)).__name__): type(np.dtype(code)) for code in '?bBhHiIlLqQefdgFDG'},
    }

    def find_class(self, module, name):
        try:
            return self._ALLOWED[(module, name)]
        except KeyError:
            raise UnsafeCheckpointError(f'{module}.{name}') from None


def file_sha256(path: str) -> str:
    import hashlib
    digest = hashlib.sha256()
    with open(path, 'rb') as handle:
        for block in iter(lambda: handle.read(1 << 20), b''):
            digest.update(block)
    return digest.hexdigest()


def read_checkpoint(path: str):
    """Loads any checkpoint weights-only: torch files (zip or legacy) with the
    allow-list above, plain pickles (detectron2 ``.pkl``) with numpy objects
    only. Raises :class:`CheckpointReadError` with one line naming the file
    and the reason; no pickled code is ever run."""
    if not osp.isfile(path):
        raise CheckpointReadError(f'{path}: no such file')
    text = _text_start(path)
    if text is not None:
        raise CheckpointReadError(f'{path}: a text file, not a checkpoint (it starts with {text!r}): a download '
                                  'link, web page or Git LFS pointer saved in place of the weights?')
    if path.endswith('.pkl') and not zipfile.is_zipfile(path):
        try:
            with open(path, 'rb') as handle:
                return _NumpyOnlyUnpickler(handle, encoding='latin1').load()
        except UnsafeCheckpointError as error:
            raise CheckpointReadError(f'{path}: refused: it holds pickled objects beyond numpy arrays '
                                      f'({error}); nothing in it was run') from None
        except (EOFError, pickle.UnpicklingError, ValueError, TypeError) as error:
            raise CheckpointReadError(f'{path}: truncated or corrupt pickle ({error})') from None
    try:
        return torch.load(path, map_location='cpu', weights_only=True)
    except pickle.UnpicklingError as error:
        unsafe = re.search(r'GLOBAL ([\w.]+)', str(error))
        if unsafe:
            raise CheckpointReadError(f'{path}: refused: it holds pickled objects outside the allow-list '
                                      f'({unsafe.group(1)}) that could run code; nothing in it was run') from None
        raise CheckpointReadError(f'{path}: not a readable checkpoint (corrupt, or not a PyTorch file)') from None
    except (RuntimeError, EOFError, zipfile.BadZipFile, OSError) as error:
        reason = str(error).split('. ')[0].strip()
        raise CheckpointReadError(f'{path}: truncated or corrupt ({reason})') from None
    except (KeyError, IndexError, ValueError, TypeError, AttributeError, UnicodeDecodeError):
        # bytes that happen to be pickle opcodes (b'h' is BINGET: KeyError) or a stream torch cannot follow
        raise CheckpointReadError(f'{path}: not a readable checkpoint (corrupt, or not a PyTorch file)') from None


def _text_start(path: str, size: int = 256) -> str | None:
    """The first line of ``path`` (up to 60 characters) when its first
    ``size`` bytes are printable UTF-8 text, else None: a checkpoint (zip or
    pickle) starts with bytes no text has."""
    with open(path, 'rb') as handle:
        head = handle.read(size)
    try:
        decoded = head.decode('utf-8')
    except UnicodeDecodeError:
        return None  # (a multi-byte character cut at `size` is rare enough to read as binary)
    if not decoded.strip() or any(not (c.isprintable() or c in '\r\n\t') for c in decoded):
        return None
    return decoded.strip().splitlines()[0][:60]
