"""Data transforms of R2O pretraining (docs/method.md section 3, Quirks Q1 and Q2).

A pretraining pipeline reads::

    LoadImageRGB -> TwoViews -> RawViewSuperpixels -> PackR2OInputs

Image operations are torchvision's; what is written here is the geometry
bookkeeping (each view's crop box and flip, which the masks rely on) and the
superpixel prior with its cache.
"""
from __future__ import annotations

import logging
import os
import warnings

import cv2
import numpy as np
import torch
from mmcv.transforms import BaseTransform
from mmengine.logging import print_log
from mmengine.registry import TRANSFORMS
from PIL import Image
from skimage.segmentation import slic
from torchvision.transforms import RandomResizedCrop, v2
from torchvision.transforms.v2 import functional as TF

from ..utils.config import require_switch

# Environment variable naming the file where skipped image paths are appended.
SKIPPED_IMAGES_LOG = 'R2O_SKIPPED_IMAGES_LOG'
IMAGENET_MEAN = np.array([0.485, 0.456, 0.406], dtype=np.float32)
IMAGENET_STD = np.array([0.229, 0.224, 0.225], dtype=np.float32)


@TRANSFORMS.register_module()
class LoadImageRGB(BaseTransform):
    """Reads ``results['img_path']`` as an RGB uint8 tensor (3, H, W).

    Grayscale, palette, RGBA and CMYK files are converted to RGB. An
    unreadable or truncated file is skipped: the transform returns None so
    that the dataset draws another image, and warns once per file with the
    running count of distinct bad files seen by this worker. Each skipped path
    is also appended to the file named by ``$R2O_SKIPPED_IMAGES_LOG`` (set by
    tools/train.py to ``<work_dir>/skipped_images.txt``), so that the run can
    report the total over all workers at the end.
    """

    def __init__(self):
        self.bad_paths = set()
        self.skip_log = os.environ.get(SKIPPED_IMAGES_LOG)

    def transform(self, results: dict) -> dict | None:
        path = results['img_path']
        try:
            with Image.open(path) as image:
                image = image.convert('RGB')
                image.load()
        except Exception as error:  # PIL raises many types for bad files
            if path not in self.bad_paths:
                self.bad_paths.add(path)
                print_log(f'skipping unreadable image {path}: {type(error).__name__}: {error} '
                          f'({len(self.bad_paths)} skipped by this worker)', logger='current',
                          level=logging.WARNING)
                if self.skip_log:
                    with open(self.skip_log, 'a') as handle:  # one short append per file
                        handle.write(f'{path}\n')
            return None
        results['img'] = TF.pil_to_tensor(image)
        results['ori_shape'] = tuple(results['img'].shape[-2:])
        return results


def byol_view_augmentation(blur_prob: float, solarize_prob: float, jitter_prob: float = 0.8,
                           grayscale_prob: float = 0.2) -> v2.Compose:
    """BYOL's colour augmentations for one view, on uint8 tensors."""
    return v2.Compose([
        v2.RandomApply([v2.ColorJitter(0.4, 0.4, 0.2, 0.1)], p=jitter_prob),
        v2.RandomGrayscale(p=grayscale_prob),
        v2.RandomApply([v2.GaussianBlur(23, sigma=(0.1, 2.0))], p=blur_prob),
        v2.RandomSolarize(threshold=128, p=solarize_prob),
    ])


@TRANSFORMS.register_module()
class TwoViews(BaseTransform):
    """Two augmented crops of ``results['img']`` with their geometry.

    Each view: RandomResizedCrop parameters drawn from the original image,
    resized to ``size`` (bicubic), optionally flipped, then BYOL's asymmetric
    colour augmentations (view 1: blur 1.0, solarize 0.0; view 2: blur 0.1,
    solarize 0.2).

    Adds ``view1``, ``view2`` (uint8 (3, size, size)), ``boxes`` (2, 4) float
    ``(y1, x1, y2, x2)`` normalised by the original image size, and ``flips``
    (2,) bool.

    Args:
        always_flip: Quirk Q1. True (released code): both views are always
            flipped (a positional-argument slip set the flip probability to
            100). False (fixed): each view is flipped with probability 0.5.
    """

    def __init__(self, size: int = 224, scale=(0.08, 1.0), ratio=(3 / 4, 4 / 3),
                 always_flip: bool = True, blur_probs=(1.0, 0.1), solarize_probs=(0.0, 0.2),
                 jitter_prob: float = 0.8, grayscale_prob: float = 0.2):
        require_switch('TwoViews.always_flip', always_flip)
        self.size, self.scale, self.ratio = size, tuple(scale), tuple(ratio)
        self.flip_prob = 1.0 if always_flip else 0.5
        self.augment = [byol_view_augmentation(blur, solarize, jitter_prob, grayscale_prob)
                        for blur, solarize in zip(blur_probs, solarize_probs)]

    def transform(self, results: dict) -> dict:
        image = results['img']
        height, width = image.shape[-2:]
        boxes, flips = [], []
        for index, augment in enumerate(self.augment):
            top, left, crop_h, crop_w = RandomResizedCrop.get_params(image, self.scale, self.ratio)
            view = TF.resized_crop(image, top, left, crop_h, crop_w, [self.size, self.size],
                                   interpolation=v2.InterpolationMode.BICUBIC, antialias=True)
            flip = bool(torch.rand(()) < self.flip_prob)
            if flip:
                view = TF.horizontal_flip(view)
            results[f'view{index + 1}'] = augment(view)
            boxes.append([top / height, left / width, (top + crop_h) / height, (left + crop_w) / width])
            flips.append(flip)
        results['boxes'] = torch.tensor(boxes, dtype=torch.float32)
        results['flips'] = torch.tensor(flips, dtype=torch.bool)
        return results


def compute_superpixels(raw: torch.Tensor, n_segments: int = 100, compactness: float = 10.0,
                        on_normalized: bool = True) -> np.ndarray:
    """SLIC labels (H, W) uint16, starting at 0, of a raw view (3, H, W) uint8.

    ``on_normalized`` is Quirk Q2: the released code runs SLIC on the
    ImageNet-normalised tensor (values about -2 to 2.6) rather than on RGB in
    [0, 1]; scikit-image then converts that to Lab as if it were RGB.
    """
    image = raw.permute(1, 2, 0).numpy().astype(np.float32) / 255.0
    if on_normalized:
        image = (image - IMAGENET_MEAN) / IMAGENET_STD
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')  # out-of-gamut values in the Q2 colour space
        labels = slic(image, n_segments=n_segments, compactness=compactness, start_label=0,
                      channel_axis=-1)
    return labels.astype(np.uint16)


def superpixel_cache_path(cache_dir: str, img_key: str) -> str:
    """Where the label map of image ``img_key`` (path relative to the data root) lives."""
    return os.path.join(cache_dir, os.path.splitext(img_key)[0] + '.png')


@TRANSFORMS.register_module()
class RawViewSuperpixels(BaseTransform):
    """The raw view (whole image resized to ``size``, bicubic) and its SLIC map.

    Adds ``raw`` (uint8 (3, size, size)) and ``superpixels`` (int64
    (size, size), labels from 0). The raw view is deterministic per image, so
    its labels are read from ``cache_dir`` when a cached map exists (written by
    ``tools/build_slic_cache.py``) and computed on the fly otherwise.

    Args:
        n_segments, compactness: SLIC parameters (100, 10).
        slic_on_normalized: Quirk Q2 (see :func:`compute_superpixels`).
        ignore_n_segments: second half of Quirk Q1: the released code's slip
            also dropped the configured segment count, so 100 is used.
        cache_dir: folder of cached label maps for these exact parameters.
    """

    def __init__(self, size: int = 224, n_segments: int = 100, compactness: float = 10.0,
                 slic_on_normalized: bool = True, ignore_n_segments: bool = True,
                 cache_dir: str | None = None):
        require_switch('RawViewSuperpixels.slic_on_normalized', slic_on_normalized)
        require_switch('RawViewSuperpixels.ignore_n_segments', ignore_n_segments)
        self.size = size
        self.n_segments = 100 if ignore_n_segments else n_segments
        self.compactness = compactness
        self.slic_on_normalized = slic_on_normalized
        self.cache_dir = cache_dir

    def raw_view(self, image: torch.Tensor) -> torch.Tensor:
        return TF.resize(image, [self.size, self.size], interpolation=v2.InterpolationMode.BICUBIC,
                         antialias=True)

    def superpixels(self, raw: torch.Tensor) -> np.ndarray:
        return compute_superpixels(raw, self.n_segments, self.compactness, self.slic_on_normalized)

    def transform(self, results: dict) -> dict:
        raw = self.raw_view(results['img'])
        labels = None
        if self.cache_dir and 'img_key' in results:
            cached = cv2.imread(superpixel_cache_path(self.cache_dir, results['img_key']),
                                cv2.IMREAD_UNCHANGED)
            if cached is not None and cached.shape == (self.size, self.size):
                labels = cached
        if labels is None:
            labels = self.superpixels(raw)
        results['raw'] = raw
        results['superpixels'] = torch.from_numpy(labels.astype(np.int64))
        return results


@TRANSFORMS.register_module()
class PackR2OInputs(BaseTransform):
    """Packs the keys the model reads into ``{'inputs': {...}}``."""

    keys = ('view1', 'view2', 'raw', 'superpixels', 'boxes', 'flips')

    def transform(self, results: dict) -> dict:
        return {'inputs': {key: results[key] for key in self.keys}}
