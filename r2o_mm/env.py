"""Environment report: `python -m r2o_mm.env`.

Prints the versions of the stack and checks that each piece R2O relies on
works here: mmcv's compiled ops (RoIAlign on CPU, and on CUDA when a GPU is
visible), mmdet and mmseg imports, scikit-image SLIC, and the checkpoint
allow-list. Exits non-zero when a check fails.
"""
from __future__ import annotations

import platform
import sys


def _check(name: str, func) -> bool:
    try:
        detail = func()
    except Exception as error:  # report every failure, do not stop at the first
        print(f'  FAIL  {name}: {type(error).__name__}: {error}')
        return False
    print(f'  ok    {name}' + (f': {detail}' if detail else ''))
    return True


def _mmcv_ops() -> str:
    import torch
    from mmcv.ops import RoIAlign
    features = torch.arange(16.0).view(1, 1, 4, 4)
    rois = torch.tensor([[0.0, 0.0, 0.0, 4.0, 4.0]])
    devices = ['cpu'] + (['cuda'] if torch.cuda.is_available() else [])
    for device in devices:
        out = RoIAlign((2, 2), spatial_scale=1.0, sampling_ratio=2, aligned=True)(
            features.to(device), rois.to(device))
        expected = torch.tensor([[[[2.5, 4.5], [10.5, 12.5]]]])
        if not torch.allclose(out.cpu(), expected):
            raise RuntimeError(f'RoIAlign on {device} returned {out.flatten().tolist()}')
    return 'RoIAlign on ' + ', '.join(devices)


def _slic() -> str:
    import numpy as np
    from skimage.segmentation import slic
    image = np.zeros((32, 32, 3))
    image[:, 16:] = 1.0
    labels = slic(image, n_segments=8, compactness=10, start_label=0, channel_axis=-1)
    left, right = set(labels[:, :16].ravel()), set(labels[:, 16:].ravel())
    if left & right or labels.min() != 0:
        raise RuntimeError(f'SLIC segments cross a colour edge: {sorted(left)} | {sorted(right)}')
    return f'two-colour image: {len(left | right)} segments, none across the edge'


def _checkpoint_allow_list() -> str:
    import r2o_mm.utils.checkpoint as ckpt
    return f'{len(ckpt.MMENGINE_CHECKPOINT_GLOBALS)} classes allowed for weights-only loading'


def main() -> int:
    import importlib
    print(f'python      {sys.version.split()[0]} ({platform.platform()})')
    for module in ('torch', 'torchvision', 'mmengine', 'mmcv', 'mmdet', 'mmseg', 'numpy', 'skimage',
                   'cv2', 'pandas', 'matplotlib', 'sklearn'):
        try:
            version = importlib.import_module(module).__version__
        except Exception as error:
            version = f'NOT IMPORTABLE ({type(error).__name__}: {error})'
        print(f'{module:<11} {version}')
    import torch
    cuda = torch.version.cuda or 'none'
    gpus = torch.cuda.device_count() if torch.cuda.is_available() else 0
    print(f'cuda        {cuda} (torch build), {gpus} GPU(s) visible')
    print('checks:')
    checks = [
        ('mmcv compiled ops', _mmcv_ops),
        ('mmdet', lambda: __import__('mmdet.apis') and None),
        ('mmseg', lambda: __import__('mmseg.apis') and None),
        ('scikit-image SLIC', _slic),
        ('r2o_mm checkpoint allow-list', _checkpoint_allow_list),
    ]
    results = [_check(name, func) for name, func in checks]
    print('all checks passed' if all(results) else f'{results.count(False)} check(s) FAILED')
    return 0 if all(results) else 1


if __name__ == '__main__':
    sys.exit(main())
