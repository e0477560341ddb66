"""Schedules of R2O pretraining as pure functions (SPEC section 4).

The hooks in :mod:`r2o_mm.engine.hooks` only call these and write the value
where the model or optimiser reads it.
"""
from __future__ import annotations

import math
from typing import Sequence

import numpy as np

# K above this is "no K-means: use the superpixels" (the reference's 9999).
MAX_CLUSTERS = 128


def cluster_schedule(epoch: int, kind: str = 'cosine', start: int = 128, end: int = 4,
                     total_epochs: int = 300, points: Sequence[Sequence[float]] = ()) -> int:
    """Number of clusters K at ``epoch`` (counted from 1).

    Kinds:
        ``'constant'``: ``start`` throughout (may be above 128: superpixels).
        ``'cosine'``: ``int(end + (start - end) * cos(pi/2 * e / T))``,
            clamped to [1, 128]; decays when end < start, rises otherwise.
            Released schedule: K(1)=127, K(150)=91, K(300)=4.
        ``'piecewise'``: ``points`` = [(epoch_i, value_i), ...]; value_i from
            epoch_i on (values above 128 allowed).
        ``'linear'``: linear through ``points``, held constant outside them,
            truncated to an integer and clamped to [1, 128].
    """
    if kind not in ('constant', 'cosine', 'piecewise', 'linear'):
        raise ValueError(f"K schedule kind must be constant, cosine, piecewise or linear, got {kind!r}")
    if kind == 'constant':
        return int(start)
    if kind == 'cosine':
        value = end + (start - end) * math.cos(math.pi / 2 * epoch / total_epochs)
        # + 1e-9: cos(pi/2) is 6e-17, not 0, which would truncate a rising
        # schedule's last value to end - 1.
        return min(max(int(value + 1e-9), 1), MAX_CLUSTERS)
    points = sorted((float(e), float(v)) for e, v in points)
    if not points:
        raise ValueError(f"the '{kind}' K schedule needs points=[(epoch, value), ...]")
    if kind == 'piecewise':
        value = points[0][1]
        for start_epoch, point_value in points:
            if epoch >= start_epoch:
                value = point_value
        return int(value)
    # linear: interpolation through the points, constant outside them
    value = float(np.interp(epoch, [e for e, _ in points], [v for _, v in points]))
    return min(max(int(value), 1), MAX_CLUSTERS)


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
