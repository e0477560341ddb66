"""Device audits that run on a CPU: stray tensor creation and host synchronisations.

Two GPU-only failure classes can be caught without a GPU:

* a tensor created without naming a device lands on the default device (the
  CPU) while the step runs on a GPU. :func:`default_device` makes torch's
  default device ``'meta'`` while the model and its inputs stay on the CPU:
  such a tensor is then a meta tensor, and the step fails at that line.
* a device-to-host synchronisation stalls the GPU until all queued work is
  done. :class:`HostSyncCounter` counts the operations that force one on a
  GPU (a Python number out of a tensor, data-dependent output shapes,
  boolean-mask indexing, copies to host memory), each with the line that
  asked for it, while the code runs on a CPU.
"""
from __future__ import annotations

import collections
import contextlib
import traceback
from dataclasses import dataclass
from pathlib import Path

import torch
from torch.utils._python_dispatch import TorchDispatchMode

aten = torch.ops.aten

# aten operators that wait for the device on a GPU, by kind.
_SCALAR = {aten._local_scalar_dense.default: 'scalar to host (.item(), bool(), int(), float())',
           aten.equal.default: 'scalar to host (torch.equal)'}
_DATA_SHAPED = {aten.nonzero.default: 'data-dependent shape (nonzero)',
                aten.masked_select.default: 'data-dependent shape (masked_select)',
                aten.bincount.default: 'data-dependent shape (bincount)',
                aten.repeat_interleave.Tensor: 'data-dependent shape (repeat_interleave)',
                aten._unique2.default: 'data-dependent shape (unique)',
                aten.unique_dim.default: 'data-dependent shape (unique)',
                aten.unique_consecutive.default: 'data-dependent shape (unique)'}
_INDEXING = {aten.index.Tensor, aten.index_put.default, aten.index_put_.default,
             aten._index_put_impl_.default}
# Python-level methods that copy to host memory; on a CPU tensor they run no
# aten operator, so they are counted where they are called.
_HOST_COPIES = {'tolist': 'copy to host (.tolist())', 'numpy': 'copy to host (.numpy())',
                'cpu': 'copy to host (.cpu())'}
_OWN_CODE = str(Path(__file__).resolve().parents[1])


@dataclass(frozen=True)
class HostSync:
    kind: str
    site: str  # 'r2o_mm/models/regions.py:227 in lloyd', the first frame outside torch


def _calling_site() -> str:
    frames = traceback.extract_stack()[:-3]
    for frame in reversed(frames):
        name = frame.filename
        if '/torch/' in name or name == __file__:
            continue
        if name.startswith(_OWN_CODE):
            name = 'r2o_mm/' + str(Path(name).relative_to(_OWN_CODE))
        else:
            parts = Path(name).parts
            for package in ('mmengine', 'mmcv', 'mmdet', 'mmseg', 'tests', 'tools'):
                if package in parts:
                    name = '/'.join(parts[parts.index(package):])
                    break
        return f'{name}:{frame.lineno} in {frame.name}'
    return 'unknown'


class HostSyncCounter(TorchDispatchMode):
    """Records every operation that would synchronise a GPU with the host.

    Use as a context manager around the code; ``syncs`` lists
    :class:`HostSync` in order, :meth:`by_site` counts them per line.
    Boolean-mask indexing (``x[mask]``, ``x[mask] = y``) counts once per
    operator: on a GPU it runs nonzero to size its result.
    """

    def __init__(self):
        super().__init__()
        self.syncs: list[HostSync] = []
        self._patched = {}
        self._inside_method = 0

    def _record(self, kind):
        self.syncs.append(HostSync(kind, _calling_site()))

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if not self._inside_method:
            if func in _SCALAR:
                self._record(_SCALAR[func])
            elif func in _DATA_SHAPED:
                self._record(_DATA_SHAPED[func])
            elif func in _INDEXING:
                indices = args[1] if len(args) > 1 else kwargs.get('indices', ())
                if any(isinstance(i, torch.Tensor) and i.dtype in (torch.bool, torch.uint8)
                       for i in indices or ()):
                    self._record('boolean-mask indexing')
        return func(*args, **kwargs)

    def __enter__(self):
        for name, kind in _HOST_COPIES.items():
            original = getattr(torch.Tensor, name)
            self._patched[name] = original

            def counted(tensor, *args, _original=original, _kind=kind, **kwargs):
                self._record(_kind)
                self._inside_method += 1
                try:
                    return _original(tensor, *args, **kwargs)
                finally:
                    self._inside_method -= 1
            setattr(torch.Tensor, name, counted)
        return super().__enter__()

    def __exit__(self, *exc):
        for name, original in self._patched.items():
            setattr(torch.Tensor, name, original)
        self._patched.clear()
        return super().__exit__(*exc)

    def by_site(self) -> collections.Counter:
        return collections.Counter((sync.site, sync.kind) for sync in self.syncs)

    def report(self) -> str:
        lines = [f'{len(self.syncs)} host synchronisations']
        for (site, kind), count in sorted(self.by_site().items(), key=lambda item: -item[1]):
            lines.append(f'  {count:4d}  {site}: {kind}')
        return '\n'.join(lines)


@contextlib.contextmanager
def default_device(device: str = 'meta'):
    """Make ``device`` torch's default device inside: a tensor created without
    a device lands there (and on 'meta', mixing it with real tensors fails)."""
    with torch.device(device):
        yield
