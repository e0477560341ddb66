"""Device audit on a CPU: no tensor created without a device, and the host
synchronisations of one training step, counted.

Every step below runs with torch's default device set to 'meta' while the
model and its inputs stay on the CPU: a tensor created without naming a
device would be a meta tensor, and mixing it with the real ones fails at that
line. On a GPU that same line would put a tensor on the wrong device.
"""
import types

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from mmengine.optim import OptimWrapper

from r2o_mm.engine.lars import LARS
from r2o_mm.evaluation.cub import cluster_image
from r2o_mm.evaluation.knn import knn_predict, topk_accuracy
from r2o_mm.evaluation.linear_probe import frozen_features, train_probe
from r2o_mm.evaluation.mask_prediction import score_masks
from r2o_mm.models.data_preprocessor import R2ODataPreprocessor
from r2o_mm.models.networks import ResNetEncoder
from r2o_mm.models.r2o import R2O, SUPERPIXELS_ONLY
from r2o_mm.models.regions import kmeans
from r2o_mm.transfer.hooks import PreciseBNHook, check_backbone_loaded
from r2o_mm.utils.device_audit import HostSyncCounter, default_device

KMEANS_ITERS = 20
SITES = {'lloyd': 'r2o_mm/models/regions.py', 'compact': 'in compact_rows', 'embed': 'in _embed'}


def tiny_r2o(**options):
    torch.manual_seed(0)
    model = R2O(**{**dict(depth=18, projector_hidden=32, projection_dim=16, predictor_hidden=32,
                          num_clusters=4, kmeans_iters=KMEANS_ITERS), **options})
    model.init_weights()
    return model.train()


def raw_batch(batch=2, size=64):
    """A collated batch as the pipeline gives it: per-image uint8 views,
    16 square superpixels, crop boxes and flips."""
    gen = torch.Generator().manual_seed(0)
    image = lambda: torch.randint(0, 256, (3, size, size), generator=gen, dtype=torch.uint8)
    index = torch.arange(size) * 4 // size
    blocks = index[:, None] * 4 + index[None, :]
    return {'inputs': {
        'view1': [image() for _ in range(batch)], 'view2': [image() for _ in range(batch)],
        'raw': [image() for _ in range(batch)], 'superpixels': [blocks.clone() for _ in range(batch)],
        'boxes': [torch.tensor([[0.0, 0.0, 0.75, 0.75], [0.25, 0.2, 1.0, 0.9]]) for _ in range(batch)],
        'flips': [torch.tensor([True, False]) for _ in range(batch)]}}


RELEASED = dict()
FIXED = dict(paint_mode='nearest', pool_divisor='area', bn_includes_absent_masks=False,
             kmeans_empty_clusters='keep')
# (options, K-means calls, syncs outside K-means): the rows that compaction
# keeps (one per MLP stack run on compacted rows) and, with the Q5 fix, the
# rows the projector sees (online and target).
STEPS = {
    'R2O K=4, compaction': (dict(num_clusters=4), 1, {'compact': 2}),
    'R2O K=128, compaction': (dict(num_clusters=128), 1, {'compact': 2}),
    'R2O K=4, no compaction': (dict(num_clusters=4, compact_absent_rows=False), 1, {}),
    'R2O K=128, no compaction': (dict(num_clusters=128, compact_absent_rows=False), 1, {}),
    'R2O superpixels only': (dict(num_clusters=SUPERPIXELS_ONLY), 0, {'compact': 2}),
    'R2O K=4, quirks fixed': ({**FIXED, 'num_clusters': 4}, 1, {'compact': 1, 'embed': 2}),
    'R2O K=128, quirks fixed, no compaction': ({**FIXED, 'num_clusters': 128, 'compact_absent_rows': False},
                                               1, {'embed': 2}),
    'BYOL': (dict(mask_source='whole_image'), 0, {'compact': 2}),
    'BYOL, no compaction': (dict(mask_source='whole_image', compact_absent_rows=False), 0, {}),
}


def audited_step(options):
    """One training step (preprocessing, forward, backward, LARS, EMA) under
    the 'meta' default device; returns the loss and the counter of the
    step's synchronisations (preprocessing, which runs on the host, left out)."""
    model = tiny_r2o(**options)
    wrapper = OptimWrapper(LARS([p for p in model.parameters() if p.requires_grad], lr=0.1))
    batch = raw_batch()
    with default_device('meta'):
        inputs = model.data_preprocessor(batch, training=True)['inputs']
        with HostSyncCounter() as counter:
            losses = model(inputs, mode='loss')
            loss, _ = model.parse_losses(losses)
            wrapper.update_params(loss)
            model.update_target(0.99)
    return loss.detach(), counter


@pytest.mark.parametrize('name', list(STEPS))
def test_training_step_creates_no_stray_tensor_and_syncs_only_where_needed(name):
    options, kmeans_calls, expected = STEPS[name]
    loss, counter = audited_step(options)
    assert loss.device.type == 'cpu' and torch.isfinite(loss)
    found = {key: 0 for key in SITES}
    for sync in counter.syncs:
        matches = [key for key, site in SITES.items() if site in sync.site]
        assert matches, f'unexpected host synchronisation: {sync}'
        found[matches[0]] += 1
    # Lloyd's stop rule reads one pair of flags per iteration (the released
    # algorithm's early stop); how many iterations depends on the data.
    assert kmeans_calls <= found.pop('lloyd') <= kmeans_calls * KMEANS_ITERS
    assert found == {key: expected.get(key, 0) for key in found}, counter.report()


def test_counter_counts_each_kind_once_per_call():
    x = torch.tensor([0.5, -1.0, 2.0])
    with HostSyncCounter() as counter:
        x.sum().item()              # scalar
        bool(x.max() > 0)           # scalar
        x[x > 0]                    # boolean mask
        torch.nonzero(x)            # data-dependent shape
        torch.bincount(torch.tensor([0, 2]))  # data-dependent shape (the largest label)
        x.tolist()                  # copy to host
        x.index_select(0, torch.tensor([2])) * 2 + x.argmax()  # none
    kinds = [sync.kind.split(' (')[0] for sync in counter.syncs]
    assert kinds == ['scalar to host', 'scalar to host', 'boolean-mask indexing',
                     'data-dependent shape', 'data-dependent shape', 'copy to host']
    assert all('test_device_audit.py' in sync.site for sync in counter.syncs)
    # Leaving restores torch: nothing is counted any more.
    x.tolist()
    assert len(counter.syncs) == 6 and torch.Tensor.tolist.__name__ == 'tolist'


def test_meta_default_device_catches_a_tensor_created_without_a_device():
    x = torch.ones(3)

    def stray(points):
        return points + torch.zeros(3)  # no device named

    def follows(points):
        return points + torch.zeros(3, device=points.device)

    with default_device('meta'):
        assert torch.equal(follows(x), x)
        with pytest.raises(RuntimeError):
            stray(x).tolist()


def test_kmeans_and_knn_follow_their_inputs_device():
    gen = torch.Generator().manual_seed(0)
    points = torch.randn(60, 8, generator=gen)
    train = F.normalize(torch.randn(20, 8, generator=gen), dim=1)
    labels = torch.arange(20) % 3
    with default_device('meta'):
        for empty in ('collapse', 'keep'):
            result = kmeans(points, 5, generator=torch.Generator().manual_seed(1), empty_clusters=empty)
            assert result.labels.device.type == 'cpu' and result.labels.shape == (60,)
        scores = knn_predict(train, labels, train[:5], num_classes=3, k=4)
        assert topk_accuracy(scores, labels[:5], ks=(1,))['top1'] == 100.0


def test_mask_quality_cub_and_probe_follow_their_inputs_device():
    model = tiny_r2o().eval()
    size, gen = 64, torch.Generator().manual_seed(0)
    raws = torch.randint(0, 256, (3, 3, size, size), generator=gen, dtype=torch.uint8)
    index = torch.arange(size) * 4 // size
    superpixels = (index[:, None] * 4 + index[None, :]).expand(3, size, size).clone()
    objects = [np.stack([np.arange(size * size).reshape(size, size) % size < size // 2])] * 3
    items = [(f'image{i}', objects[i]) for i in range(3)]
    encoder = ResNetEncoder(18)
    image = torch.randn(3, size, size, generator=gen)
    segmentation = torch.randint(0, 3, (3, size, size), generator=gen)
    with default_device('meta'):
        scores, labels = score_masks(model, items, [4, 2], size=size, batch=2, views=(raws, superpixels))
        assert set(scores) == {4, 2} and labels[4].shape == (3, size // 4, size // 4)
        clusters = cluster_image(model.target_encoder.forward_c4, image,
                                 superpixels[0].numpy(), 3, torch.Generator().manual_seed(0))
        assert clusters.shape == (size, size) and set(np.unique(clusters)) <= {0, 1, 2}
        features = frozen_features(encoder, raws, batch=2)
        assert features.device.type == 'cpu' and features.shape[:2] == (3, 512)
        assert 0 <= train_probe(features, segmentation, features, segmentation, 3, seed=0, epochs=2,
                                batch=2) <= 100


def test_transfer_hooks_follow_the_models_device():
    backbone = ResNetEncoder(18)
    exported = {key: value.clone() for key, value in backbone.state_dict().items()}

    class Tiny(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.net = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 1), torch.nn.BatchNorm2d(4))
            self.data_preprocessor = lambda batch, training: {'inputs': batch}

        def forward(self, inputs, mode):
            return self.net(inputs)

    model = Tiny()
    batches = [torch.randn(2, 3, 5, 5, generator=torch.Generator().manual_seed(i)) for i in range(3)]
    runner = types.SimpleNamespace(model=model, seed=0, logger=types.SimpleNamespace(info=lambda m: None),
                                   cfg=types.SimpleNamespace(train_dataloader={}),
                                   build_dataloader=lambda cfg, seed: batches)
    with default_device('meta'):
        assert check_backbone_loaded(backbone, exported) == len(exported)
        PreciseBNHook(num_iters=3)._recompute(runner)
    # Equal-weight averages of the three batches' statistics (momentum None).
    means = torch.stack([model.net[0](b).mean((0, 2, 3)) for b in batches]).mean(0)
    assert torch.allclose(model.net[1].running_mean, means.detach(), atol=1e-6)
