"""Seeds -> mean, spread and confidence intervals; are two rows different?"""
from __future__ import annotations

import math

import numpy as np
from scipy import stats


def summarise(values) -> dict:
    """n, mean, sample std and the 95% confidence interval of the mean
    (Student's t); one value has no interval (NaN bounds)."""
    values = np.asarray(list(values), dtype=float)
    n = len(values)
    mean = float(values.mean()) if n else math.nan
    std = float(values.std(ddof=1)) if n > 1 else math.nan
    half = float(stats.t.ppf(0.975, n - 1) * std / math.sqrt(n)) if n > 1 else math.nan
    return {'n': n, 'mean': mean, 'std': std, 'ci_low': mean - half, 'ci_high': mean + half}


def compare(a, b) -> dict:
    """Difference of means a - b with Welch's 95% confidence interval; the
    difference exceeds the seed-to-seed spread when the interval excludes 0."""
    a, b = np.asarray(list(a), dtype=float), np.asarray(list(b), dtype=float)
    difference = float(a.mean() - b.mean())
    if len(a) < 2 or len(b) < 2:
        return {'difference': difference, 'ci_low': math.nan, 'ci_high': math.nan, 'separated': None}
    va, vb = a.var(ddof=1) / len(a), b.var(ddof=1) / len(b)
    se = math.sqrt(va + vb)
    if se == 0:
        return {'difference': difference, 'ci_low': difference, 'ci_high': difference,
                'separated': difference != 0}
    dof = (va + vb) ** 2 / (va ** 2 / (len(a) - 1) + vb ** 2 / (len(b) - 1))
    half = float(stats.t.ppf(0.975, dof) * se)
    return {'difference': difference, 'ci_low': difference - half, 'ci_high': difference + half,
            'separated': bool(difference - half > 0 or difference + half < 0)}
