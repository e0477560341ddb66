"""How good predicted whole-image masks are, against ground-truth objects.

Pure functions on label maps (numpy), used by ``tools/eval_masks.py``, the
``MaskQualityHook`` of pretraining runs and the CUB protocol:

* mean best overlap (mBO): for each ground-truth object, the best IoU of any
  predicted mask; averaged over objects (over the whole set, not per image);
* foreground/background mIoU (the CUB protocol): clusters named foreground by
  a majority vote of the ground truth, IoU of foreground and of background.
"""
from __future__ import annotations

import numpy as np


def best_overlaps(labels: np.ndarray, objects: np.ndarray) -> np.ndarray:
    """Best IoU of any predicted mask with each ground-truth object.

    Args:
        labels: (H, W) integer label map of the predicted masks.
        objects: (G, H, W) bool ground-truth object masks.

    Returns:
        (G,) float IoUs in [0, 1].
    """
    if len(objects) == 0:
        return np.zeros(0)
    _, flat = np.unique(labels.ravel(), return_inverse=True)
    masks = np.eye(flat.max() + 1, dtype=np.int64)[flat].T            # (K, H*W)
    truth = objects.reshape(len(objects), -1).astype(np.int64)       # (G, H*W)
    intersection = truth @ masks.T                                    # (G, K)
    union = truth.sum(1, keepdims=True) + masks.sum(1)[None] - intersection
    return (intersection / np.maximum(union, 1)).max(1)


def mean_best_overlap(overlaps: list[np.ndarray]) -> float:
    """mBO in percent over every object of every image."""
    values = np.concatenate([np.asarray(o, dtype=float) for o in overlaps]) if overlaps else np.zeros(0)
    return float(100 * values.mean()) if values.size else float('nan')


def majority_foreground(clusters: np.ndarray, foreground: np.ndarray) -> np.ndarray:
    """Foreground prediction: clusters whose pixels are mostly foreground."""
    prediction = np.zeros_like(foreground, dtype=bool)
    for cluster in np.unique(clusters):
        member = clusters == cluster
        if foreground[member].mean() > 0.5:
            prediction |= member
    return prediction


def iou_counts(prediction: np.ndarray, foreground: np.ndarray) -> np.ndarray:
    """[fg intersection, fg union, bg intersection, bg union]."""
    return np.array([(prediction & foreground).sum(), (prediction | foreground).sum(),
                     (~prediction & ~foreground).sum(), (~prediction | ~foreground).sum()], np.int64)


def foreground_miou(counts: np.ndarray) -> dict:
    """mIoU, fg IoU and bg IoU (percent) from summed :func:`iou_counts`."""
    fg, bg = counts[0] / max(counts[1], 1), counts[2] / max(counts[3], 1)
    return {'mIoU': 100 * (fg + bg) / 2, 'fg_IoU': 100 * fg, 'bg_IoU': 100 * bg}
