"""The R2O model: shapes, gradients, target update, a few optimiser steps."""
import pytest
import torch

from r2o_mm.models.data_preprocessor import R2ODataPreprocessor
from r2o_mm.models.r2o import R2O, SUPERPIXELS_ONLY


def tiny_model(**kwargs):
    torch.manual_seed(0)
    options = dict(depth=18, projector_hidden=64, projection_dim=32, predictor_hidden=64,
                   num_clusters=4)
    options.update(kwargs)
    model = R2O(**options)
    model.init_weights()
    return model


def block_superpixels(batch, size, blocks=4):
    """(B, size, size) labels: a blocks x blocks grid of square superpixels."""
    index = torch.arange(size) * blocks // size
    return (index[:, None] * blocks + index[None, :]).expand(batch, size, size).clone()


def make_batch(batch=4, size=64, seed=0):
    gen = torch.Generator().manual_seed(seed)
    images = lambda: torch.randint(0, 256, (3, size, size), generator=gen, dtype=torch.uint8)
    data = {'inputs': {
        'view1': [images() for _ in range(batch)],
        'view2': [images() for _ in range(batch)],
        'raw': [images() for _ in range(batch)],
        'superpixels': list(block_superpixels(batch, size)),
        'boxes': [torch.tensor([[0.0, 0.0, 0.75, 0.75], [0.25, 0.25, 1.0, 1.0]]) for _ in range(batch)],
        'flips': [torch.tensor([True, False]) for _ in range(batch)],
    }}
    return R2ODataPreprocessor()(data, training=True)['inputs']


def test_preprocessor_stacks_and_normalises():
    inputs = make_batch(batch=2, size=32)
    assert inputs['view1'].shape == (2, 3, 32, 32) and inputs['view1'].dtype == torch.float32
    assert inputs['superpixels'].dtype == torch.int64 and inputs['superpixels'].shape == (2, 32, 32)
    assert inputs['boxes'].shape == (2, 2, 4) and inputs['flips'].dtype == torch.bool
    raw = torch.zeros(1, 3, 2, 2, dtype=torch.uint8)
    out = R2ODataPreprocessor()({'inputs': {'raw': [raw[0]]}})['inputs']['raw']
    assert torch.allclose(out[0, :, 0, 0], torch.tensor([-123.675 / 58.395, -116.28 / 57.12,
                                                         -103.53 / 57.375]))


def test_target_starts_as_exact_copy_and_gets_no_gradient():
    model = tiny_model()
    for online, target in zip(model.online_encoder.state_dict().values(),
                              model.target_encoder.state_dict().values()):
        assert torch.equal(online, target)
    losses = model(make_batch(), mode='loss')
    losses['loss'].backward()
    assert all(p.grad is None for p in model.target_encoder.parameters())
    assert all(p.grad is None for p in model.target_projector.parameters())
    assert model.online_encoder.conv1.weight.grad.abs().sum() > 0
    assert model.predictor.net[0].weight.grad.abs().sum() > 0
    assert losses['num_segments'] > 0 and losses['num_overlapping'] > 0


def test_update_target_is_an_ema_with_tau_the_share_of_the_old_weights():
    model = tiny_model()
    with torch.no_grad():
        for p in model.online_encoder.parameters():
            p.add_(torch.randn_like(p))
    old = [p.clone() for p in model.target_encoder.parameters()]
    online = [p.clone() for p in model.online_encoder.parameters()]
    model.update_target(tau=0.99)
    for new, before, source in zip(model.target_encoder.parameters(), old, online):
        assert torch.allclose(new, 0.99 * before + 0.01 * source, atol=1e-6)
    assert not torch.allclose(old[0], online[0])


@pytest.mark.parametrize('options', [
    dict(),
    dict(num_clusters=SUPERPIXELS_ONLY),
    dict(superpixel_source='grid'),
    dict(mask_source='whole_image'),
    dict(paint_mode='nearest', pool_divisor='area', bn_includes_absent_masks=False),
])
def test_loss_decreases_over_a_few_steps(options):
    model = tiny_model(**options)
    model.train()
    inputs = make_batch()
    optimizer = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.05,
                                momentum=0.9)
    losses = []
    for _ in range(6):
        loss = model(inputs, mode='loss')['loss']
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert all(torch.isfinite(torch.tensor(losses)))
    assert losses[-1] < losses[0]


def test_superpixels_only_uses_one_mask_per_superpixel():
    model = tiny_model(num_clusters=SUPERPIXELS_ONLY)
    inputs = make_batch(batch=2)
    masks, stats = model.predict_masks(inputs['raw'], inputs['superpixels'])
    assert masks.shape == (2, 16, 16, 16) and stats['num_segments'] == 16


def test_superpixels_only_masks_are_the_soft_bilinear_maps():
    """Q9: no painting, no truncation: the bilinear 1/4-size one-hot maps go to
    RoIAlign. A boundary at column 10 of 64 lands halfway between output
    columns: column 2 samples source 2 * 4 + 1.5 = 9.5, weights 0.5 / 0.5."""
    model = tiny_model(num_clusters=SUPERPIXELS_ONLY)
    inputs = make_batch(batch=1)
    superpixels = torch.zeros(1, 64, 64, dtype=torch.long)
    superpixels[..., 10:] = 1
    masks, stats = model.predict_masks(inputs['raw'], superpixels)
    assert masks.shape == (1, 2, 16, 16) and stats['num_segments'] == 2
    assert masks[0, 0, :, 2].tolist() == [0.5] * 16 and masks[0, 1, :, 2].tolist() == [0.5] * 16
    assert masks[0, 0, :, :2].eq(1).all() and masks[0, 0, :, 3:].eq(0).all()
    exact = tiny_model(num_clusters=SUPERPIXELS_ONLY, paint_mode='nearest')
    nearest, _ = exact.predict_masks(inputs['raw'], superpixels)
    assert set(nearest.unique().tolist()) == {0.0, 1.0} and nearest.sum(1).eq(1).all()


def test_kmeans_empty_cluster_switch_and_counter():
    with pytest.raises(ValueError, match='model.kmeans_empty_clusters'):
        tiny_model(kmeans_empty_clusters='nan')
    model = tiny_model(num_clusters=3)
    assert model.kmeans_empty_clusters == 'collapse'  # the released behaviour is the default
    inputs = make_batch(batch=2)
    _, stats = model.predict_masks(inputs['raw'], inputs['superpixels'])
    assert model.kmeans_calls == 1 and model.kmeans_empty_calls == int(stats['kmeans_empty'])


def test_whole_image_mask_is_global_average_pooling():
    """The BYOL baseline: one mask covering the view pools like avgpool."""
    model = tiny_model(mask_source='whole_image')
    features = torch.randn(2, 512, 2, 2)
    masks = torch.ones(2, 1, 4)
    from r2o_mm.models.regions import pool_masked
    assert torch.allclose(pool_masked(features, masks)[:, 0], features.mean((2, 3)), atol=1e-6)
    inputs = make_batch(batch=2)
    whole, _ = model.predict_masks(inputs['raw'], inputs['superpixels'])
    assert whole.shape == (2, 1, 16, 16) and whole.eq(1).all()


def test_kmeans_draws_round_trip_through_the_state_dict():
    """The K-means seeding is a function of (seed, rank, draws so far); the
    count travels in the state_dict, so a loaded model draws what the saved
    one would have drawn next."""
    model = tiny_model()
    for _ in range(3):
        model.next_kmeans_generator()
    state = model.state_dict()
    expected = torch.rand(3, generator=model.next_kmeans_generator())
    other = tiny_model()
    assert not torch.equal(torch.rand(3, generator=other.next_kmeans_generator()), expected)
    other.load_state_dict(state)
    assert other.kmeans_draws == 3
    assert torch.equal(torch.rand(3, generator=other.next_kmeans_generator()), expected)
    assert torch.equal(torch.rand(3, generator=model.next_kmeans_generator()),
                       torch.rand(3, generator=other.next_kmeans_generator()))


def test_paper_shapes_at_224_with_resnet50():
    model = R2O(depth=50, projector_hidden=128, predictor_hidden=128, num_clusters=8)
    model.eval()
    inputs = make_batch(batch=2, size=224)
    with torch.no_grad():
        c4 = model.target_encoder.forward_c4(inputs['raw'])
        masks, _ = model.predict_masks(inputs['raw'], inputs['superpixels'])
        c5 = model(inputs, mode='tensor')
    assert c4.shape == (2, 1024, 14, 14)
    assert masks.shape == (2, 8, 56, 56)
    assert c5.shape == (2, 2048, 7, 7)
    from r2o_mm.models.regions import view_masks
    assert view_masks(masks, inputs['boxes'][:, 0], inputs['flips'][:, 0], 7).shape == (2, 8, 49)


def test_bad_option_names_the_key():
    with pytest.raises(ValueError, match='model.paint_mode'):
        R2O(depth=18, paint_mode='bicubic')
