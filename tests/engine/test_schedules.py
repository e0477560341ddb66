"""Schedules at their end points and at the values of docs/method.md section 4."""
import math

import numpy as np
import pytest

from r2o_mm.engine.schedules import SUPERPIXELS_ONLY, cluster_schedule, learning_rate, target_momentum


def released_cosine_reference(epoch, start_value, end_value, start_epoch, end_epoch):
    """The released CosineScheduler step by step: the same numpy float64
    operations in the same order, then the released truncation and limits."""
    if epoch <= start_epoch:
        value = start_value
    elif epoch >= end_epoch:
        value = end_value
    else:
        progress = np.float64(epoch - start_epoch) / np.float64(end_epoch - start_epoch)
        x = progress * (np.pi / 2)
        if end_value > start_value:
            x = np.pi / 2 - x
        maximum = np.float64(max(start_value, end_value))
        minimum = np.float64(min(start_value, end_value))
        value = np.cos(x) * (maximum - minimum) + minimum
    k = int(value)
    if k > 128:
        return SUPERPIXELS_ONLY
    return max(k, 1)


@pytest.mark.parametrize('start,end,total', [
    (128, 4, 300), (128, 4, 200), (128, 4, 100), (128, 4, 800), (64, 2, 137),
    (4, 128, 300), (2, 200, 100), (8, 2, 30), (16, 96, 50), (300, 4, 100)])
def test_cosine_schedule_equals_released_computation_at_every_epoch(start, end, total):
    ours = [cluster_schedule(e, 'cosine', start, end, total) for e in range(total + 1)]
    reference = [released_cosine_reference(e, start, end, 0, total) for e in range(total + 1)]
    assert ours == reference


def test_released_cosine_k_schedule():
    values = {e: cluster_schedule(e, 'cosine', 128, 4, 300) for e in (0, 1, 150, 200, 299, 300)}
    assert values == {0: 128, 1: 127, 150: 91, 200: 66, 299: 4, 300: 4}
    series = [cluster_schedule(e, 'cosine', 128, 4, 300) for e in range(301)]
    assert all(a >= b for a, b in zip(series, series[1:]))


def test_rising_cosine_is_a_sine_and_values_above_128_mean_superpixels():
    # Q9: start + (end - start) * sin(pi/2 * e / T). By hand, 4 -> 128 over 100:
    # e=1: 4 + 124 * 0.015707 = 5.95 -> 5; e=50: 4 + 124 * 0.707107 = 91.68 -> 91;
    # e=99: 4 + 124 * 0.999877 = 127.98 -> 127; e=100: 128.
    assert [cluster_schedule(e, 'cosine', 4, 128, 100) for e in (0, 1, 50, 99, 100)] == \
        [4, 5, 91, 127, 128]
    # Rising past 128 turns K-means off: 2 + 198 * sin(pi/4) = 142.0 -> superpixels.
    # e=64: 2 + 198 * sin(0.32 pi) = 169.2 -> 9999 as well; the start is K-means.
    rising = [cluster_schedule(e, 'cosine', 2, 200, 100) for e in (0, 50, 64, 100)]
    assert rising == [2, SUPERPIXELS_ONLY, SUPERPIXELS_ONLY, SUPERPIXELS_ONLY]
    # Falling from above 128: superpixels only until the value drops to 128.
    # cos(pi/2 * e / 100) * 296 + 4: e=72 -> 130.03 (still 9999), e=73 -> 125.8 -> 125.
    falling = [cluster_schedule(e, 'cosine', 300, 4, 100) for e in (0, 72, 73, 100)]
    assert falling == [SUPERPIXELS_ONLY, SUPERPIXELS_ONLY, 125, 4]


def test_constant_piecewise_linear():
    assert cluster_schedule(7, 'constant', start=9999) == SUPERPIXELS_ONLY
    assert cluster_schedule(7, 'constant', start=129) == SUPERPIXELS_ONLY
    assert cluster_schedule(7, 'constant', start=128) == 128
    assert cluster_schedule(7, 'constant', start=0) == 1  # below 1 means 1
    points = [(0, 9999), (10, 64), (20, 8)]
    assert [cluster_schedule(e, 'piecewise', points=points) for e in (1, 9, 10, 19, 20, 99)] == \
        [9999, 9999, 64, 64, 8, 8]
    assert cluster_schedule(5, 'piecewise', points=[(0, 200)]) == SUPERPIXELS_ONLY
    # Linear through the points, extrapolated beyond them (not held):
    # 128 - e: e=50 -> 78, e=100 -> 28, e=120 -> 8, e=200 -> -72 -> 1.
    line = [(0, 128), (100, 28)]
    assert [cluster_schedule(e, 'linear', points=line) for e in (0, 1, 50, 100, 120, 200)] == \
        [128, 127, 78, 28, 8, 1]
    # Three points: the last segment (10, 64) -> (20, 8) continues, slope -5.6:
    # e=15 -> 36, e=21 -> 2.4 -> 2; before the first point the first segment
    # (0, 120) -> (10, 64) goes back: e=-5 -> 148 -> superpixels only.
    three = [(0, 120), (10, 64), (20, 8)]
    assert [cluster_schedule(e, 'linear', points=three) for e in (-5, 5, 15, 21)] == \
        [SUPERPIXELS_ONLY, 92, 36, 2]
    with pytest.raises(ValueError, match='points'):
        cluster_schedule(1, 'linear')
    with pytest.raises(ValueError, match='kind'):
        cluster_schedule(1, 'exponential')


def test_target_momentum_rises_from_base_to_one():
    assert target_momentum(0, 1000) == pytest.approx(0.99)
    assert target_momentum(500, 1000) == pytest.approx(0.995)
    assert target_momentum(1000, 1000) == pytest.approx(1.0)
    assert target_momentum(250, 1000) == pytest.approx(1 - 0.01 * (math.cos(math.pi / 4) + 1) / 2)


def test_learning_rate_warmup_cosine_and_k_coupling():
    base = 0.3 * 4096 / 256
    assert learning_rate(0, 1000, 100, base) == 0.0
    assert learning_rate(50, 1000, 100, base) == pytest.approx(base / 2)
    assert learning_rate(100, 1000, 100, base) == pytest.approx(base)
    assert learning_rate(550, 1000, 100, base) == pytest.approx(base / 2)
    assert learning_rate(1000, 1000, 100, base) == pytest.approx(0.0, abs=1e-12)
    assert learning_rate(100, 1000, 100, base, num_clusters=128) == pytest.approx(8 * base)
    assert learning_rate(100, 1000, 100, base, num_clusters=4) == pytest.approx(0.25 * base)
    assert learning_rate(100, 1000, 100, base, num_clusters=9999) == pytest.approx(base)
