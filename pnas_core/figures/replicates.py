"""Replicated searches (the workflow's ``replicates``): best and mean-of-top-k validation accuracy so
far, mean over seeds with 95% bands, against models trained (top row) and against training compute
(bottom row), one line per strategy."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from pnas_core.figures.simulation import plot_bands
from pnas_core.figures.style import legend_below, new_figure, percent_axis

ZOOM_FROM = 0.1
"""The y axis shows the curves from this share of the x range on: the first models' accuracies and
the wide bands of a few seeds would otherwise squeeze the rest of the curves."""


def replicates_figure(by_models: pd.DataFrame, by_compute: pd.DataFrame, seeds: int, top_k: int) -> Figure:
    """Four panels from :func:`pnas_core.search.comparison.curves` (``by_models``) and
    :func:`pnas_core.search.comparison.compute_curves` (``by_compute``)."""
    fig = new_figure(8.4, 6.8)
    axes = fig.subplots(2, 2)
    panels = (("best", "best validation accuracy so far"), ("topk", f"mean of the top {top_k} so far"))
    top = float(by_compute["compute"].max()) if len(by_compute) else 1.0
    power = math.floor(math.log10(top)) if top > 0 else 0
    compute = by_compute.assign(compute=by_compute["compute"] / 10.0**power)
    rows = (
        (by_models, "models_trained", "number of models trained"),
        (compute, "compute", f"training compute ($10^{{{power}}}$ multiply-adds)"),
    )
    for row, (curves, x, xlabel) in enumerate(rows):
        for ax, (col, title) in zip(axes[row], panels, strict=True):
            plot_bands(ax, curves, x, col)
            ax.set_title(title)
            ax.set_xlabel(xlabel)
            ax.set_ylabel("validation accuracy")
            percent_axis(ax.yaxis)
            _zoom(ax, curves, x, col)
    legend_below(fig, axes[0][0])
    fig.suptitle(
        f"Replicated searches: mean over {seeds} seeds, bands: 95% interval of the mean\n"
        "compute: mult-adds per image × images × epochs; a curve ends with the strategy's cheapest seed"
    )
    return fig


def _zoom(ax, curves: pd.DataFrame, x: str, col: str) -> None:
    """Y limits around the means from :data:`ZOOM_FROM` of the x range on, bands clipped to [0, 1]."""
    later = curves[curves[x] >= curves[x].min() + ZOOM_FROM * (curves[x].max() - curves[x].min())]
    means = later[f"{col}_mean"].to_numpy(np.float64)
    means = means[np.isfinite(means)]
    if not len(means):
        return
    bands = later[[f"{col}_lo", f"{col}_hi"]].to_numpy(np.float64)
    bands = bands[np.isfinite(bands)]
    low = min(means.min(), np.percentile(bands, 5) if len(bands) else means.min())
    high = max(means.max(), np.percentile(bands, 95) if len(bands) else means.max())
    pad = 0.05 * max(high - low, 0.01)
    ax.set_ylim(max(0.0, low - pad), min(1.0 + pad, high + pad))


def figure_table(by_models: pd.DataFrame, by_compute: pd.DataFrame) -> pd.DataFrame:
    """The plotted numbers as one table: ``axis`` (models | compute), ``x``, then the curve columns."""
    return pd.concat(
        [
            by_models.rename(columns={"models_trained": "x"}).assign(axis="models"),
            by_compute.rename(columns={"compute": "x"}).assign(axis="compute"),
        ],
        ignore_index=True,
    )[["axis", "strategy", "x", *[c for c in by_models.columns if c not in ("strategy", "models_trained")]]]
