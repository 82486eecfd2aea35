"""Statistics shared by the predictor-quality experiment, the simulations and the figures."""

from __future__ import annotations

import numpy as np
from scipy.stats import spearmanr, t

MIN_PAIRS = 3
"""Fewer pairs give no Spearman rho: with two points it is always +1 or -1 and says nothing."""


def spearman(x: np.ndarray, y: np.ndarray) -> float:
    """Spearman rank correlation of two equal-length arrays; NaN with fewer than :data:`MIN_PAIRS`
    pairs or when either side is constant."""
    x, y = np.asarray(x), np.asarray(y)
    if len(x) < MIN_PAIRS or np.ptp(x) == 0 or np.ptp(y) == 0:
        return float("nan")
    return float(spearmanr(x, y).statistic)


def t_interval(values: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mean over axis 0 and its 95% confidence interval (Student t); NaN bounds for one row."""
    n = values.shape[0]
    mean = values.mean(axis=0)
    if n < 2:
        nan = np.full_like(mean, np.nan)
        return mean, nan, nan
    half = t.ppf(0.975, n - 1) * values.std(axis=0, ddof=1) / np.sqrt(n)
    return mean, mean - half, mean + half
