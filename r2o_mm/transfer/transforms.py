"""Data transforms that the released evaluation protocols need and that
mmcv/mmseg 1.x do not provide."""
from __future__ import annotations

import mmcv
import numpy as np
from mmcv.transforms import BaseTransform
from mmengine.registry import TRANSFORMS


@TRANSFORMS.register_module()
class RandomRescaleByRatio(BaseTransform):
    """Rescale by a random ratio of the image's *own* size, keeping its aspect.

    mmseg 0.x's ``Resize(img_scale=None, ratio_range=(0.5, 2.0))``, which the
    authors' VOC config uses: ratio r ~ U(ratio_range), target scale
    ``(int(w * r), int(h * r))``, image rescaled with ``mmcv.imrescale``
    (bilinear) and the segmentation map with nearest neighbour. mmseg 1.x's
    ``RandomResize`` always needs a fixed target scale.

    Required keys: ``img``; modified: ``img``, ``gt_seg_map`` (if present),
    ``img_shape``; added: ``scale``, ``scale_factor``, ``keep_ratio``.
    """

    def __init__(self, ratio_range: tuple[float, float] = (0.5, 2.0)):
        low, high = ratio_range
        if not 0 < low <= high:
            raise ValueError(f'ratio_range must satisfy 0 < low <= high, got {ratio_range}')
        self.ratio_range = (float(low), float(high))

    def transform(self, results: dict) -> dict:
        height, width = results['img'].shape[:2]
        low, high = self.ratio_range
        ratio = np.random.random_sample() * (high - low) + low
        scale = (int(width * ratio), int(height * ratio))
        img, scale_factor = mmcv.imrescale(results['img'], scale, return_scale=True)
        results['img'] = img
        results['img_shape'] = img.shape[:2]
        results['scale'] = scale
        results['scale_factor'] = (img.shape[1] / width, img.shape[0] / height)
        results['keep_ratio'] = True
        if results.get('gt_seg_map') is not None:
            results['gt_seg_map'] = mmcv.imrescale(results['gt_seg_map'], scale, interpolation='nearest')
        return results

    def __repr__(self) -> str:
        return f'{self.__class__.__name__}(ratio_range={self.ratio_range})'
