"""Unlabelled datasets, layouts, and robustness to bad image files."""
import json
import logging
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from mmengine.logging import MMLogger
from PIL import Image

from r2o_mm.data import CocoUnlabeled, DatasetLayoutError, ImageFolderUnlabeled, ImageList
from r2o_mm.data.transforms import SKIPPED_IMAGES_LOG
from r2o_mm.engine.hooks import SkippedImagesHook

PIPELINE = [
    dict(type='LoadImageRGB'),
    dict(type='TwoViews', size=32),
    dict(type='RawViewSuperpixels', size=32, n_segments=20, ignore_n_segments=False),
    dict(type='PackR2OInputs'),
]


def save(path, array, mode=None, **kwargs):
    path.parent.mkdir(parents=True, exist_ok=True)
    image = Image.fromarray(array)
    if mode:
        image = image.convert(mode)
    image.save(path, **kwargs)
    return path


def image_keys(dataset):
    return [dataset.get_data_info(i)['img_key'] for i in range(len(dataset))]


def rgb(height, width, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)


def test_missing_root_names_the_path_and_layout(tmp_path):
    missing = tmp_path / 'imagenet'
    with pytest.raises(DatasetLayoutError, match=r'(?s)imagenet does not exist.*<class>'):
        ImageFolderUnlabeled(str(missing))
    with pytest.raises(DatasetLayoutError, match=r'(?s)coco does not exist.*train2017'):
        CocoUnlabeled(str(tmp_path / 'coco'))
    (tmp_path / 'empty').mkdir()
    with pytest.raises(DatasetLayoutError, match='no images found'):
        ImageList(str(tmp_path / 'empty'))


def test_image_folder_with_class_and_image_subsets(tmp_path):
    root = tmp_path / 'imagenet'
    for cls in ('n01', 'n02', 'n03'):
        for i in range(2):
            save(root / 'train' / cls / f'{cls}_{i}.JPEG', rgb(8, 8))
    assert len(ImageFolderUnlabeled(str(root))) == 6
    classes = tmp_path / 'in100.txt'
    classes.write_text('n01\nn03\n')
    found = image_keys(ImageFolderUnlabeled(str(root), subset_file=str(classes)))
    assert found == ['train/n01/n01_0.JPEG', 'train/n01/n01_1.JPEG', 'train/n03/n03_0.JPEG',
                    'train/n03/n03_1.JPEG']
    images = tmp_path / '1percent.txt'
    images.write_text('n02_1.JPEG\nn03/n03_0.JPEG\n')
    found = image_keys(ImageFolderUnlabeled(str(root), subset_file=str(images)))
    assert found == ['train/n02/n02_1.JPEG', 'train/n03/n03_0.JPEG']
    images.write_text('n09_1.JPEG\n')
    with pytest.raises(DatasetLayoutError, match='1 images .* are missing'):
        ImageFolderUnlabeled(str(root), subset_file=str(images))


def test_coco_from_folder_and_from_annotation_list(tmp_path):
    root = tmp_path / 'coco'
    for name in ('1.jpg', '2.jpg', '3.jpg'):
        save(root / 'train2017' / name, rgb(8, 8))
    save(root / 'unlabeled2017' / '9.jpg', rgb(8, 8))
    assert len(CocoUnlabeled(str(root))) == 3
    (root / 'annotations').mkdir()
    (root / 'annotations' / 'instances_train2017.json').write_text(
        json.dumps({'images': [{'file_name': '2.jpg', 'id': 2}], 'annotations': []}))
    listed = CocoUnlabeled(str(root), ann_file='annotations/instances_train2017.json',
                           image_dirs=('train2017', 'unlabeled2017'))
    assert image_keys(listed) == ['train2017/2.jpg', 'unlabeled2017/9.jpg']


def test_bad_files_are_skipped_with_one_warning_each_and_odd_images_work(tmp_path, monkeypatch):
    root = tmp_path / 'images'
    good = [
        save(root / 'gray.png', rgb(40, 50)[..., 0]),
        save(root / 'rgba.png', rgb(40, 50), mode='RGBA'),
        save(root / 'cmyk.jpg', rgb(40, 50), mode='CMYK'),
        save(root / 'tiny.png', rgb(3, 5)),
        save(root / 'wide.png', rgb(4, 1000)),
        save(root / 'palette.gif', rgb(30, 30), mode='P'),
    ]
    (root / 'garbage.jpg').write_bytes(b'not an image at all')
    full = save(tmp_path / 'full.jpg', rgb(200, 200))
    (root / 'truncated.jpg').write_bytes(full.read_bytes()[:600])
    skip_log = tmp_path / 'skipped_images.txt'
    monkeypatch.setenv(SKIPPED_IMAGES_LOG, str(skip_log))
    dataset = ImageList(str(root), pipeline=PIPELINE, serialize_data=False)
    assert len(dataset) == 8
    records = []
    handler = logging.Handler(logging.WARNING)
    handler.emit = records.append
    logger = MMLogger.get_current_instance()
    logger.addHandler(handler)
    try:
        for _ in range(3):  # bad files come up again: still one warning each
            for index in range(len(dataset)):
                sample = dataset[index]['inputs']
                assert sample['view1'].shape == (3, 32, 32) and sample['raw'].shape == (3, 32, 32)
                assert sample['superpixels'].min() == 0
    finally:
        logger.removeHandler(handler)
    skipped = [r.getMessage() for r in records if 'skipping unreadable image' in r.getMessage()]
    assert len(skipped) == 2
    assert any('garbage.jpg' in m for m in skipped) and any('truncated.jpg' in m for m in skipped)
    assert '(2 skipped by this worker)' in skipped[-1]
    # The end-of-run total over all workers comes from the shared list.
    assert sorted(skip_log.read_text().split()) == [str(root / 'garbage.jpg'), str(root / 'truncated.jpg')]
    messages = []
    SkippedImagesHook().after_train(SimpleNamespace(logger=SimpleNamespace(
        warning=messages.append, info=messages.append)))
    assert messages == [f'2 unreadable images were skipped during training; the list is in {skip_log}']
    paths = {dataset.get_data_info(i)['img_path'] for i in range(len(dataset))}
    assert {str(p) for p in good} <= paths
