"""Search efficiency with confidence (the paper's Figure 5 over many seeds): best and mean-of-top-k
validation accuracy so far against models trained, each strategy's mean over seeds with its 95%
interval as a band (``pnas simulate``)."""

from __future__ import annotations

import pandas as pd
from matplotlib.figure import Figure

from pnas_core.figures.style import METHOD_COLORS, PREDICTOR_COLORS, new_figure

FALLBACK_COLORS = ("#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf")


def strategy_color(name: str, i: int) -> str:
    """``random`` in the random-search colour, ``pnas:<by>`` in the colour of its predictor."""
    if name == "random":
        return METHOD_COLORS["random"]
    parts = name.split(":")
    if parts[0] == "pnas" and len(parts) <= 2:
        return PREDICTOR_COLORS[parts[1] if len(parts) == 2 else "mean"]
    return FALLBACK_COLORS[i % len(FALLBACK_COLORS)]


def simulation_figure(curves: pd.DataFrame, seeds: int, top_k: int, title: str) -> Figure:
    """Two panels (best so far, top-k mean so far) from :func:`pnas_core.simulate.curves`."""
    fig = new_figure(8.4, 3.6)
    axes = fig.subplots(1, 2, sharex=True)
    panels = (
        ("best", "best validation accuracy so far"),
        ("topk", f"mean of the top {top_k} validation accuracies so far"),
    )
    for ax, (col, label) in zip(axes, panels, strict=True):
        for i, (name, part) in enumerate(curves.groupby("strategy", sort=False)):
            color = strategy_color(str(name), i)
            x = part["models_trained"]
            ax.step(x, part[f"{col}_mean"], where="post", color=color, label=str(name))
            ax.fill_between(
                x, part[f"{col}_lo"], part[f"{col}_hi"], step="post", color=color, alpha=0.2, linewidth=0
            )
        ax.set_title(label)
        ax.set_xlabel("number of models trained")
        ax.set_ylabel("validation accuracy")
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncols=len(labels))
    fig.suptitle(f"{title}: mean over {seeds} seeds, bands: 95% interval of the mean")
    return fig
