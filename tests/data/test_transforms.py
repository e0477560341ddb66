"""Pretraining transforms: view geometry, SLIC prior and its cache (docs/method.md section 3)."""
import numpy as np
import pytest
import torch
from skimage import data as skdata

from r2o_mm.data.slic_cache import build_superpixel_cache
from r2o_mm.data.transforms import (PackR2OInputs, RawViewSuperpixels, TwoViews,
                                    compute_superpixels)
from r2o_mm.models.regions import view_masks


def coordinate_image(height=180, width=240):
    """uint8 (3, H, W): red encodes x, green encodes y (both 0..255)."""
    xs = np.linspace(0, 255, width)[None, :].repeat(height, 0)
    ys = np.linspace(0, 255, height)[:, None].repeat(width, 1)
    return torch.from_numpy(np.stack([xs, ys, np.zeros_like(xs)]).round().astype(np.uint8))


def plain_views(**kwargs):
    """TwoViews without colour changes, so pixel values keep their coordinates."""
    return TwoViews(size=64, scale=(0.2, 0.6), jitter_prob=0.0, grayscale_prob=0.0,
                    blur_probs=(0.0, 0.0), solarize_probs=(0.0, 0.0), **kwargs)


@pytest.mark.parametrize('always_flip', [True, False])
def test_box_and_flip_map_view_pixels_back_to_the_raw_view(always_flip):
    torch.manual_seed(0)
    image = coordinate_image()
    height, width = image.shape[-2:]
    flips_seen = set()
    for _ in range(10):
        out = plain_views(always_flip=always_flip).transform({'img': image})
        for index in range(2):
            view = out[f'view{index + 1}'].float()
            y1, x1, y2, x2 = out['boxes'][index].tolist()
            flip = bool(out['flips'][index])
            flips_seen.add(flip)
            cols = (torch.arange(64) + 0.5) / 64
            if flip:
                cols = cols.flip(0)
            expected_x = (x1 + cols * (x2 - x1)) * width - 0.5
            expected_y = (y1 + (torch.arange(64) + 0.5) / 64 * (y2 - y1)) * height - 0.5
            got_x = view[0].mean(0) / 255 * (width - 1)
            got_y = view[1].mean(1) / 255 * (height - 1)
            assert (got_x - expected_x)[4:-4].abs().max() < 1.5
            assert (got_y - expected_y)[4:-4].abs().max() < 1.5
    assert flips_seen == ({True} if always_flip else {True, False})


def test_masks_cut_with_the_recorded_geometry_match_the_view():
    """RoIAlign of raw-view coordinate maps with a view's box and flip gives
    the coordinates that the view's own pixels carry (what the masks rely on)."""
    torch.manual_seed(1)
    image = coordinate_image()
    out = plain_views(always_flip=False).transform({'img': image})
    grid = 8
    size = 56
    centres = (torch.arange(size) + 0.5) / size
    raw_coords = torch.stack([centres[None, :].expand(size, size),
                              centres[:, None].expand(size, size)])[None]
    for index in range(2):
        cut = view_masks(raw_coords, out['boxes'][index:index + 1], out['flips'][index:index + 1],
                         grid).view(2, grid, grid)
        view = out[f'view{index + 1}'].float() / 255
        pooled = torch.nn.functional.adaptive_avg_pool2d(view[:2][None], grid)[0]
        # Pixel coordinates of the view, normalised like raw_coords (centres).
        assert (cut - pooled).abs().max() < 0.04


def test_pack_keeps_the_model_inputs():
    out = plain_views().transform({'img': coordinate_image()})
    out = RawViewSuperpixels(size=64).transform(out)
    packed = PackR2OInputs().transform(out)['inputs']
    assert set(packed) == {'view1', 'view2', 'raw', 'superpixels', 'boxes', 'flips'}
    assert packed['raw'].shape == (3, 64, 64) and packed['raw'].dtype == torch.uint8
    assert packed['superpixels'].shape == (64, 64) and packed['superpixels'].dtype == torch.int64


@pytest.mark.parametrize('on_normalized', [True, False])
def test_slic_labels_start_at_zero_with_about_n_segments(on_normalized):
    raw = RawViewSuperpixels(size=224).raw_view(torch.from_numpy(skdata.astronaut()).permute(2, 0, 1))
    labels = compute_superpixels(raw, n_segments=100, compactness=10, on_normalized=on_normalized)
    assert labels.shape == (224, 224) and labels.min() == 0
    assert np.array_equal(np.unique(labels), np.arange(labels.max() + 1))
    assert 50 <= labels.max() + 1 <= 150


def test_q2_colour_space_changes_the_segmentation():
    raw = RawViewSuperpixels(size=128).raw_view(torch.from_numpy(skdata.coffee()).permute(2, 0, 1))
    assert not np.array_equal(compute_superpixels(raw, on_normalized=True),
                              compute_superpixels(raw, on_normalized=False))


def test_q1_slip_ignores_the_configured_segment_count():
    assert RawViewSuperpixels(n_segments=30, ignore_n_segments=True).n_segments == 100
    assert RawViewSuperpixels(n_segments=30, ignore_n_segments=False).n_segments == 30


def test_cache_returns_exactly_the_on_the_fly_labels(tmp_path):
    from PIL import Image
    paths = []
    for name in ('chelsea', 'rocket'):
        path = tmp_path / 'images' / f'{name}.jpg'
        path.parent.mkdir(exist_ok=True)
        Image.fromarray(getattr(skdata, name)()).save(path)
        paths.append((f'{name}.jpg', str(path)))
    settings = dict(size=96, n_segments=50, compactness=10, slic_on_normalized=True,
                    ignore_n_segments=False)
    cache = tmp_path / 'cache'
    stats = build_superpixel_cache(paths, str(cache), settings, workers=1, log=lambda *_: None)
    assert stats['computed'] == 2 and stats['failed'] == 0
    again = build_superpixel_cache(paths, str(cache), settings, workers=1, log=lambda *_: None)
    assert again['computed'] == 0 and again['cached_before'] == 2  # resumable
    from r2o_mm.data.transforms import LoadImageRGB
    for key, path in paths:
        loaded = LoadImageRGB().transform({'img_path': path, 'img_key': key})
        fresh = RawViewSuperpixels(**settings).transform(dict(loaded))['superpixels']
        cached_transform = RawViewSuperpixels(**settings, cache_dir=str(cache))
        cached_transform.superpixels = None  # would fail if the cache were not read
        cached = cached_transform.transform(dict(loaded))['superpixels']
        assert torch.equal(fresh, cached)
