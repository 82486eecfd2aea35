"""Statistics shared by the predictor-quality experiment, the simulations, the replicate comparison and
the figures: rank correlation, confidence intervals, best-so-far and top-k-so-far curves."""

from __future__ import annotations

import heapq

import numpy as np
from scipy.stats import spearmanr, t

from pnas_core.errors import PnasError

MIN_PAIRS = 3
"""Fewer pairs give no Spearman rho: with two points it is always +1 or -1 and says nothing."""


def spearman(x: np.ndarray, y: np.ndarray) -> float:
    """Spearman rank correlation of two equal-length arrays; NaN with fewer than :data:`MIN_PAIRS`
    pairs or when either side is constant."""
    x, y = np.asarray(x), np.asarray(y)
    if len(x) < MIN_PAIRS or np.ptp(x) == 0 or np.ptp(y) == 0:
        return float("nan")
    return float(spearmanr(x, y).statistic)


ACCURACY_RANGE = (0.0, 1.0)
"""The values an accuracy can take: its intervals are clipped to them."""


def t_interval(
    values: np.ndarray, clip: tuple[float, float] | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mean over axis 0 and its 95% confidence interval (Student t); NaN bounds for one row. With
    ``clip`` (e.g. :data:`ACCURACY_RANGE`), the interval is cut to the values' possible range: with
    few rows the t interval of an accuracy near 1 reaches past 1."""
    n = values.shape[0]
    mean = values.mean(axis=0)
    if n < 2:
        nan = np.full_like(mean, np.nan)
        return mean, nan, nan
    half = t.ppf(0.975, n - 1) * values.std(axis=0, ddof=1) / np.sqrt(n)
    lo, hi = mean - half, mean + half
    if clip is not None:
        lo, hi = np.clip(lo, *clip), np.clip(hi, *clip)
    return mean, lo, hi


def best_so_far(acc: np.ndarray) -> np.ndarray:
    """Running maximum of ``acc``, skipping NaN (failed runs); NaN until the first finite value."""
    filled = np.where(np.isnan(acc), -np.inf, acc)
    run = np.maximum.accumulate(filled) if len(acc) else filled
    return np.where(np.isneginf(run), np.nan, run)


def top_k_mean_so_far(acc: np.ndarray, k: int) -> np.ndarray:
    """Mean of the k best finite values among ``acc[:i+1]``; NaN until k finite values are seen."""
    if k < 1:
        raise PnasError(f"top-k needs k >= 1, got {k}")
    heap: list[float] = []
    out = np.full(len(acc), np.nan)
    for i, a in enumerate(acc):
        if not np.isnan(a):
            if len(heap) < k:
                heapq.heappush(heap, float(a))
            elif a > heap[0]:
                heapq.heapreplace(heap, float(a))
        if len(heap) == k:
            out[i] = sum(sorted(heap)) / k
    return out
