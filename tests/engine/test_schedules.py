"""Schedules at their end points and at the values of SPEC section 4."""
import math

import pytest

from r2o_mm.engine.schedules import cluster_schedule, learning_rate, target_momentum


def test_released_cosine_k_schedule():
    values = {e: cluster_schedule(e, 'cosine', 128, 4, 300) for e in (0, 1, 150, 299, 300)}
    assert values == {0: 128, 1: 127, 150: 91, 299: 4, 300: 4}
    series = [cluster_schedule(e, 'cosine', 128, 4, 300) for e in range(301)]
    assert all(a >= b for a, b in zip(series, series[1:]))


def test_rising_cosine_and_clamping():
    assert cluster_schedule(0, 'cosine', 4, 128, 100) == 4
    assert cluster_schedule(100, 'cosine', 4, 128, 100) == 128
    # int(128 + (4 - 128) * cos(pi/4)) = int(40.32) = 40
    assert cluster_schedule(50, 'cosine', 4, 128, 100) == 40
    assert cluster_schedule(0, 'cosine', 300, 4, 100) == 128  # clamped to 128


def test_constant_piecewise_linear():
    assert cluster_schedule(7, 'constant', start=9999) == 9999  # superpixels only
    points = [(0, 9999), (10, 64), (20, 8)]
    assert [cluster_schedule(e, 'piecewise', points=points) for e in (1, 9, 10, 19, 20, 99)] == \
        [9999, 9999, 64, 64, 8, 8]
    line = [(0, 128), (100, 28)]
    assert [cluster_schedule(e, 'linear', points=line) for e in (0, 1, 50, 100, 200)] == \
        [128, 127, 78, 28, 28]
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
