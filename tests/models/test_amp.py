"""R2O's step under bfloat16 autocast on the CPU (what --amp runs on every
device): the region arithmetic is computed in float32, the loss stays close
to the float32 loss, and K-means gives the same labels for the same
descriptors."""
import copy

import pytest
import torch

import r2o_mm.models.r2o as r2o_module
from r2o_mm.engine.amp import BF16AutocastOptimWrapper
from r2o_mm.engine.lars import LARS
from r2o_mm.models.regions import kmeans

from test_r2o import make_batch, tiny_model

# |bf16 - fp32| / fp32 of this loss with the same masks: 0.8e-3 to 6.4e-3 over 4 input
# seeds (1 and 2 threads alike) on an Intel Xeon (AVX-512); bf16 keeps 8 bits of
# mantissa through two ResNet-18s. About three times the largest, for other CPUs.
LOSS_REL_TOLERANCE = 2e-2


def spy(monkeypatch, name, seen):
    """Records, for r2o.py's ``name``, the dtypes of its tensor arguments and
    whether autocast was on while it ran."""
    original = getattr(r2o_module, name)

    def wrapper(*args, **kwargs):
        tensors = [a for a in args if isinstance(a, torch.Tensor) and a.is_floating_point()]
        seen.setdefault(name, []).append(({t.dtype for t in tensors}, torch.is_autocast_enabled('cpu')))
        result = original(*args, **kwargs)
        if isinstance(result, torch.Tensor) and result.is_floating_point():
            seen[name][-1][0].add(result.dtype)
        return result

    monkeypatch.setattr(r2o_module, name, wrapper)


def test_the_region_arithmetic_is_float32_under_bf16_autocast(monkeypatch):
    seen = {}
    for name in ('superpixel_descriptors', 'kmeans', 'paint_cluster_labels', 'view_masks', 'region_loss'):
        spy(monkeypatch, name, seen)
    model = tiny_model(num_clusters=4)
    inputs = make_batch(batch=4, size=64)
    with torch.autocast('cpu', dtype=torch.bfloat16):
        features = model.online_encoder(inputs['view1'])
        losses = model(inputs, mode='loss')
    assert features.dtype == torch.bfloat16  # the encoders do run in bf16
    for name in ('superpixel_descriptors', 'kmeans', 'paint_cluster_labels', 'view_masks', 'region_loss'):
        for dtypes, autocast_on in seen[name]:
            assert dtypes == {torch.float32} and not autocast_on, (name, dtypes, autocast_on)
    assert len(seen['view_masks']) == 2 and losses['loss'].dtype == torch.float32
    losses['loss'].backward()
    assert model.online_encoder.conv1.weight.grad.dtype == torch.float32


def test_the_bf16_loss_is_close_to_the_float32_loss_on_the_same_inputs():
    """Same inputs and the same masks (predicted once in float32: under bf16
    the target's c4 features differ slightly, and a near-tie in K-means may
    then flip a label, a discrete change no tolerance describes)."""
    model = tiny_model(num_clusters=4)
    inputs = make_batch(batch=4, size=64)
    masks = model.predict_masks(inputs['raw'], inputs['superpixels'])
    fixed = copy.deepcopy(model)
    fixed.predict_masks = lambda *args, **kwargs: masks
    fp32 = copy.deepcopy(fixed)(inputs, mode='loss')['loss'].item()
    with torch.autocast('cpu', dtype=torch.bfloat16):
        bf16 = copy.deepcopy(fixed)(inputs, mode='loss')['loss'].item()
    assert bf16 != fp32  # autocast did change the encoders' arithmetic
    assert abs(bf16 - fp32) / abs(fp32) < LOSS_REL_TOLERANCE, (bf16, fp32)


def test_kmeans_labels_are_identical_under_autocast_for_the_same_descriptors():
    points = torch.nn.functional.normalize(torch.randn(200, 64, generator=torch.Generator().manual_seed(0)), dim=1)
    plain = kmeans(points, 8, 50, 1e-6, torch.Generator().manual_seed(1))
    with torch.autocast('cpu', dtype=torch.bfloat16), r2o_module.R2O.full_precision('cpu'):
        under = kmeans(points, 8, 50, 1e-6, torch.Generator().manual_seed(1))
    assert torch.equal(plain.labels, under.labels)
    # Without the float32 region, bf16 distances are another computation (the matmul runs in bf16).
    with torch.autocast('cpu', dtype=torch.bfloat16):
        assert (points @ points.T).dtype == torch.bfloat16


def test_the_amp_wrapper_runs_the_forward_under_bf16_autocast():
    model = tiny_model(num_clusters=4)
    wrapper = BF16AutocastOptimWrapper(optimizer=LARS(model.parameters(), lr=0.1))
    with wrapper.optim_context(model):
        assert torch.is_autocast_enabled('cpu') and torch.get_autocast_dtype('cpu') == torch.bfloat16
    assert not torch.is_autocast_enabled('cpu')
    inputs = make_batch(batch=2, size=64)
    with wrapper.optim_context(model):
        loss = model(inputs, mode='loss')['loss']
    wrapper.update_params(loss)
    assert all(p.dtype == torch.float32 for p in model.parameters())


@pytest.mark.parametrize('compact', [True, False])
def test_both_mlp_paths_run_under_autocast(compact):
    model = tiny_model(num_clusters=4, compact_absent_rows=compact)
    with torch.autocast('cpu', dtype=torch.bfloat16):
        loss = model(make_batch(batch=2, size=64), mode='loss')['loss']
    assert torch.isfinite(loss)
