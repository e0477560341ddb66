"""Compaction of absent rows is exact: against running every row, the loss,
every gradient and the BatchNorm running statistics agree (relative 1e-5),
in one process and across two gloo processes with SyncBatchNorm."""
import os

import pytest
import torch
import torch.multiprocessing as mp
from torch import nn

from r2o_mm.models.data_preprocessor import R2ODataPreprocessor
from r2o_mm.models.networks import MLP
from r2o_mm.models.r2o import R2O
from r2o_mm.models.row_compaction import compact_rows, weighted_batch_norm


def assert_close(actual, expected, name='', scale=None):
    """Relative 1e-5 of the tensor's scale (float32 sums in another order)."""
    scale = expected.abs().max().clamp(min=1e-12) if scale is None else scale
    assert (actual - expected).abs().max() <= 1e-5 * scale, name


def layer_scale(grads: dict, name: str) -> torch.Tensor:
    """A bias that shifts every row before a BatchNorm (net.0 of each MLP, and
    the projector's last layer, read only by the predictor) has a gradient of
    exactly zero: what is left is rounding, so a bias is measured against its
    layer's gradient scale (bias and weight)."""
    scale = grads[name].abs().max()
    weight = name[:-len('bias')] + 'weight'
    if name.endswith('bias') and weight in grads:
        scale = torch.maximum(scale, grads[weight].abs().max())
    return scale


def rows_with_zero_copies(seed=0, rows=40, dims=6, zeros=25):
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(rows, dims, generator=gen)
    shared = torch.zeros(rows, dtype=torch.bool)
    shared[torch.randperm(rows, generator=gen)[:zeros]] = True
    x[shared] = 0
    return x, shared


def test_compact_rows_expand_back_exactly():
    x, shared = rows_with_zero_copies()
    compact, weights, index = compact_rows(x, shared)
    assert compact.shape == (16, 6) and weights.tolist() == [1.0] * 15 + [25.0]
    assert torch.equal(compact[index], x)
    none = compact_rows(x[~shared], torch.zeros(15, dtype=torch.bool))
    assert none[1][-1] == 0 and torch.equal(none[0][none[2]], x[~shared])


@pytest.mark.parametrize('momentum', [0.1, None])
def test_weighted_batch_norm_equals_batch_norm_on_the_expanded_rows(momentum):
    x, shared = rows_with_zero_copies()
    naive, weighted = nn.BatchNorm1d(6, momentum=momentum), nn.BatchNorm1d(6, momentum=momentum)
    with torch.no_grad():
        for bn in (naive, weighted):
            bn.weight.copy_(torch.linspace(0.5, 1.5, 6))
            bn.bias.copy_(torch.linspace(-1, 1, 6))
    full = x.clone().requires_grad_()
    coefficients = torch.randn(40, 6, generator=torch.Generator().manual_seed(1))
    (naive(full) * coefficients).sum().backward()
    compact, weights, index = compact_rows(x, shared)
    compact.requires_grad_()
    (weighted_batch_norm(compact, weights, weighted)[index] * coefficients).sum().backward()
    # The representative's gradient is the sum over the copies it stands for.
    assert_close(compact.grad[:-1], full.grad[~shared])
    assert_close(compact.grad[-1], full.grad[shared].sum(0))
    for name in ('weight', 'bias'):
        assert_close(getattr(weighted, name).grad, getattr(naive, name).grad, name)
    for name in ('running_mean', 'running_var'):
        assert_close(getattr(weighted, name), getattr(naive, name), name)
    weighted.eval(), naive.eval()
    assert_close(weighted_batch_norm(compact.detach(), weights, weighted)[index], naive(x))


def r2o_batch(size=64, batch=4, seed=0):
    gen = torch.Generator().manual_seed(seed)
    image = lambda: torch.randint(0, 256, (3, size, size), generator=gen, dtype=torch.uint8)
    index = torch.arange(size) * 8 // size  # 8 x 8 square superpixels
    superpixels = (index[:, None] * 8 + index[None, :]).expand(batch, size, size).clone()
    boxes = [torch.tensor([[0.0, 0.0, 0.6, 0.6], [0.3, 0.35, 1.0, 1.0]]), torch.tensor([[0.1, 0.0, 1.0, 0.5],
                                                                                       [0.0, 0.5, 0.7, 1.0]])]
    data = {'inputs': {'view1': [image() for _ in range(batch)], 'view2': [image() for _ in range(batch)],
                       'raw': [image() for _ in range(batch)], 'superpixels': list(superpixels),
                       'boxes': [boxes[i % 2] for i in range(batch)],
                       'flips': [torch.tensor([i % 2 == 0, True]) for i in range(batch)]}}
    return R2ODataPreprocessor()(data, training=True)['inputs']


def r2o_step(compact, k, q5, inputs):
    """One step in float64: the comparison then measures the compaction, not
    float32 rounding (a gradient that is mathematically zero, like that of a
    bias before BatchNorm, is otherwise rounding noise of either path)."""
    torch.manual_seed(0)
    model = R2O(depth=18, projector_hidden=64, projection_dim=32, predictor_hidden=64, num_clusters=k,
                kmeans_empty_clusters='keep', bn_includes_absent_masks=q5, compact_absent_rows=compact)
    model.init_weights()
    model.double().train()
    inputs = {key: value.double() if torch.is_tensor(value) and value.is_floating_point() else value
              for key, value in inputs.items()}
    out = model(inputs, mode='loss')
    out['loss'].backward()
    grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
    buffers = {n: b.clone() for n, b in model.named_buffers() if 'projector' in n or 'predictor' in n}
    return out, grads, buffers


@pytest.mark.parametrize('k', [4, 16, 48])
@pytest.mark.parametrize('q5', [True, False])
def test_r2o_step_with_and_without_compaction_agree(k, q5):
    inputs = r2o_batch()
    full, full_grads, full_buffers = r2o_step(False, k, q5, inputs)
    fast, fast_grads, fast_buffers = r2o_step(True, k, q5, inputs)
    # Rows absent from a view exist (otherwise nothing is compacted).
    assert full['num_overlapping'] < full['num_segments']
    assert_close(fast['loss'], full['loss'], 'loss')
    assert set(fast_grads) == set(full_grads) and len(full_grads) > 60
    for name in full_grads:
        assert_close(fast_grads[name], full_grads[name], name, layer_scale(full_grads, name))
    assert {n for n in full_buffers if 'running' in n} and set(fast_buffers) == set(full_buffers)
    for name in full_buffers:
        assert_close(fast_buffers[name].float(), full_buffers[name].float(), name)


def _two_process_worker(rank, store_path, inputs, result_path):
    torch.distributed.init_process_group('gloo', init_method=f'file://{store_path}', rank=rank, world_size=2)
    torch.manual_seed(0)
    mlp = nn.SyncBatchNorm.convert_sync_batchnorm(MLP(6, 16, 4)).double()  # float64: see r2o_step
    x, shared, coefficients = (t.double() if t.is_floating_point() else t for t in inputs[rank])
    compact, weights, index = compact_rows(x, shared)
    out = mlp(compact, weights)[index]
    (out * coefficients).sum().backward()
    grads = {n: p.grad.clone() for n, p in mlp.named_parameters()}
    for grad in grads.values():
        torch.distributed.all_reduce(grad)  # what DDP sums (before averaging)
    if rank == 0:
        torch.save({'out': out.detach(), 'grads': grads, 'running_mean': mlp.net[1].running_mean,
                    'running_var': mlp.net[1].running_var}, result_path)
    torch.distributed.destroy_process_group()


def test_two_gloo_processes_with_syncbn_match_one_process_on_all_rows(tmp_path):
    inputs = []
    for rank in range(2):
        x, shared = rows_with_zero_copies(seed=rank, rows=30 + 10 * rank, zeros=12 + 5 * rank)
        coefficients = torch.randn(x.shape[0], 4, generator=torch.Generator().manual_seed(10 + rank))
        inputs.append((x, shared, coefficients))
    result = tmp_path / 'rank0.pth'
    mp.spawn(_two_process_worker, args=(str(tmp_path / 'store'), inputs, str(result)), nprocs=2, join=True)
    got = torch.load(result, weights_only=True)
    torch.manual_seed(0)
    reference = MLP(6, 16, 4).double()  # one process, every row: what SyncBN computes over both
    everything = torch.cat([x for x, _, _ in inputs]).double()
    out = reference(everything)
    (out * torch.cat([c for _, _, c in inputs]).double()).sum().backward()
    assert_close(got['out'], out[:inputs[0][0].shape[0]].detach(), 'rank 0 outputs')
    grads = {name: param.grad for name, param in reference.named_parameters()}
    for name, grad in grads.items():
        assert_close(got['grads'][name], grad, name, layer_scale(grads, name))
    assert_close(got['running_mean'], reference.net[1].running_mean)
    assert_close(got['running_var'], reference.net[1].running_var)
