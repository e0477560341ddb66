"""Whole-image masks predicted by a model's own mask-prediction path (SLIC,
layer3 descriptors of the target encoder, K-means), scored against COCO-format
instance annotations with :mod:`.mask_quality`."""
from __future__ import annotations

import contextlib
import io
import os

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from ..data.datasets import DatasetLayoutError
from ..data.transforms import RawViewSuperpixels
from .mask_quality import best_overlaps, mean_best_overlap


def load_coco_objects(ann_file: str, image_dir: str, max_images: int | None = None) -> list[tuple[str, np.ndarray]]:
    """[(image path, (G, H, W) bool object masks)], crowd regions left out,
    images without objects skipped, the first ``max_images`` by image id."""
    from pycocotools.coco import COCO
    for path in (ann_file, image_dir):
        if not os.path.exists(path):
            raise DatasetLayoutError(f'{path} does not exist. Expected COCO-format instance annotations '
                                     '(e.g. data/coco/annotations/instances_val2017.json) and their image folder '
                                     '(data/coco/val2017)')
    with contextlib.redirect_stdout(io.StringIO()):  # pycocotools prints its progress
        coco = COCO(ann_file)
    items = []
    for image_id in sorted(coco.getImgIds()):
        annotations = [a for a in coco.loadAnns(coco.getAnnIds(imgIds=image_id, iscrowd=False))]
        if not annotations:
            continue
        info = coco.loadImgs(image_id)[0]
        objects = np.stack([coco.annToMask(a).astype(bool) for a in annotations])
        items.append((os.path.join(image_dir, info['file_name']), objects))
        if max_images and len(items) >= max_images:
            break
    return items


def raw_views(paths: list[str], size: int = 224) -> tuple[torch.Tensor, torch.Tensor]:
    """Raw views (N, 3, size, size) uint8 and SLIC maps (N, size, size) as in
    pretraining (100 segments on the normalised image: Quirks Q1, Q2)."""
    prior = RawViewSuperpixels(size=size)
    raws, labels = [], []
    for path in paths:
        with Image.open(path) as handle:
            image = torch.from_numpy(np.array(handle.convert('RGB'))).permute(2, 0, 1)
        raw = prior.raw_view(image)
        raws.append(raw)
        labels.append(torch.from_numpy(prior.superpixels(raw).astype(np.int64)))
    return torch.stack(raws), torch.stack(labels)


@torch.no_grad()
def predict_labels(model, raws: torch.Tensor, superpixels: torch.Tensor, k: int, batch: int = 32) -> torch.Tensor:
    """(N, M, M) cluster label maps (M = size / 4) from ``model.predict_masks``
    at K = ``k`` (above 128: the superpixels), over batches of ``batch``
    images as on one GPU. A model whose own masks are not clustered (BYOL's
    one whole-image mask) is scored with the same clustering of its features.
    The model's K, mask source, K-means generator and counters are restored
    afterwards, so a training run continues unchanged."""
    device = next(model.parameters()).device
    saved = (model.num_clusters, model.mask_source, model.training)
    model.num_clusters, model.mask_source = k, 'kmeans'
    model.eval()
    preprocess = model.data_preprocessor  # on the model's device: normalises there
    labels = []
    try:
        with model.kmeans_state_kept(draws=0):  # the same draws at every evaluation
            for start in range(0, len(raws), batch):
                inputs = preprocess({'inputs': {'raw': list(raws[start:start + batch]),
                                                'superpixels': list(superpixels[start:start + batch])}})['inputs']
                masks, _ = model.predict_masks(inputs['raw'].to(device), inputs['superpixels'].to(device),
                                               inputs['num_superpixels'])
                labels.append(masks.argmax(1).cpu())
    finally:
        model.num_clusters, model.mask_source, training = saved
        model.train(training)
    return torch.cat(labels)


def score_masks(model, items: list[tuple[str, np.ndarray]], ks, size: int = 224, batch: int = 32,
                views=None) -> tuple[dict, dict]:
    """{K: mBO (percent)} of the model's masks against the objects of
    ``items`` (label maps resized, nearest, to each image's own size), and
    {K: (N, M, M) label maps} that were scored.
    ``views``: precomputed :func:`raw_views` of the items (SLIC is the slow part)."""
    raws, superpixels = views if views is not None else raw_views([path for path, _ in items], size)
    scores, predicted = {}, {}
    for k in ks:
        predicted[k] = predict_labels(model, raws, superpixels, k, batch)
        overlaps = []
        for (_, objects), label in zip(items, predicted[k]):
            full = F.interpolate(label[None, None].float(), size=objects.shape[1:], mode='nearest')[0, 0]
            overlaps.append(best_overlaps(full.long().numpy(), objects))
        scores[k] = mean_best_overlap(overlaps)
    return scores, predicted


def zero_descriptor_share(superpixels: torch.Tensor, grid: int) -> float:
    """The share of the superpixels present in ``superpixels`` (N, H, W)
    whose descriptor is zero: their one-hot map, resized bilinearly to the
    ``grid`` x ``grid`` layer3 map as the mask path does (SPEC step 2), has no
    weight left because the superpixel covers none of the pixels bilinear
    down-sampling reads. It depends on the sizes only, not on any weights.
    K-means clusters these zeros with the empty slots of the batch, so at
    K=2 (measured here at 128 px: 27% zeros) one cluster is the zeros and
    the other every real descriptor: the masks are the same for any
    encoder."""
    from ..models.regions import resize_onehot
    slots = int(superpixels.max()) + 1
    area = resize_onehot(superpixels, slots, grid).flatten(2).sum(-1)
    present = torch.stack([torch.bincount(s.flatten(), minlength=slots) > 0 for s in superpixels])
    return int(((area == 0) & present).sum()) / int(present.sum())


def mask_model_for(encoder, depth: int):
    """An R2O whose target encoder is ``encoder``, to run the mask path on
    any encoder (R2O, BYOL, random init, torchvision files)."""
    from ..models.r2o import R2O
    model = R2O(depth=depth, projector_hidden=8, projection_dim=8, predictor_hidden=8)
    model.target_encoder.load_state_dict(encoder.state_dict())
    return model.eval()


def save_mask_grid(raws: torch.Tensor, superpixels: torch.Tensor, labels: dict, path: str, title: str = ''):
    """The paper's Fig. 3: each row an image, its superpixels, then its masks
    at each K of ``labels`` ({K: (N, M, M) label maps})."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    from skimage.segmentation import mark_boundaries
    ks = list(labels)
    rows = len(raws)
    fig, axes = plt.subplots(rows, 2 + len(ks), figsize=(2 * (2 + len(ks)), 2 * rows), squeeze=False)
    for index in range(rows):
        image = raws[index].permute(1, 2, 0).numpy()
        pictures = [image, mark_boundaries(image, superpixels[index].numpy())]
        pictures += [labels[k][index].numpy() for k in ks]
        names = ['image', 'superpixels'] + [f'K={k}' if k <= 128 else 'superpixels only' for k in ks]
        for axis, picture, name in zip(axes[index], pictures, names):
            axis.imshow(picture, cmap=None if picture.ndim == 3 else 'tab20', interpolation='nearest')
            axis.set_title(name, fontsize=8)
            axis.axis('off')
    if title:
        fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)
