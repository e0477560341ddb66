"""Region operations against hand-computed cases (docs/method.md section 2)."""
import pytest
import torch
import torch.nn.functional as F

from r2o_mm.models.regions import (_kmeans_plus_plus, kmeans, lloyd, paint_cluster_labels, resize_onehot, pool_masked, region_loss,
                                   superpixel_descriptors, superpixel_onehot, view_masks)


def two_superpixels(size=8, boundary=4):
    """(1, size, size) labels: 0 left of column ``boundary``, 1 from it on."""
    labels = torch.zeros(1, size, size, dtype=torch.long)
    labels[..., boundary:] = 1
    return labels


def test_onehot_counts_channels_from_largest_label():
    onehot = superpixel_onehot(two_superpixels())
    assert onehot.shape == (1, 2, 8, 8)
    assert onehot[0, 0, :, :4].eq(1).all() and onehot[0, 0, :, 4:].eq(0).all()
    assert onehot.sum(1).eq(1).all()
    assert superpixel_onehot(two_superpixels(), num_segments=5).shape[1] == 5


def test_descriptors_average_each_superpixel_and_normalise():
    features = torch.zeros(1, 2, 4, 4)
    features[0, :, :, :2] = torch.tensor([3.0, 4.0]).view(2, 1, 1)   # left half
    features[0, :, :, 2:] = torch.tensor([0.0, 2.0]).view(2, 1, 1)   # right half
    features[0, 0, 0, 0] = 6.0  # left mean of channel 0 becomes (7*3 + 6) / 8 = 3.375
    desc = superpixel_descriptors(features, superpixel_onehot(two_superpixels()))
    left = torch.tensor([3.375, 4.0])
    assert torch.allclose(desc[0, 0], left / left.norm())
    assert torch.allclose(desc[0, 1], torch.tensor([0.0, 1.0]))


@pytest.mark.parametrize('height, width, size', [(224, 224, 14), (224, 224, 56), (64, 64, 16), (65, 70, 13),
                                                  (8, 8, 16)])
def test_resize_onehot_equals_interpolating_the_onehot(height, width, size):
    labels = torch.randint(0, 30, (2, height, width), generator=torch.Generator().manual_seed(0))
    onehot = superpixel_onehot(labels, num_segments=32)
    bilinear = F.interpolate(onehot, size=(size, size), mode='bilinear', align_corners=False)
    assert torch.allclose(resize_onehot(labels, 32, size), bilinear, atol=1e-6)
    nearest = F.interpolate(onehot, size=(size, size), mode='nearest')
    assert torch.equal(resize_onehot(labels, 32, size, 'nearest'), nearest)
    with pytest.raises(ValueError, match='resize mode'):
        resize_onehot(labels, 32, size, 'bicubic')


def test_descriptors_of_empty_slots_are_zero():
    onehot = superpixel_onehot(two_superpixels(), num_segments=3)
    desc = superpixel_descriptors(torch.randn(1, 5, 4, 4), onehot)
    assert desc[0, 2].abs().max() == 0


def test_kmeans_recovers_separated_clusters():
    gen = torch.Generator().manual_seed(0)
    centres = torch.tensor([[10.0, 0, 0], [0, 10.0, 0], [0, 0, 10.0]])
    truth = torch.arange(3).repeat_interleave(20)
    points = centres[truth] + 0.1 * torch.randn(60, 3, generator=gen)
    labels, found, hit_empty, _ = kmeans(points, 3, generator=torch.Generator().manual_seed(1))
    assert not hit_empty
    # Same partition up to a permutation of cluster ids.
    mapping = {int(t): int(l) for t, l in zip(truth, labels)}
    assert len(set(mapping.values())) == 3
    assert all(mapping[int(t)] == int(l) for t, l in zip(truth, labels))
    for t in range(3):
        assert torch.allclose(found[mapping[t]], points[truth == t].mean(0), atol=1e-5)


def test_kmeans_is_deterministic_under_a_seed():
    points = torch.randn(200, 16, generator=torch.Generator().manual_seed(3))
    first = kmeans(points, 8, generator=torch.Generator().manual_seed(7))
    second = kmeans(points, 8, generator=torch.Generator().manual_seed(7))
    assert torch.equal(first[0], second[0]) and torch.equal(first[1], second[1])


def test_kmeans_with_more_clusters_than_distinct_points_and_zero_vectors():
    points = torch.cat([torch.zeros(5, 4), torch.eye(4)[:2].repeat(3, 1)])  # 3 distinct points
    labels, centres, _, _ = kmeans(points, 6, generator=torch.Generator().manual_seed(0))
    assert labels.shape == (11,) and labels.max() < 6
    assert torch.isfinite(centres).all()
    # Identical points share a label; the three distinct points get three labels.
    assert labels[:5].unique().numel() == 1
    assert labels[5::2].unique().numel() == 1 and labels[6::2].unique().numel() == 1
    assert len({int(labels[0]), int(labels[5]), int(labels[6])}) == 3


def test_released_inertia_stop_finds_the_same_partition():
    gen = torch.Generator().manual_seed(0)
    centres = torch.tensor([[10.0, 0, 0], [0, 10.0, 0], [0, 0, 10.0]])
    points = centres[torch.arange(3).repeat_interleave(20)] + 0.1 * torch.randn(60, 3, generator=gen)
    keep = kmeans(points, 3, generator=torch.Generator().manual_seed(1), empty_clusters='keep')
    released = kmeans(points, 3, generator=torch.Generator().manual_seed(1), empty_clusters='collapse')
    assert torch.equal(keep.labels, released.labels) and not released.hit_empty


def test_lloyd_empty_cluster_keeps_its_centre_or_collapses_the_batch():
    """Q8 by hand: centre 100 is nearest to no point in the first iteration."""
    points = torch.tensor([[0.0], [1.0], [10.0], [11.0]])
    start = torch.tensor([[0.5], [10.5], [100.0]])
    keep = lloyd(points, start, empty_clusters='keep')
    assert keep.labels.tolist() == [0, 0, 1, 1] and keep.hit_empty
    assert keep.centres.flatten().tolist() == [0.5, 10.5, 100.0]
    released = lloyd(points, start, empty_clusters='collapse')
    assert released.labels.tolist() == [2, 2, 2, 2] and released.hit_empty
    # No empty cluster: the released inertia rule stops with the right partition.
    two = lloyd(points, torch.tensor([[0.0], [11.0]]), empty_clusters='collapse')
    assert two.labels.tolist() == [0, 0, 1, 1] and not two.hit_empty
    assert two.centres.flatten().tolist() == [0.5, 10.5]
    assert two.iterations == 3  # inertia 2, then 1, then 1: change 0 < tol
    with pytest.raises(ValueError, match='empty_clusters'):
        lloyd(points, start, empty_clusters='nan')


def test_kmeans_treats_points_equal_up_to_rounding_as_one_point():
    """Descriptors equal up to float rounding (which differs between CPUs)
    never become distinct centres: two groups of near-duplicates give two
    clusters for any k, on any machine."""
    gen = torch.Generator().manual_seed(0)
    base = F.normalize(torch.randn(2, 64, generator=gen), dim=-1)
    noise = 1 + 1e-6 * torch.randn(40, 64, generator=gen)
    points = F.normalize(base.repeat_interleave(20, 0) * noise, dim=-1)
    for mode in ('keep', 'collapse'):
        for seed in range(5):
            result = kmeans(points, 5, generator=torch.Generator().manual_seed(seed), empty_clusters=mode)
            if mode == 'keep':
                assert result.labels[:20].unique().numel() == 1 and result.labels[20:].unique().numel() == 1
                assert result.labels[0] != result.labels[20]
            else:  # the three duplicate centres are empty clusters: the released code collapses
                assert result.labels.unique().numel() == 1
            assert result.hit_empty
    _, active = _kmeans_plus_plus(points, 5, torch.Generator().manual_seed(0))
    assert active.tolist().count(True) == 2


def test_paint_nearest_is_exact():
    painted = paint_cluster_labels(superpixel_onehot(two_superpixels()), torch.tensor([[2, 5]]), 4,
                                   mode='nearest')
    assert painted.tolist() == [[[2, 2, 5, 5]] * 4]


def test_paint_bilinear_truncate_gives_a_third_label_on_borders():
    # Boundary at column 3 of 8: output column 1 samples source 2.5, halfway
    # between a pixel of label 2 and one of label 5 -> 3.5 -> truncated to 3 (Q4).
    painted = paint_cluster_labels(superpixel_onehot(two_superpixels(boundary=3)),
                                   torch.tensor([[2, 5]]), 4, mode='bilinear_truncate')
    assert painted.tolist() == [[[2, 3, 5, 5]] * 4]


def left_right_masks(size=8):
    """(1, 2, size, size): mask 0 is the left half, mask 1 the right half."""
    return superpixel_onehot(two_superpixels(size, size // 2))


# RoIAlign with aligned=False puts pixel i at coordinate i (not i + 0.5), as in
# the reference. A box from x=0 to x=4 on an 8-wide grid, 2 output bins:
# adaptive sampling takes 2 points per bin, at x = 0.5, 1.5 | 2.5, 3.5; the
# last one interpolates column 3 (left) and column 4 (right) half and half.


def test_view_masks_box_covering_the_left_half():
    boxes = torch.tensor([[0.0, 0.0, 1.0, 0.5]])  # (y1, x1, y2, x2)
    cut = view_masks(left_right_masks(), boxes, torch.tensor([False]), out_size=2)
    assert cut.shape == (1, 2, 4)
    assert torch.allclose(cut[0, 0], torch.tensor([1.0, 0.75, 1.0, 0.75]))
    assert torch.allclose(cut[0, 1], torch.tensor([0.0, 0.25, 0.0, 0.25]))
    assert torch.allclose(cut.sum(1), torch.ones(1, 4))  # masks still partition the view


def test_view_masks_box_on_the_right_half_misses_the_left_mask():
    boxes = torch.tensor([[0.0, 0.625, 1.0, 1.0]])  # columns 5 to 8
    cut = view_masks(left_right_masks(), boxes, torch.tensor([False]), out_size=2)
    assert cut[0, 0].abs().max() == 0 and torch.allclose(cut[0, 1], torch.ones(4))


def test_view_masks_flip_mirrors_the_grid():
    ramp = torch.arange(8.0).view(1, 1, 1, 8).expand(1, 1, 8, 8)  # value = column
    boxes = torch.tensor([[0.0, 0.0, 1.0, 1.0]])
    plain = view_masks(ramp, boxes, torch.tensor([False]), out_size=2).view(2, 2)
    flipped = view_masks(ramp, boxes, torch.tensor([True]), out_size=2).view(2, 2)
    # 4 samples per bin at x = 0.5..3.5 (mean 2.0) and 4.5..7.5, where 7.5 is
    # clamped to the last column: (4.5 + 5.5 + 6.5 + 7) / 4 = 5.875.
    assert torch.allclose(plain, torch.tensor([[2.0, 5.875], [2.0, 5.875]]))
    assert torch.equal(flipped, plain.flip(-1))


def test_pool_masked_divisors():
    features = torch.tensor([1.0, 2.0, 3.0, 4.0]).view(1, 1, 2, 2)
    masks = torch.tensor([[[1.0, 1.0, 0.0, 0.0], [0.25, 0.25, 0.0, 0.0], [0.0, 0.0, 0.0, 0.0]]])
    reference = pool_masked(features, masks, 'clamp_one')
    assert reference.squeeze(-1).tolist() == [[1.5, 0.75, 0.0]]  # area 0.5 is summed (Q6)
    fixed = pool_masked(features, masks, 'area')
    assert fixed.squeeze(-1).tolist() == [[1.5, 1.5, 0.0]]
    with pytest.raises(ValueError, match='divisor'):
        pool_masked(features, masks, 'mean')


def test_region_loss_values_and_overlap_indicator():
    q = torch.tensor([[[1.0, 0.0], [0.0, 2.0]]], requires_grad=True)
    z = torch.tensor([[[3.0, 0.0], [1.0, 0.0]]])
    # Mask 0: identical direction -> 0; mask 1: orthogonal -> 2.
    both = region_loss(q, z, torch.tensor([[True, True]]))
    assert torch.isclose(both, torch.tensor(1.0))
    only_second = region_loss(q, z, torch.tensor([[False, True]]))
    assert torch.isclose(only_second, torch.tensor(2.0))


def test_region_loss_without_overlap_is_a_differentiable_zero():
    q = torch.randn(2, 3, 4, requires_grad=True)
    loss = region_loss(q, torch.randn(2, 3, 4), torch.zeros(2, 3, dtype=torch.bool))
    assert loss.item() == 0.0
    loss.backward()
    assert q.grad is not None and torch.isfinite(q.grad).all()
