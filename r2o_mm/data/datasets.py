"""Unlabelled image datasets for pretraining. Labels are never read.

Every dataset yields ``{'img_path', 'img_key'}`` per image, ``img_key`` being
the path relative to ``data_root`` (the key of the superpixel cache).
"""
from __future__ import annotations

import json
import os

from mmengine.dataset import BaseDataset
from mmengine.registry import DATASETS

from .sampler import seed_for_sample

IMAGE_EXTENSIONS = ('.jpg', '.jpeg', '.png', '.bmp', '.gif', '.ppm', '.pgm', '.tif', '.tiff', '.webp')


# (dataset class, root, selection) -> image keys: the pre-flight's listing,
# handed to the next build of the same dataset (the run's) and then dropped,
# so that a run walks its folders once.
_LISTINGS: dict[tuple, list[str]] = {}
_KEEP_LISTING = [False]


def keep_next_listing(keep: bool = True):
    """The next dataset that lists its images keeps the listing for the
    next build of the same dataset in this process (the pre-flight's, for the run)."""
    _KEEP_LISTING[0] = keep


class DatasetLayoutError(FileNotFoundError):
    """A dataset folder or file is missing; the message names the expected layout."""


def _require(path: str, layout: str):
    if not os.path.exists(path):
        raise DatasetLayoutError(f'{path} does not exist. Expected layout:\n{layout}')


def _is_image(name: str) -> bool:
    return name.lower().endswith(IMAGE_EXTENSIONS)


def list_images(folder: str) -> list[str]:
    """All image files under ``folder``, recursively, sorted, relative to it."""
    found = []
    for directory, subdirs, files in os.walk(folder, followlinks=True):
        subdirs.sort()
        rel = os.path.relpath(directory, folder)
        found.extend(os.path.normpath(os.path.join(rel, name)) for name in sorted(files) if _is_image(name))
    return found


def _read_lines(path: str) -> list[str]:
    with open(path) as handle:
        return [line.strip() for line in handle if line.strip() and not line.startswith('#')]


class _UnlabeledImages(BaseDataset):
    """Common part: a list of image paths relative to ``data_root``."""

    LAYOUT = ''

    def __init__(self, data_root: str, pipeline=(), **kwargs):
        _require(data_root, self.LAYOUT)
        super().__init__(data_root=data_root, pipeline=list(pipeline), **kwargs)

    def image_keys(self) -> list[str]:
        raise NotImplementedError

    def __getitem__(self, key):
        """``key``: an index, or ``(seed, epoch, index)`` from
        :class:`r2o_mm.data.sampler.SeededSampler`, which seeds the pipeline's
        random draws for that sample of that epoch first."""
        if isinstance(key, (tuple, list)):
            seed, epoch, index = key
            seed_for_sample(seed, epoch, index)
            return super().__getitem__(index)
        return super().__getitem__(key)

    def _listing_key(self) -> tuple:
        fields = ('split', 'subset_file', 'list_file', 'image_dirs', 'image_list_file')
        return (type(self).__name__, os.path.abspath(self.data_root),
                tuple((name, repr(getattr(self, name, None))) for name in fields))

    def load_data_list(self) -> list[dict]:
        key = self._listing_key()
        keys = _LISTINGS.pop(key, None)
        if keys is None:
            keys = self.image_keys()
            if _KEEP_LISTING[0]:
                _KEEP_LISTING[0] = False
                _LISTINGS[key] = keys
        if not keys:
            raise DatasetLayoutError(f'no images found under {self.data_root}. Expected layout:\n'
                                     f'{self.LAYOUT}')
        return [{'img_path': os.path.join(self.data_root, key), 'img_key': key} for key in keys]


@DATASETS.register_module()
class ImageFolderUnlabeled(_UnlabeledImages):
    """ImageNet-style ``<data_root>/<split>/<class>/<image>``, optionally a subset.

    Args:
        split: the folder under ``data_root`` (``train``).
        subset_file: a text file, one entry per line, either class folders
            (``n01440764``: ImageNet-100 as in CMC) or image files
            (``n01440764/n01440764_10026.JPEG``, or a bare
            ``n01440764_10026.JPEG`` whose class is the part before ``_``:
            the ImageNet 1% list of SimCLR).
    """

    LAYOUT = ('  <data_root>/train/<class>/<image>.JPEG   e.g. data/imagenet/train/n01440764/'
              'n01440764_10026.JPEG\n  optional subset file: one class folder or one image per line')

    def __init__(self, data_root: str, split: str = 'train', subset_file: str | None = None, **kwargs):
        self.split, self.subset_file = split, subset_file
        _require(data_root, self.LAYOUT)
        _require(os.path.join(data_root, split), self.LAYOUT)
        if subset_file:
            _require(subset_file, 'a text file with one class folder or image file per line')
        super().__init__(data_root, **kwargs)

    def image_keys(self) -> list[str]:
        root = os.path.join(self.data_root, self.split)
        if not self.subset_file:
            return [os.path.join(self.split, key) for key in list_images(root)]
        entries = _read_lines(self.subset_file)
        if all(_is_image(entry) for entry in entries):
            keys = [entry if '/' in entry else f"{entry.split('_')[0]}/{entry}" for entry in entries]
            missing = [key for key in keys if not os.path.isfile(os.path.join(root, key))]
            if missing:
                raise DatasetLayoutError(f'{len(missing)} images of {self.subset_file} are missing under '
                                         f'{root}, e.g. {missing[0]}')
            return [os.path.join(self.split, key) for key in keys]
        keys = []
        for cls in entries:
            _require(os.path.join(root, cls), self.LAYOUT)
            keys += [os.path.join(self.split, cls, key) for key in list_images(os.path.join(root, cls))]
        return keys


@DATASETS.register_module()
class CocoUnlabeled(_UnlabeledImages):
    """COCO images without labels (Table 2: scene-centric pretraining).

    Args:
        image_dirs: folders under ``data_root`` (``train2017``; add
            ``unlabeled2017`` for COCO+).
        ann_file: optional annotation JSON under ``data_root`` whose image
            list (``images[].file_name``) selects the images of the first
            folder; only that list is read.
    """

    LAYOUT = ('  <data_root>/train2017/<image>.jpg            e.g. data/coco/train2017/000000000009.jpg\n'
              '  <data_root>/annotations/instances_train2017.json   (only with ann_file)\n'
              '  <data_root>/unlabeled2017/<image>.jpg        (only with image_dirs including it)')

    def __init__(self, data_root: str, image_dirs=('train2017',), ann_file: str | None = None, **kwargs):
        self.image_dirs = tuple(image_dirs)
        _require(data_root, self.LAYOUT)
        for folder in self.image_dirs:
            _require(os.path.join(data_root, folder), self.LAYOUT)
        self.image_list_file = os.path.join(data_root, ann_file) if ann_file else None
        if self.image_list_file:
            _require(self.image_list_file, self.LAYOUT)
        super().__init__(data_root, **kwargs)

    def image_keys(self) -> list[str]:
        keys = []
        for index, folder in enumerate(self.image_dirs):
            if index == 0 and self.image_list_file:
                with open(self.image_list_file) as handle:
                    images = json.load(handle)['images']
                keys += [os.path.join(folder, image['file_name']) for image in images]
            else:
                keys += [os.path.join(folder, key) for key in list_images(os.path.join(self.data_root, folder))]
        return keys


@DATASETS.register_module()
class ImageList(_UnlabeledImages):
    """Every image under ``data_root`` (recursively), or those of ``list_file``."""

    LAYOUT = '  <data_root>/**/<image>.{jpg,png,...}   or a list file with one relative path per line'

    def __init__(self, data_root: str, list_file: str | None = None, **kwargs):
        self.list_file = list_file
        if list_file:
            _require(list_file, self.LAYOUT)
        super().__init__(data_root, **kwargs)

    def image_keys(self) -> list[str]:
        if self.list_file:
            return _read_lines(self.list_file)
        return list_images(self.data_root)
