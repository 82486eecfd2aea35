"""Rank statistics shared by the predictor-quality experiment and the figures."""

from __future__ import annotations

import numpy as np
from scipy.stats import spearmanr

MIN_PAIRS = 3
"""Fewer pairs give no Spearman rho: with two points it is always +1 or -1 and says nothing."""


def spearman(x: np.ndarray, y: np.ndarray) -> float:
    """Spearman rank correlation of two equal-length arrays; NaN with fewer than :data:`MIN_PAIRS`
    pairs or when either side is constant."""
    x, y = np.asarray(x), np.asarray(y)
    if len(x) < MIN_PAIRS or np.ptp(x) == 0 or np.ptp(y) == 0:
        return float("nan")
    return float(spearmanr(x, y).statistic)
