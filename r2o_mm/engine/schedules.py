"""Schedules of R2O pretraining as pure functions (docs/method.md section 4).

The hooks in :mod:`r2o_mm.engine.hooks` only call these and write the value
where the model or optimiser reads it.
"""
from __future__ import annotations

import bisect
import math
from typing import Sequence

import numpy as np

from ..models.regions import MAX_CLUSTERS, SUPERPIXELS_ONLY


def _released_k(value: float) -> int:
    """Truncate as the released scheduler does: above 128 means "SLIC
    superpixels only" (9999), below 1 means 1."""
    value = int(value)
    if value > MAX_CLUSTERS:
        return SUPERPIXELS_ONLY
    return max(value, 1)


def released_cosine(epoch: float, start: float, end: float, start_epoch: float,
                    end_epoch: float) -> float:
    """The released cosine scheduler's value, before truncation, with its
    floating-point operations in its order (numpy float64):

        x = (epoch - start_epoch) / (end_epoch - start_epoch) * (pi / 2)
        x = pi / 2 - x                       (rising: end > start)
        value = cos(x) * (max - min) + min

    ``start`` at or before ``start_epoch``, ``end`` at or after ``end_epoch``.
    Mathematically ``pi/2 * e / T`` is the same, but it rounds differently:
    at epoch 200 of 128 -> 4 over 300 it gives 65.99999999999999 (K=65)
    where the released order gives 66.000...01 (K=66).
    """
    if epoch <= start_epoch:
        return start
    if epoch >= end_epoch:
        return end
    x = np.float64(epoch - start_epoch) / np.float64(end_epoch - start_epoch) * np.float64(np.pi / 2)
    if end > start:
        x = np.float64(np.pi / 2) - x
    high, low = np.float64(max(start, end)), np.float64(min(start, end))
    return float(np.cos(x) * (high - low) + low)


def cluster_schedule(epoch: int, kind: str = 'cosine', start: float = 128, end: float = 4,
                     total_epochs: int = 300, points: Sequence[Sequence[float]] = ()) -> int:
    """Number of clusters K at ``epoch`` (counted from 1), as the released
    scheduler computes it (docs/method.md section 4 and Quirk Q9).

    Every kind's value is truncated to an integer; a value above 128 means
    "SLIC superpixels only" (returned as 9999), a value below 1 means 1.

    Kinds (T = ``total_epochs``):
        ``'constant'``: ``start`` throughout.
        ``'cosine'``: :func:`released_cosine` from epoch 0 to T. Decaying
            (end < start): ``cos(e / T * pi/2) * (start - end) + end``;
            released schedule 128 -> 4: K(1)=127, K(150)=91, K(200)=66,
            K(300)=4. Rising (end > start): ``cos(pi/2 - e / T * pi/2) *
            (end - start) + start``, fast at first and slow at the end (not
            the mirror image of the decaying one).
        ``'piecewise'``: ``points`` = [(epoch_i, value_i), ...]; value_i from
            epoch_i on (the first value before the first point).
        ``'linear'``: linear through ``points``; before the first and after
            the last point the nearest segment is extended (extrapolation, as
            released), not held.
    """
    if kind not in ('constant', 'cosine', 'piecewise', 'linear'):
        raise ValueError(f"K schedule kind must be constant, cosine, piecewise or linear, got {kind!r}")
    if kind == 'constant':
        return _released_k(start)
    if kind == 'cosine':
        return _released_k(released_cosine(epoch, start, end, 0, total_epochs))
    points = sorted((float(e), float(v)) for e, v in points)
    if not points:
        raise ValueError(f"the '{kind}' K schedule needs points=[(epoch, value), ...]")
    if kind == 'piecewise':
        value = points[0][1]
        for start_epoch, point_value in points:
            if epoch >= start_epoch:
                value = point_value
        return _released_k(value)
    if len(points) == 1:
        return _released_k(points[0][1])
    epochs = [e for e, _ in points]
    if len(set(epochs)) != len(epochs):
        raise ValueError(f"the 'linear' K schedule needs distinct epochs, got {points}")
    segment = min(max(bisect.bisect_right(epochs, epoch) - 1, 0), len(points) - 2)
    (e0, v0), (e1, v1) = points[segment], points[segment + 1]
    return _released_k(v0 + (v1 - v0) * (epoch - e0) / (e1 - e0))


def target_momentum(step: int, total_steps: int, base_tau: float = 0.99) -> float:
    """tau(step) = 1 - (1 - base) * (cos(pi * step / total) + 1) / 2, from base to 1.

    tau is the share of the *old target* weights.
    """
    return 1.0 - (1.0 - base_tau) * (math.cos(math.pi * step / total_steps) + 1.0) / 2.0


def learning_rate(step: int, total_steps: int, warmup_steps: int, base_lr: float,
                  num_clusters: int | None = None) -> float:
    """Linear warm-up from 0, cosine decay to 0; times K/16 when K is given.

    The K/16 factor is the released "lr fix" (Quirk Q3): x8 at K=128, x0.25 at
    K=4. With superpixels only (K > 128) it is not applied.
    """
    if step < warmup_steps:
        lr = base_lr * step / warmup_steps
    else:
        progress = (step - warmup_steps) / max(total_steps - warmup_steps, 1)
        lr = base_lr * 0.5 * (1.0 + math.cos(math.pi * min(progress, 1.0)))
    if num_clusters is not None and num_clusters <= MAX_CLUSTERS:
        lr *= num_clusters / 16
    return lr
