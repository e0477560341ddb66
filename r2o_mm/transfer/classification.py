"""ImageNet classification on mmpretrain: the dataset that the linear and
semi-supervised tasks read (imported by their configs' ``custom_imports``,
so that mmpretrain is imported only where it is used).

``ImageNetFolder`` is mmpretrain's :class:`CustomDataset` on ImageNet's folder
layout, ``<data_root>/<split>/<class>/<image>`` (val sorted into class
folders, as ``tools/eval_knn.py`` reads it), with an optional label subset in
the format of SimCLR's ``1percent.txt`` / ``10percent.txt``: one image per
line, a bare ``n01440764_10026.JPEG`` or ``<class>/<image>``. Classes are the
sorted class folders, as mmpretrain's ``ImageNet`` numbers them; a val split
whose class folders are not the train split's is refused (its labels would
not mean the same classes).
"""
from __future__ import annotations

import os

from mmpretrain.datasets import CustomDataset
from mmpretrain.registry import DATASETS

from ..data.datasets import DatasetLayoutError, _read_lines

LAYOUT = ('<data_root>/train/<class>/<image>.JPEG and <data_root>/val/<class>/<image>.JPEG (val sorted into the '
          "same class folders), e.g. data/imagenet/train/n01440764/n01440764_10026.JPEG; label subsets: SimCLR's "
          '1percent.txt / 10percent.txt (one image per line) in data/imagenet/')


def _class_folders(folder: str) -> list[str]:
    return sorted(d for d in os.listdir(folder) if os.path.isdir(os.path.join(folder, d)))


@DATASETS.register_module()
class ImageNetFolder(CustomDataset):
    """ImageNet's folder layout, all images of ``split`` or those of ``subset_file``.

    Args:
        data_root: the folder holding ``train/`` and ``val/``.
        split: ``train`` or ``val`` (the folder under ``data_root``).
        subset_file: SimCLR-style list of training images (None: all).
    """

    IMG_EXTENSIONS = ('.jpg', '.jpeg', '.png', '.ppm', '.bmp', '.pgm', '.tif')

    def __init__(self, data_root: str, split: str = 'train', subset_file: str | None = None, **kwargs):
        folder = os.path.join(data_root, split)
        if not os.path.isdir(folder):
            raise DatasetLayoutError(f'{folder} does not exist. Expected layout: {LAYOUT}')
        if subset_file and not os.path.isfile(subset_file):
            raise DatasetLayoutError(f'label subset {subset_file} does not exist. Expected: {LAYOUT}')
        train = os.path.join(data_root, 'train')
        if split != 'train' and os.path.isdir(train) and _class_folders(folder) != _class_folders(train):
            raise DatasetLayoutError(f'the class folders of {folder} are not those of {train}: the labels '
                                     'would not name the same classes (sort val into the train class folders)')
        self.split, self.subset_file = split, subset_file
        super().__init__(data_root=data_root, data_prefix=split, extensions=self.IMG_EXTENSIONS, **kwargs)

    def load_data_list(self) -> list[dict]:
        data = super().load_data_list()
        if not self.subset_file:
            return data
        root = os.path.join(self.data_root, self.split)
        by_key = {os.path.relpath(item['img_path'], root): item for item in data}
        keys = [entry if '/' in entry else f"{entry.split('_')[0]}/{entry}" for entry in _read_lines(self.subset_file)]
        missing = [key for key in keys if key not in by_key]
        if missing:
            raise DatasetLayoutError(f'{len(missing)} images of {self.subset_file} are not under {root}, e.g. '
                                     f'{missing[0]}')
        return [by_key[key] for key in keys]
