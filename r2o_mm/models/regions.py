"""Region and mask operations of R2O as plain tensor functions.

Each function is pure (no module state), device-agnostic and documented with
its tensor shapes. Names used in the shapes:

    B  images per GPU            C  superpixel slots (largest label + 1)
    D  feature channels          K  clusters (masks) per image
    H, W   input size            h, w   a feature map's size
    M  mask resolution (56 at input 224)
    N  rows (2B for the two views stacked)

docs/method.md section 2 gives the steps; section 7 the quirks (Q4, Q6) that are
switchable here.
"""
from __future__ import annotations

import math
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torchvision.ops import roi_align

# Masks whose area (sum of their values on the last feature grid) is at or
# below this do not count as present in a view (the overlap indicator).
MIN_MASK_AREA = 1e-3
# K above MAX_CLUSTERS means "no K-means: the SLIC superpixels are the masks"
# (the released code's 9999).
MAX_CLUSTERS = 128
SUPERPIXELS_ONLY = 9999


def superpixel_onehot(labels: torch.Tensor, num_segments: int | None = None) -> torch.Tensor:
    """One-hot encode superpixel label maps.

    Args:
        labels: (B, H, W) integer labels starting at 0.
        num_segments: C; by default the largest label in the batch + 1.

    Returns:
        (B, C, H, W) float one-hot maps.
    """
    if num_segments is None:
        num_segments = int(labels.max()) + 1
    return F.one_hot(labels.long(), num_segments).permute(0, 3, 1, 2).float()


def _source_index(size_in: int, size_out: int, device) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """PyTorch's bilinear source pixels (align_corners=False) along one axis:
    the two neighbours of each output and the weight of the second."""
    source = ((torch.arange(size_out, device=device, dtype=torch.float32) + 0.5) * (size_in / size_out) - 0.5)
    source = source.clamp(min=0)
    low = source.floor().long().clamp(max=size_in - 1)
    return low, (low + 1).clamp(max=size_in - 1), source - low


def resize_onehot(labels: torch.Tensor, num_segments: int, size: int, mode: str = 'bilinear') -> torch.Tensor:
    """``F.interpolate(superpixel_onehot(labels), size, mode)``, without the
    full-resolution one-hot (B x C x H x W, 640 MB at the paper's batch).

    Bilinear (align_corners=False) reads 4 source pixels per output: each adds
    its bilinear weight to its own label's channel (the maps stay soft, as in
    the reference). Nearest reads one pixel. Equal to interpolating the one-hot
    maps up to float rounding of the weights.

    Args:
        labels: (B, H, W) integer labels from 0.
        num_segments: C.
        size: output side.
        mode: ``'bilinear'`` or ``'nearest'``.

    Returns:
        (B, C, size, size) float maps.
    """
    batch, height, width = labels.shape
    labels = labels.long()
    out = torch.zeros(batch, num_segments, size * size, device=labels.device)
    if mode == 'nearest':
        rows = (torch.arange(size, device=labels.device) * height // size).clamp(max=height - 1)
        cols = (torch.arange(size, device=labels.device) * width // size).clamp(max=width - 1)
        picked = labels[:, rows][:, :, cols].reshape(batch, 1, -1)
        return out.scatter_(1, picked, 1.0).view(batch, num_segments, size, size)
    if mode != 'bilinear':
        raise ValueError(f"resize mode must be 'bilinear' or 'nearest', got {mode!r}")
    y0, y1, wy = _source_index(height, size, labels.device)
    x0, x1, wx = _source_index(width, size, labels.device)
    for rows, row_weight in ((y0, 1 - wy), (y1, wy)):
        for cols, col_weight in ((x0, 1 - wx), (x1, wx)):
            picked = labels[:, rows][:, :, cols].reshape(batch, 1, -1)
            weight = (row_weight[:, None] * col_weight[None, :]).reshape(1, 1, -1).expand(batch, 1, -1)
            out.scatter_add_(1, picked, weight)
    return out.view(batch, num_segments, size, size)


def superpixel_descriptors(features: torch.Tensor, onehot: torch.Tensor) -> torch.Tensor:
    """Average-pool a feature map inside soft superpixel maps.

    The one-hot maps are resized to the feature grid with bilinear
    interpolation (align_corners=False) and kept soft, as in the reference.

    Args:
        features: (B, D, h, w), e.g. the target encoder's layer3 (c4).
        onehot: (B, C, H, W) superpixel maps from :func:`superpixel_onehot`,
            or maps already at (h, w) from :func:`resize_onehot`.

    Returns:
        (B, C, D) L2-normalised descriptors; empty slots are zero vectors.
    """
    maps = onehot.to(features.dtype)
    if maps.shape[-2:] != features.shape[-2:]:
        maps = F.interpolate(maps, size=features.shape[-2:], mode='bilinear', align_corners=False)
    area = maps.flatten(2).sum(-1, keepdim=True).clamp(min=1.0)
    pooled = torch.einsum('bchw,bdhw->bcd', maps, features) / area
    return F.normalize(pooled, dim=-1)


# Points closer than this (squared distance relative to the largest squared
# norm) count as the same point in the seeding: descriptors that are equal up
# to float rounding (which differs between CPUs) must not become distinct
# centres.
DUPLICATE_TOLERANCE = 1e-10

KMEANS_EMPTY_CLUSTERS = ('collapse', 'keep')


class KMeansResult(NamedTuple):
    """labels (P,) int64 in [0, k); centres (k, D); hit_empty: a cluster lost
    all its points during the Lloyd iterations (Quirk Q8's trigger);
    iterations: Lloyd iterations run."""
    labels: torch.Tensor
    centres: torch.Tensor
    hit_empty: bool
    iterations: int = 0


def _kmeans_plus_plus(points: torch.Tensor, k: int,
                      generator: torch.Generator | None) -> tuple[torch.Tensor, torch.Tensor]:
    """Greedy k-means++ seeding. points (P, D) -> centres (k, D), active (k,).

    Each new centre is the best of ``2 + ln(k)`` candidates drawn with
    probability proportional to the squared distance to the nearest chosen
    centre (the variant of Arthur and Vassilvitskii that scikit-learn uses).
    Distances are computed in float64 (in float32, ||x||^2 + ||c||^2 - 2xc
    has a cancellation error of about 1e-7 of the norms), and points within
    :data:`DUPLICATE_TOLERANCE` of a centre weigh 0. When no point is left at
    a positive distance (k > distinct points), the draw is uniform and the new
    centre, a duplicate, is marked inactive (``active`` False): no point is
    ever assigned to it. Uniform numbers come from ``generator`` (any device)
    and are moved to the points' device; nothing synchronises with the host
    (tests/utils/test_device_audit.py counts).
    """
    num_points = points.shape[0]
    trials = 2 + int(math.log(k)) if k > 1 else 1
    uniforms = torch.rand(1 + (k - 1) * trials, generator=generator,
                          device=generator.device if generator else 'cpu').to(points.device)
    # Squared distances ||x||^2 + ||c||^2 - 2 x.c in float64: a matrix product
    # (fast) whose cancellation error (about 1e-16 of the norms) stays far
    # below the duplicate tolerance.
    exact = points.double()
    norms = exact.pow(2).sum(-1)
    tolerance = DUPLICATE_TOLERANCE * norms.max()
    # Indices stay 1-element tensors (index_select, not x[i]): indexing with
    # a 0-d tensor reads it on the host, a synchronisation per centre.
    first = (uniforms[:1] * num_points).long().clamp(max=num_points - 1)
    centres = [points.index_select(0, first)]
    active = [torch.ones(1, dtype=torch.bool, device=points.device)]
    min_dist = (exact - exact.index_select(0, first)).pow(2).sum(-1)
    min_dist = torch.where(min_dist > tolerance, min_dist, torch.zeros_like(min_dist))
    for i in range(1, k):
        weights = torch.where(min_dist.sum() > 0, min_dist, torch.ones_like(min_dist))
        cumulative = weights.cumsum(0)
        draws = uniforms[1 + (i - 1) * trials:1 + i * trials].double() * cumulative[-1]
        candidates = torch.searchsorted(cumulative, draws).clamp(max=num_points - 1)
        # Squared distances of every point to each candidate: (trials, P).
        to_candidates = (norms[candidates, None] + norms[None] - 2 * exact[candidates] @ exact.T).clamp(min=0)
        to_candidates = torch.where(to_candidates > tolerance, to_candidates, torch.zeros_like(to_candidates))
        candidate_dist = torch.minimum(min_dist, to_candidates)
        best = candidate_dist.sum(1).argmin().view(1)
        chosen = candidates.index_select(0, best)
        centres.append(points.index_select(0, chosen))
        active.append(min_dist.index_select(0, chosen) > 0)
        min_dist = candidate_dist.index_select(0, best)[0]
    return torch.cat(centres), torch.cat(active)


def lloyd(points: torch.Tensor, centres: torch.Tensor, active: torch.Tensor | None = None,
          max_iters: int = 200, tol: float = 1e-6, empty_clusters: str = 'keep') -> KMeansResult:
    """Lloyd iterations from given centres, Euclidean distance.

    What happens when a cluster loses all its points (Quirk Q8) depends on
    ``empty_clusters``:

    ``'collapse'`` (the released code): the empty cluster's centre is the mean
        of nothing (NaN), every distance to it is NaN, argmin picks it for
        every point, and all points end in one cluster (here: the first empty
        one; which label is immaterial, the masks are the same). The released
        loop then runs to ``max_iters`` on NaN inertia; this one stops at
        once with the same labels. Otherwise iteration stops when the inertia
        (sum of squared distances to the assigned centres) changes by less
        than ``tol``.
    ``'keep'`` (this project's robust setting): the cluster keeps its previous
        centre; iteration stops when no centre moved by more than ``tol``.

    Args:
        points: (P, D) float points.
        centres: (k, D) initial centres.
        active: (k,) bool; inactive centres (duplicates from the seeding)
            are never nearest to any point. Default: all active.

    Returns:
        :class:`KMeansResult`.
    """
    if empty_clusters not in KMEANS_EMPTY_CLUSTERS:
        raise ValueError(f'empty_clusters must be one of {KMEANS_EMPTY_CLUSTERS}, got {empty_clusters!r}')
    k = centres.shape[0]
    unreachable = torch.zeros(k, device=points.device) if active is None else \
        torch.where(active, 0.0, math.inf)
    hit_empty, previous_inertia, iterations = False, None, 0
    for iterations in range(1, max_iters + 1):
        nearest, labels = (torch.cdist(points, centres) + unreachable).min(dim=1)
        # Not bincount: on a GPU it reads the largest label on the host.
        counts = torch.zeros(k, dtype=torch.long, device=points.device).index_add_(
            0, labels, torch.ones_like(labels))
        sums = torch.zeros_like(centres).index_add_(0, labels, points)
        new_centres = torch.where(counts[:, None] > 0, sums / counts.clamp(min=1)[:, None], centres)
        if empty_clusters == 'keep':
            change = (new_centres - centres).norm(dim=1).max()
        else:
            inertia = nearest.pow(2).sum()
            change = inertia - previous_inertia if previous_inertia is not None else inertia.new_tensor(math.inf)
            previous_inertia = inertia
        # One host synchronisation per iteration.
        any_empty, converged = torch.stack([(counts == 0).any(), change.abs() <= tol]).tolist()
        hit_empty = hit_empty or any_empty
        if empty_clusters == 'collapse' and any_empty:
            first_empty = (counts == 0).int().argmax()
            return KMeansResult(first_empty.expand(points.shape[0]).clone(), centres, True, iterations)
        centres = new_centres
        if converged:
            break
    labels = (torch.cdist(points, centres) + unreachable).argmin(dim=1)
    return KMeansResult(labels, centres, hit_empty, iterations)


def kmeans(points: torch.Tensor, k: int, max_iters: int = 200, tol: float = 1e-6,
           generator: torch.Generator | None = None, empty_clusters: str = 'keep') -> KMeansResult:
    """K-means: greedy k-means++ seeding (:func:`_kmeans_plus_plus`), then
    :func:`lloyd` (see there for ``empty_clusters``, Quirk Q8). Runs wherever
    ``points`` lives (GPU in training).

    Args:
        points: (P, D) float points (P = B * C in R2O).
        k: number of clusters; may exceed the number of distinct points
            (duplicate centres are inactive).
        generator: source of randomness for the seeding (determinism).

    Returns:
        :class:`KMeansResult` (labels (P,) in [0, k), centres (k, D), hit_empty).
    """
    if empty_clusters not in KMEANS_EMPTY_CLUSTERS:
        raise ValueError(f'empty_clusters must be one of {KMEANS_EMPTY_CLUSTERS}, got {empty_clusters!r}')
    points = points.float()
    centres, active = _kmeans_plus_plus(points, k, generator)
    return lloyd(points, centres, active, max_iters, tol, empty_clusters)


def paint_cluster_labels(onehot: torch.Tensor, labels: torch.Tensor, size: int,
                         mode: str = 'bilinear_truncate') -> torch.Tensor:
    """Paint each superpixel's cluster label onto an M x M grid.

    ``'bilinear_truncate'`` (Quirk Q4, the released code): resize the one-hot
    maps bilinearly (soft), weight them by their labels, sum over superpixels
    and truncate to an integer, so border pixels can get an unrelated label.
    ``'nearest'`` (fixed): resize with nearest neighbour, labels are exact.

    Args:
        onehot: (B, C, H, W) superpixel maps, or maps already resized to
            M x M with the mode's interpolation (:func:`resize_onehot`).
        labels: (B, C) integer cluster label of each superpixel.
        size: M.
        mode: ``'bilinear_truncate'`` or ``'nearest'``.

    Returns:
        (B, M, M) int64 label map.
    """
    if mode not in ('bilinear_truncate', 'nearest'):
        raise ValueError(f"paint mode must be 'bilinear_truncate' or 'nearest', got {mode!r}")
    maps = onehot
    if maps.shape[-2:] != (size, size):
        maps = F.interpolate(onehot, size=(size, size), mode='nearest') if mode == 'nearest' else \
            F.interpolate(onehot, size=(size, size), mode='bilinear', align_corners=False)
    painted = torch.einsum('bchw,bc->bhw', maps, labels.to(maps.dtype))
    if mode == 'nearest':
        return painted.round().long()
    return painted.long()  # truncation toward zero, as in the reference


def view_masks(masks: torch.Tensor, boxes: torch.Tensor, flips: torch.Tensor,
               out_size: int) -> torch.Tensor:
    """Cut a view's crop out of whole-image masks with RoIAlign, then flip.

    Args:
        masks: (B, K, M, M) masks over the whole (raw) image.
        boxes: (B, 4) crop boxes ``(y1, x1, y2, x2)`` normalised by the
            original image size.
        flips: (B,) bool, the view was flipped horizontally.
        out_size: side of the last feature grid (7 at input 224).

    Returns:
        (B, K, out_size * out_size) soft masks on the view's feature grid.
    """
    batch, _, height, width = masks.shape
    y1, x1, y2, x2 = boxes.to(masks.dtype).unbind(dim=1)
    rois = torch.stack([torch.arange(batch, device=masks.device, dtype=masks.dtype),
                        x1 * width, y1 * height, x2 * width, y2 * height], dim=1)
    cut = roi_align(masks, rois, output_size=out_size, spatial_scale=1.0, sampling_ratio=0,
                    aligned=False)
    cut = torch.where(flips.view(batch, 1, 1, 1).bool(), cut.flip(-1), cut)
    return cut.flatten(2)


def pool_masked(features: torch.Tensor, masks: torch.Tensor, divisor: str = 'clamp_one') -> torch.Tensor:
    """Pool a feature map inside each soft mask.

    ``'clamp_one'`` (Quirk Q6, the released code) divides by max(area, 1), so a
    mask with area below 1 is summed rather than averaged; ``'area'`` (fixed)
    is a true weighted average (empty masks give zeros).

    Args:
        features: (N, D, h, w).
        masks: (N, K, h * w).

    Returns:
        (N, K, D) pooled region features.
    """
    area = masks.sum(-1, keepdim=True)
    if divisor == 'clamp_one':
        weights = masks / area.clamp(min=1.0)
    elif divisor == 'area':
        weights = masks / area.clamp(min=1e-6)
    else:
        raise ValueError(f"pooling divisor must be 'clamp_one' or 'area', got {divisor!r}")
    return torch.bmm(weights, features.flatten(2).transpose(1, 2))


def region_loss(online: torch.Tensor, target: torch.Tensor, present: torch.Tensor) -> torch.Tensor:
    """BYOL's normalised MSE per region, over masks present in both views.

    Args:
        online: (N, K, d) predictions q.
        target: (N, K, d) target projections z (no gradient needed).
        present: (N, K) bool or float weights: 1 where the mask has area above
            :data:`MIN_MASK_AREA` in both views.

    Returns:
        Scalar ``sum(w * ||q/|q| - z/|z|||^2) / sum(w)``; a finite zero that
        still back-propagates when no mask is present.
    """
    per_mask = (F.normalize(online, dim=-1) - F.normalize(target, dim=-1)).pow(2).sum(-1)
    weights = present.to(per_mask.dtype)
    return (weights * per_mask).sum() / weights.sum().clamp(min=1.0)
