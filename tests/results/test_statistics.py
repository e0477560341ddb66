"""Confidence intervals by hand."""
import math

import pytest

from r2o_mm.results.statistics import compare, summarise


def test_summary_of_five_seeds():
    # mean 3, sample std sqrt(2.5); t(0.975, 4) = 2.776445; half = 2.776445 * 1.581139 / sqrt(5) = 1.963243
    summary = summarise([1, 2, 3, 4, 5])
    assert summary['n'] == 5 and summary['mean'] == 3 and summary['std'] == pytest.approx(math.sqrt(2.5))
    assert summary['ci_low'] == pytest.approx(3 - 1.963243, abs=1e-5)
    assert summary['ci_high'] == pytest.approx(3 + 1.963243, abs=1e-5)
    assert math.isnan(summarise([7.0])['ci_low'])


def test_welch_comparison():
    far = compare([10, 11, 12], [1, 2, 3])
    assert far['difference'] == 9 and far['separated'] is True and far['ci_low'] > 0
    # Equal spreads: se = sqrt(1/3 + 1/3), dof 4, half = 2.776445 * 0.816497 = 2.266966
    near = compare([1, 2, 3], [2, 3, 4])
    assert near['difference'] == -1 and near['separated'] is False
    assert near['ci_high'] == pytest.approx(-1 + 2.266966, abs=1e-5)
    assert compare([1.0], [2.0])['separated'] is None
