"""Replicated searches (the workflow's ``replicates``): best and mean-of-top-k validation accuracy so
far, mean over seeds with 95% bands, against models trained (top row) and against training compute
(bottom row), one line per strategy."""

from __future__ import annotations

import pandas as pd
from matplotlib.figure import Figure

from pnas_core.figures.simulation import plot_bands
from pnas_core.figures.style import new_figure


def replicates_figure(by_models: pd.DataFrame, by_compute: pd.DataFrame, seeds: int, top_k: int) -> Figure:
    """Four panels from :func:`pnas_core.comparison.curves` (``by_models``) and
    :func:`pnas_core.comparison.compute_curves` (``by_compute``)."""
    fig = new_figure(8.4, 6.6)
    axes = fig.subplots(2, 2)
    panels = (("best", "best validation accuracy so far"), ("topk", f"mean of the top {top_k} so far"))
    for row, (curves, x, xlabel) in enumerate(
        (
            (by_models, "models_trained", "number of models trained"),
            (by_compute, "compute", "training compute (multiply-adds × images × epochs)"),
        )
    ):
        for ax, (col, title) in zip(axes[row], panels, strict=True):
            plot_bands(ax, curves, x, col)
            ax.set_title(title)
            ax.set_xlabel(xlabel)
            ax.set_ylabel("validation accuracy")
    handles, labels = axes[0][0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncols=min(len(labels), 5))
    fig.suptitle(
        f"Replicated searches: mean over {seeds} seeds, bands: 95% interval of the mean; "
        "compute curves end where the first seed's run ends"
    )
    return fig


def figure_table(by_models: pd.DataFrame, by_compute: pd.DataFrame) -> pd.DataFrame:
    """The plotted numbers as one table: ``axis`` (models | compute), ``x``, then the curve columns."""
    return pd.concat(
        [
            by_models.rename(columns={"models_trained": "x"}).assign(axis="models"),
            by_compute.rename(columns={"compute": "x"}).assign(axis="compute"),
        ],
        ignore_index=True,
    )[["axis", "strategy", "x", *[c for c in by_models.columns if c not in ("strategy", "models_trained")]]]
