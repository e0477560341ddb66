from .datasets import CocoUnlabeled, DatasetLayoutError, ImageFolderUnlabeled, ImageList
from .sampler import SeededSampler
from .transforms import LoadImageRGB, PackR2OInputs, RawViewSuperpixels, TwoViews

__all__ = ['CocoUnlabeled', 'DatasetLayoutError', 'ImageFolderUnlabeled', 'ImageList', 'LoadImageRGB',
           'PackR2OInputs', 'RawViewSuperpixels', 'SeededSampler', 'TwoViews']
