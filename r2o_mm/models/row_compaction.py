"""Run the region MLPs once per distinct row: absent masks give identical rows.

A mask absent from a view pools to an exactly zero row, and every zero row
gives the same projector output; with K=128 about two thirds of the 2B x K
rows are such copies. Here the MLPs run on the distinct rows plus one
representative with a *multiplicity*, and BatchNorm weighs each row by its
multiplicity, so statistics, outputs, gradients and running statistics equal
those of the full rows (Quirk Q5 keeps the copies in the statistics). Under
SyncBatchNorm the weighted sums are combined across processes with
torch.distributed's autograd-aware all-reduce, as SyncBatchNorm itself does.
"""
from __future__ import annotations

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn


def _all_reduce(tensor: torch.Tensor, group) -> torch.Tensor:
    from torch.distributed.nn.functional import all_reduce
    return all_reduce(tensor, group=group)


def _synchronised(bn: nn.Module) -> bool:
    return (isinstance(bn, nn.SyncBatchNorm) and dist.is_available() and dist.is_initialized()
            and dist.get_world_size(bn.process_group) > 1)


def weighted_batch_norm(rows: torch.Tensor, weights: torch.Tensor, bn: nn.modules.batchnorm._BatchNorm
                        ) -> torch.Tensor:
    """BatchNorm of ``rows`` (R, C) as if row i appeared ``weights[i]`` times.

    In training: mean and (biased) variance weighted by multiplicity, summed
    over processes when ``bn`` is a SyncBatchNorm in a process group; the
    running statistics move as ``bn`` would move them on the expanded rows
    (unbiased variance over the total count). In eval mode: the running
    statistics, as ``bn`` does.
    """
    if not bn.training:
        return F.batch_norm(rows, bn.running_mean, bn.running_var, bn.weight, bn.bias, False, 0.0, bn.eps)
    weights = weights.to(rows.dtype)[:, None]
    sync = _synchronised(bn)
    count = weights.sum()
    total = (weights * rows).sum(0)
    if sync:
        count, total = _all_reduce(count, bn.process_group), _all_reduce(total, bn.process_group)
    mean = total / count
    squares = (weights * (rows - mean).pow(2)).sum(0)
    if sync:
        squares = _all_reduce(squares, bn.process_group)
    var = squares / count
    if bn.track_running_stats:
        with torch.no_grad():
            bn.num_batches_tracked.add_(1)
            momentum = bn.momentum if bn.momentum is not None else 1.0 / float(bn.num_batches_tracked)
            unbiased = var * count / (count - 1).clamp(min=1)
            bn.running_mean.mul_(1 - momentum).add_(momentum * mean.detach())
            bn.running_var.mul_(1 - momentum).add_(momentum * unbiased.detach())
    normalised = (rows - mean) * torch.rsqrt(var + bn.eps)
    return normalised * bn.weight + bn.bias if bn.affine else normalised


def compact_rows(rows: torch.Tensor, shared: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Distinct rows and how to expand them back.

    Args:
        rows: (M, D).
        shared: (M,) bool, rows known to be identical to each other (the
            zero rows of absent masks).

    Returns:
        compact (P + 1, D): the other rows, then one representative of the
        shared ones (a copy of the first; zeros if there is none);
        weights (P + 1,): 1 for each, the number of shared rows for the last;
        index (M,): ``compact[index]`` gives the rows back.
    """
    keep = ~shared
    total = shared.shape[0]
    # The compact size is the one host synchronisation (a GPU must know a
    # tensor's size); the rest avoids boolean-mask indexing, which would
    # synchronise again in the forward and in the backward pass.
    kept = int(keep.sum())
    # Kept rows first in their order, then the shared ones (a stable sort).
    order = torch.argsort(shared.to(torch.uint8), stable=True)
    # The first shared row, or an appended zero row when none is shared.
    padded = torch.cat([rows, rows.new_zeros(1, rows.shape[1])])
    last = order[kept:kept + 1] if kept < total else order.new_full((1,), total)
    compact = padded.index_select(0, torch.cat([order[:kept], last]))
    weights = torch.cat([rows.new_ones(kept), rows.new_full((1,), float(total - kept))])
    index = torch.where(keep, keep.long().cumsum(0) - 1, kept)
    return compact, weights, index
