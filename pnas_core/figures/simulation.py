"""Search efficiency with confidence (the paper's Figure 5 over many seeds): best and mean-of-top-k
validation accuracy so far against models trained, each strategy's mean over seeds with its 95%
interval as a band (``pnas simulate``)."""

from __future__ import annotations

import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from pnas_core.figures.style import PREDICTOR_COLORS, legend_below, new_figure, percent_axis

RANDOM_STYLE = {"color": "#8c564b", "linestyle": "--"}
FALLBACK_COLORS = (
    "#9467bd", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf", "#393b79", "#8c6d31", "#637939", "#7b4173", "#ad494a",
)  # fmt: skip


def strategy_style(name: str, i: int) -> dict[str, str]:
    """``random`` dashed, ``pnas:<by>`` in the colour of its predictor, others from a fallback cycle
    (``random@...`` dashed)."""
    if name == "random":
        return RANDOM_STYLE
    if name.startswith("random@"):
        return {"color": FALLBACK_COLORS[i % len(FALLBACK_COLORS)], "linestyle": "--"}
    parts = name.split(":")
    if parts[0] == "pnas" and len(parts) <= 2 and (parts[-1] in PREDICTOR_COLORS or len(parts) == 1):
        return {"color": PREDICTOR_COLORS[parts[1] if len(parts) == 2 else "mean"]}
    return {"color": FALLBACK_COLORS[i % len(FALLBACK_COLORS)]}


def plot_bands(ax: Axes, curves: pd.DataFrame, x: str, col: str) -> None:
    """One step line per strategy of ``curves`` (``<col>_mean`` against column ``x``) with its 95%
    interval (``<col>_lo``, ``<col>_hi``) as a band."""
    for i, (name, part) in enumerate(curves.groupby("strategy", sort=False)):
        style = strategy_style(str(name), i)
        ax.step(part[x], part[f"{col}_mean"], where="post", label=str(name), **style)
        ax.fill_between(
            part[x],
            part[f"{col}_lo"],
            part[f"{col}_hi"],
            step="post",
            color=style["color"],
            alpha=0.2,
            linewidth=0,
        )


def simulation_figure(
    curves: pd.DataFrame, seeds: int, top_k: int, title: str, level_starts: list[int] | tuple[int, ...] = ()
) -> Figure:
    """Two panels (best so far, top-k mean so far) from :func:`pnas_core.search.simulate.curves`; a dotted
    line before each model in ``level_starts`` (PNAS's first model of each level after the first)."""
    fig = new_figure(8.4, 3.6)
    axes = fig.subplots(1, 2, sharex=True)
    panels = (
        ("best", "best validation accuracy so far"),
        ("topk", f"mean of the top {top_k} validation accuracies so far"),
    )
    for ax, (col, label) in zip(axes, panels, strict=True):
        plot_bands(ax, curves, "models_trained", col)
        for start in level_starts:
            ax.axvline(start - 0.5, color="grey", linestyle=":", linewidth=0.9)
        ax.set_title(label)
        ax.set_xlabel("number of models trained")
        ax.set_ylabel("validation accuracy")
        percent_axis(ax.yaxis)
    legend_below(fig, axes[0], max_cols=5 if len(curves["strategy"].unique()) <= 5 else 3)
    levels = "; dotted: PNAS level boundaries" if level_starts else ""
    fig.suptitle(f"{title}: mean over {seeds} seeds, bands: 95% interval of the mean{levels}")
    return fig
