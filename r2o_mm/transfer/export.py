"""Export the online encoder of a pretraining checkpoint for downstream use.

Sources understood (the format is detected from the keys):

* this project's checkpoints: ``state_dict['online_encoder.<torchvision key>']``;
* the authors' training checkpoints: ``module.online_network.encoder.<i>.<rest>``,
  the encoder being ``nn.Sequential(conv1, bn1, relu, maxpool, layer1..4)``;
* torchvision-layout files (the authors' release, or any plain ResNet
  state_dict), ``fc.*`` dropped;
* detectron2 weight files (``{'model': {'stem.conv1.weight': ndarray, ...}}``,
  the authors' detectron2 release), ``linear.*`` dropped.

Every file is read weights-only (:func:`r2o_mm.utils.checkpoint.read_checkpoint`):
numpy 1.x scalars and arrays are allowed, pickled code is never run.

Targets: ``torchvision`` (a plain tensor-only state_dict), ``mmcv`` (the same
under ``{'state_dict': ...}``, as mmdet/mmseg checkpoints), ``detectron2``
(a pickle with detectron2's key names and numpy arrays,
``matching_heuristics=True``). Anything that cannot be mapped completely is
refused with the offending keys named.
"""
from __future__ import annotations

import json
import os
import pickle
import re

import numpy as np
import torch

from ..utils.checkpoint import file_sha256, read_checkpoint
from ..utils.io import write_json

# The authors' encoder: nn.Sequential(*list(resnet.children())[:-2]).
_SEQUENTIAL_NAMES = {'0': 'conv1', '1': 'bn1', '4': 'layer1', '5': 'layer2', '6': 'layer3', '7': 'layer4'}
_RESNET_KEY = re.compile(r'^(conv1\.weight|bn1\.[a-z_]+|layer[1-4]\.\d+\.(conv\d|bn\d|downsample\.[01])\.'
                         r'[a-z_]+)$')


class ExportError(ValueError):
    """The input cannot be mapped completely onto a torchvision ResNet."""


def _unwrap(checkpoint) -> dict:
    if isinstance(checkpoint, dict):
        for key in ('state_dict', 'model', 'online_network_state_dict'):
            if key in checkpoint and isinstance(checkpoint[key], dict):
                return checkpoint[key]
    return checkpoint


def _refuse(message: str, keys) -> ExportError:
    keys = sorted(keys)
    shown = ', '.join(keys[:10]) + (f' ... ({len(keys)} in all)' if len(keys) > 10 else '')
    return ExportError(f'{message}: {shown}')


def from_detectron2(state: dict) -> dict[str, torch.Tensor]:
    """detectron2's ResNet names -> torchvision's (the inverse of
    :func:`to_detectron2`); numpy arrays become tensors; BatchNorm's
    ``num_batches_tracked`` (not stored by detectron2) is added as 0."""
    mapped = {}
    for key, value in state.items():
        if key.startswith(('linear.', 'fc.')):
            continue
        name = re.sub(r'^stem\.conv1\.norm\.', 'bn1.', key)
        name = re.sub(r'^stem\.', '', name)
        name = re.sub(r'^res(\d)', lambda m: f'layer{int(m.group(1)) - 1}', name)
        name = re.sub(r'\.conv(\d)\.norm\.', r'.bn\1.', name)
        name = name.replace('.shortcut.norm.', '.downsample.1.').replace('.shortcut.', '.downsample.0.')
        mapped[name] = torch.from_numpy(np.ascontiguousarray(value)) if isinstance(value, np.ndarray) else value
    for key in [k for k in mapped if k.endswith('.running_var')]:
        mapped.setdefault(key.replace('.running_var', '.num_batches_tracked'), torch.tensor(0))
    return mapped


def extract_backbone(checkpoint) -> dict[str, torch.Tensor]:
    """A checkpoint (any supported source) -> torchvision ResNet keys, no ``fc``."""
    state = _unwrap(checkpoint)
    keys = list(state)
    if any(k.startswith('stem.') for k in keys):
        mapped = from_detectron2(state)
    elif any(k.startswith('online_encoder.') for k in keys):
        mapped = {k[len('online_encoder.'):]: v for k, v in state.items() if k.startswith('online_encoder.')}
    elif any('online_network.encoder.' in k for k in keys):
        mapped, unknown = {}, []
        for key, value in state.items():
            match = re.match(r'^(?:module\.)?online_network\.encoder\.(\d+)\.(.+)$', key)
            if not match:
                continue
            index, rest = match.groups()
            if index not in _SEQUENTIAL_NAMES:
                unknown.append(key)
                continue
            mapped[f'{_SEQUENTIAL_NAMES[index]}.{rest}'] = value
        if unknown:
            raise _refuse('encoder keys with no ResNet counterpart', unknown)
    else:
        mapped = {k[len('module.'):] if k.startswith('module.') else k: v for k, v in state.items()}
        mapped = {k: v for k, v in mapped.items() if not k.startswith('fc.')}
    unmappable = [k for k in mapped if not _RESNET_KEY.match(k)]
    if unmappable:
        raise _refuse('keys that are not part of a torchvision ResNet', unmappable)
    if not mapped:
        raise ExportError('no encoder weights found (expected online_encoder.*, '
                          'module.online_network.encoder.*, or torchvision ResNet keys)')
    required = {'conv1.weight', 'bn1.weight', 'bn1.running_mean'}
    missing_layers = [f'layer{i}' for i in range(1, 5) if not any(k.startswith(f'layer{i}.') for k in mapped)]
    if required - set(mapped) or missing_layers:
        raise _refuse('the encoder is incomplete, missing', (required - set(mapped)) | set(missing_layers))
    return {k: v.detach().clone().cpu().contiguous() for k, v in mapped.items()}


def to_detectron2(state: dict[str, torch.Tensor]) -> dict:
    """torchvision ResNet keys -> detectron2's names, numpy arrays."""
    converted = {}
    for key, value in state.items():
        name = key
        if name.startswith('conv1.') or name.startswith('bn1.'):
            name = 'stem.' + name.replace('bn1.', 'conv1.norm.')
        else:
            name = re.sub(r'^layer(\d)', lambda m: f'res{int(m.group(1)) + 1}', name)
            name = re.sub(r'\.bn(\d)\.', r'.conv\1.norm.', name)
            name = name.replace('.downsample.0.', '.shortcut.').replace('.downsample.1.', '.shortcut.norm.')
        converted[name] = value.numpy()
    return {'model': converted, '__author__': 'r2o_mm', 'matching_heuristics': True}


def source_record_path(out_path: str) -> str:
    """The JSON file beside an export that names the checkpoint it came from."""
    return out_path + '.source.json'


def read_source_record(out_path: str) -> dict | None:
    """``{'source', 'source_sha256', 'format'}`` of an export, None when absent
    or unreadable (an export from before the record existed)."""
    try:
        with open(source_record_path(out_path)) as handle:
            record = json.load(handle)
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) and 'source_sha256' in record else None


def export_backbone(checkpoint_path: str, out_path: str, fmt: str = 'torchvision',
                    source_sha256: str | None = None) -> dict:
    """Reads ``checkpoint_path`` (weights-only) and writes the encoder in ``fmt``,
    and beside it ``OUT.source.json`` with the checkpoint's path and sha256
    (``source_sha256`` when the caller has hashed it already).

    Returns the torchvision-layout state_dict that was exported. A file that
    cannot be read raises :class:`r2o_mm.utils.checkpoint.CheckpointReadError`.
    """
    if fmt not in ('torchvision', 'mmcv', 'detectron2'):
        raise ValueError(f"format must be torchvision, mmcv or detectron2, got {fmt!r}")
    state = extract_backbone(read_checkpoint(checkpoint_path))
    source_sha256 = source_sha256 or file_sha256(checkpoint_path)
    # The record goes first and the weights replace the old file in one rename:
    # an interrupted export never leaves new weights under an old record.
    if os.path.exists(source_record_path(out_path)):
        os.remove(source_record_path(out_path))
    temporary = f'{out_path}.tmp-{os.getpid()}'  # several nodes may export to one shared folder
    if fmt == 'torchvision':
        torch.save(state, temporary)
    elif fmt == 'mmcv':
        torch.save({'state_dict': state, 'meta': {'source': str(checkpoint_path),
                                                  'source_sha256': source_sha256}}, temporary)
    else:  # detectron2
        with open(temporary, 'wb') as handle:
            pickle.dump(to_detectron2(state), handle)
    os.replace(temporary, out_path)
    write_json(source_record_path(out_path), dict(source=os.path.abspath(checkpoint_path),
                                                  source_sha256=source_sha256, format=fmt))
    return state
