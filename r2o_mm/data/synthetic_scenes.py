"""Synthetic scenes with exact masks, in the COCO, VOC and Cityscapes layouts.

Each scene is a textured background with a few objects (later objects
occlude earlier ones; masks are the visible parts). An object's class is told
by its shape only: colours and textures are drawn from one palette shared by
all classes, so colour alone cannot solve a probe. The files follow the real datasets' layouts, so mmdet's
``CocoDataset`` / ``CocoMetric`` and mmseg's ``PascalVOCDataset``,
``CityscapesDataset`` and ``IoUMetric`` run on them unchanged:

    <root>/coco/{train2017,val2017}/*.jpg, annotations/instances_{train,val}2017.json
    <root>/VOCdevkit/VOC2012/JPEGImages/*.jpg, SegmentationClass/*.png,
        SegmentationClassAug/*.png, ImageSets/Segmentation/{train,val,aug}.txt
    <root>/cityscapes/leftImg8bit/{train,val}/synth/*_leftImg8bit.png,
        gtFine/{train,val}/synth/*_gtFine_labelTrainIds.png

:func:`write_imagenet_folder` writes a classification set in ImageNet's
layout instead: one object per image, its shape is its class
(``<root>/imagenet/{train,val}/<shape>/<shape>_<n>.JPEG``), with SimCLR-style
label-subset lists ``1percent.txt`` and ``10percent.txt``.
"""
from __future__ import annotations

import json
import os

import numpy as np
from PIL import Image
from pycocotools import mask as mask_utils

# shape -> (COCO category name, VOC class index, Cityscapes trainId)
SHAPES = {
    'disc': ('sports ball', 1, 11),       # aeroplane | person
    'square': ('tv', 5, 13),              # bottle | car
    'triangle': ('kite', 8, 7),           # cat | traffic sign
    'ring': ('frisbee', 15, 18),          # person | bicycle
}
# Object colours, shared by every shape.
PALETTE = ((220, 60, 40), (40, 90, 220), (240, 200, 30), (60, 190, 80), (200, 80, 200), (90, 200, 210))
CITYSCAPES_BACKGROUND = 0  # road


def _texture(rng, height, width, colour, strength, stripes: float = 1.0):
    """Colour plus low-frequency noise and stripes (uint8 HxWx3); ``stripes``
    scales the stripes alone (0: none; the random draws stay the same)."""
    coarse = rng.normal(0, 1, (height // 8 + 2, width // 8 + 2, 3))
    noise = np.array(Image.fromarray(((coarse - coarse.min()) / (np.ptp(coarse) + 1e-6) * 255)
                                     .astype(np.uint8)).resize((width, height), Image.Resampling.BILINEAR),
                     dtype=np.float32) / 255 - 0.5
    period, angle = rng.uniform(4, 16), rng.uniform(0, np.pi)
    ys, xs = np.mgrid[:height, :width]
    wave = np.sin((xs * np.cos(angle) + ys * np.sin(angle)) * 2 * np.pi / period)[..., None]
    image = np.asarray(colour, np.float32) + strength * (80 * noise + 25 * stripes * wave)
    return np.clip(image, 0, 255)


def _shape_mask(shape, height, width, cy, cx, radius):
    ys, xs = np.mgrid[:height, :width]
    dy, dx = ys - cy, xs - cx
    if shape == 'disc':
        return dy ** 2 + dx ** 2 <= radius ** 2
    if shape == 'square':
        return (np.abs(dy) <= radius * 0.85) & (np.abs(dx) <= radius * 0.85)
    if shape == 'triangle':
        return (dy <= radius * 0.8) & (dy >= -radius) & (np.abs(dx) <= (dy + radius) * 0.6)
    if shape == 'ring':
        dist = dy ** 2 + dx ** 2
        return (dist <= radius ** 2) & (dist >= (radius * 0.5) ** 2)
    if shape == 'cross':
        return ((np.abs(dy) <= radius * 0.3) & (np.abs(dx) <= radius)) | \
            ((np.abs(dx) <= radius * 0.3) & (np.abs(dy) <= radius))
    if shape == 'diamond':
        return np.abs(dy) + np.abs(dx) <= radius
    raise ValueError(shape)


# The classes of the ImageNet-layout set: six shapes, so that top-5 accuracy is not trivially 100%.
CLASSIFICATION_SHAPES = ('cross', 'diamond', 'disc', 'ring', 'square', 'triangle')


def make_scene(rng: np.random.Generator, height: int, width: int, max_objects: int = 4, stripes: float = 1.0):
    """Returns image (H, W, 3) uint8 and [(shape, visible mask (H, W) bool)];
    ``stripes`` scales the background's stripes (:func:`_texture`)."""
    background = tuple(rng.integers(60, 200, 3))
    image = _texture(rng, height, width, background, strength=1.0, stripes=stripes)
    objects = []
    for _ in range(rng.integers(1, max_objects + 1)):
        shape = list(SHAPES)[rng.integers(len(SHAPES))]
        radius = rng.uniform(0.12, 0.25) * min(height, width)
        cy, cx = rng.uniform(radius, height - radius), rng.uniform(radius, width - radius)
        mask = _shape_mask(shape, height, width, cy, cx, radius)
        colour = np.clip(np.asarray(PALETTE[rng.integers(len(PALETTE))]) + rng.integers(-25, 26, 3), 0, 255)
        image[mask] = _texture(rng, height, width, colour, strength=0.4)[mask]
        objects = [(s, m & ~mask) for s, m in objects]
        objects.append((shape, mask))
    objects = [(s, m) for s, m in objects if m.sum() >= 16]
    return image.astype(np.uint8), objects


def write_scene_images(folder: str, count: int, size=(128, 160), seed: int = 0, stripes: float = 1.0) -> list[str]:
    """Scene images only (no labels), e.g. as unlabelled pretraining data;
    ``stripes`` scales the backgrounds' stripes (:func:`make_scene`)."""
    os.makedirs(folder, exist_ok=True)
    rng = np.random.default_rng(seed)
    paths = []
    for index in range(count):
        image, _ = make_scene(rng, *size, stripes=stripes)
        paths.append(os.path.join(folder, f'scene_{index:04d}.jpg'))
        Image.fromarray(image).save(paths[-1], quality=95)
    return paths


def _semantic(objects, height, width, column, background):
    label = np.full((height, width), background, np.uint8)
    for shape, mask in objects:
        label[mask] = SHAPES[shape][column]
    return label


def write_synthetic_datasets(root: str, num_train: int = 24, num_val: int = 8, size=(128, 160),
                             seed: int = 0, layouts=('coco', 'voc', 'cityscapes')) -> dict:
    """Writes the scenes in each layout under ``root``; returns the roots."""
    height, width = size
    roots = {}
    splits = {'train': num_train, 'val': num_val}
    for offset, layout in enumerate(layouts):
        rng = np.random.default_rng(seed + 1000 * offset)
        scenes = {split: [make_scene(rng, height, width) for _ in range(count)]
                  for split, count in splits.items()}
        roots[layout] = globals()[f'_write_{layout}'](root, scenes)
    return roots


def coco_categories() -> list[dict]:
    """All 80 COCO categories (mmdet's names, ids 1..80): mmdet's CocoMetric
    maps every predicted label to a category, so all must exist."""
    from mmdet.datasets import CocoDataset
    return [{'id': i + 1, 'name': name} for i, name in enumerate(CocoDataset.METAINFO['classes'])]


def _write_coco(root, scenes):
    base = os.path.join(root, 'coco')
    categories = coco_categories()
    category_ids = {c['name']: c['id'] for c in categories}
    os.makedirs(os.path.join(base, 'annotations'), exist_ok=True)
    annotation_id = 1
    for split, items in scenes.items():
        folder = os.path.join(base, f'{split}2017')
        os.makedirs(folder, exist_ok=True)
        images, annotations = [], []
        for index, (image, objects) in enumerate(items):
            image_id = index + 1
            name = f'{image_id:012d}.jpg'
            Image.fromarray(image).save(os.path.join(folder, name), quality=95)
            images.append({'id': image_id, 'file_name': name, 'height': image.shape[0],
                           'width': image.shape[1]})
            for shape, mask in objects:
                rle = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
                x, y, w, h = mask_utils.toBbox(rle).tolist()
                rle['counts'] = rle['counts'].decode('ascii')
                category = category_ids[SHAPES[shape][0]]
                annotations.append({'id': annotation_id, 'image_id': image_id, 'category_id': category,
                                    'segmentation': rle, 'area': float(mask.sum()),
                                    'bbox': [x, y, w, h], 'iscrowd': 0})
                annotation_id += 1
        with open(os.path.join(base, 'annotations', f'instances_{split}2017.json'), 'w') as handle:
            json.dump({'images': images, 'annotations': annotations, 'categories': categories},
                      handle)
    return base


def _write_voc(root, scenes):
    base = os.path.join(root, 'VOCdevkit', 'VOC2012')
    for folder in ('JPEGImages', 'SegmentationClass', 'SegmentationClassAug', 'ImageSets/Segmentation'):
        os.makedirs(os.path.join(base, folder), exist_ok=True)
    lists = {}
    for split, items in scenes.items():
        names = []
        for index, (image, objects) in enumerate(items):
            name = f'2026_{split}_{index:06d}'
            Image.fromarray(image).save(os.path.join(base, 'JPEGImages', f'{name}.jpg'), quality=95)
            label = Image.fromarray(_semantic(objects, *image.shape[:2], column=1, background=0))
            label.save(os.path.join(base, 'SegmentationClass', f'{name}.png'))
            label.save(os.path.join(base, 'SegmentationClassAug', f'{name}.png'))
            names.append(name)
        lists[split] = names
    lists['aug'] = lists['train']
    for split, names in lists.items():
        with open(os.path.join(base, 'ImageSets', 'Segmentation', f'{split}.txt'), 'w') as handle:
            handle.write('\n'.join(names) + '\n')
    return base


def _write_cityscapes(root, scenes):
    base = os.path.join(root, 'cityscapes')
    for split, items in scenes.items():
        images = os.path.join(base, 'leftImg8bit', split, 'synth')
        labels = os.path.join(base, 'gtFine', split, 'synth')
        os.makedirs(images, exist_ok=True)
        os.makedirs(labels, exist_ok=True)
        for index, (image, objects) in enumerate(items):
            name = f'synth_{index:06d}_000019'
            Image.fromarray(image).save(os.path.join(images, f'{name}_leftImg8bit.png'))
            label = _semantic(objects, *image.shape[:2], column=2, background=CITYSCAPES_BACKGROUND)
            Image.fromarray(label).save(os.path.join(labels, f'{name}_gtFine_labelTrainIds.png'))
    return base


def make_object_image(rng: np.random.Generator, shape: str, height: int, width: int,
                      background_strength: float = 1.0) -> np.ndarray:
    """One object of ``shape`` on a textured background (H, W, 3) uint8: the
    colours come from the shared palette, so only the shape tells the class.
    ``background_strength`` scales the background's noise and stripes (1: as
    strong as the scenes' backgrounds)."""
    image = _texture(rng, height, width, tuple(rng.integers(60, 200, 3)), strength=background_strength)
    radius = rng.uniform(0.25, 0.4) * min(height, width)
    cy, cx = rng.uniform(radius, height - radius), rng.uniform(radius, width - radius)
    mask = _shape_mask(shape, height, width, cy, cx, radius)
    colour = np.clip(np.asarray(PALETTE[rng.integers(len(PALETTE))]) + rng.integers(-25, 26, 3), 0, 255)
    image[mask] = _texture(rng, height, width, colour, strength=0.4)[mask]
    return image.astype(np.uint8)


def write_imagenet_folder(root: str, train_per_class: int = 12, val_per_class: int = 4, size=(72, 88),
                          seed: int = 0, subsets=(('1percent.txt', 2), ('10percent.txt', 4)),
                          background_strength: float = 1.0) -> str:
    """ImageNet's layout with the shapes as classes; returns ``<root>/imagenet``.

    ``<root>/imagenet/{train,val}/<class>/<class>_<n>.JPEG`` (val sorted into
    class folders, as the k-NN and classification tasks read it; backgrounds
    as :func:`make_object_image`'s ``background_strength``), and for each
    ``(name, per_class)`` of ``subsets`` a list of the first ``per_class``
    training images of every class in the format of SimCLR's
    ``1percent.txt`` (one bare file name per line, its class before ``_``).
    """
    base = os.path.join(root, 'imagenet')
    rng = np.random.default_rng(seed)
    for split, count in (('train', train_per_class), ('val', val_per_class)):
        for shape in CLASSIFICATION_SHAPES:
            folder = os.path.join(base, split, shape)
            os.makedirs(folder, exist_ok=True)
            for index in range(count):
                Image.fromarray(make_object_image(rng, shape, *size, background_strength)).save(
                    os.path.join(folder, f'{shape}_{index:04d}.JPEG'), quality=95)
    for name, per_class in subsets:
        with open(os.path.join(base, name), 'w') as handle:
            handle.write(''.join(f'{shape}_{index:04d}.JPEG\n' for shape in CLASSIFICATION_SHAPES
                                 for index in range(min(per_class, train_per_class))))
    return base


def main(argv=None):
    """``python -m r2o_mm.data.synthetic_scenes OUT [--train 24] [--val 8]``: the VOC, COCO and Cityscapes
    layouts and the ImageNet-layout shape folder under OUT, for transfers at CPU size (docs/transfer.md)."""
    import argparse
    parser = argparse.ArgumentParser(description='Generated datasets in the layouts of the transfer tasks')
    parser.add_argument('out')
    parser.add_argument('--train', type=int, default=24, help='training scenes per layout')
    parser.add_argument('--val', type=int, default=8, help='validation scenes per layout')
    args = parser.parse_args(argv)
    write_synthetic_datasets(args.out, args.train, args.val, layouts=('voc', 'coco', 'cityscapes'))
    imagenet = write_imagenet_folder(args.out)
    print(f'wrote {args.out}/VOCdevkit/VOC2012, {args.out}/coco, {args.out}/cityscapes and {imagenet}')


if __name__ == '__main__':
    main()
