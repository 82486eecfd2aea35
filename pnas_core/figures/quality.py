"""Predictor quality (the paper's Table 1 as a figure): Spearman rho by cell size b, per split,
for each predictor, with the spread over repeats as error bars."""

from __future__ import annotations

import pandas as pd
from matplotlib.figure import Figure

from pnas_core.errors import PnasError
from pnas_core.figures.style import (
    PLOT_PREDICTORS,
    PREDICTOR_COLORS,
    PREDICTOR_LABELS,
    legend_below,
    new_figure,
)

SPLIT_ORDER = ("train", "heldout", "next")
SPLIT_TITLES = {
    "train": "the b-block cells it was fit on",
    "heldout": "held-out cells of size b",
    "next": "cells one block larger (size b+1)",
}
"""The splits of ``pnas eval-surrogate``, in panel order."""


def quality_table(quality: pd.DataFrame) -> pd.DataFrame:
    """Mean and standard deviation (ddof=1; 0 for one repeat) of rho per b, predictor and split.

    Undefined rho (NaN: constant predictions or too few cells) is left out of the mean and std.
    Columns: ``blocks`` (b, the size fitted on), ``predictor``, ``split``, ``rho_mean``, ``rho_std``,
    ``repeats`` (repeats with a defined rho), ``n_train`` and ``n_eval`` (mean cells fitted and ranked).
    Rows are ordered by split, predictor, b.
    """
    unknown = sorted(set(quality["predictor"]) - set(PLOT_PREDICTORS))
    if unknown:
        raise PnasError(
            f"predictor-quality table names unknown predictor(s) {unknown} (known: {list(PLOT_PREDICTORS)})"
        )
    g = quality.groupby(["blocks", "predictor", "split"], sort=False)
    table = g.agg(
        rho_mean=("rho", "mean"),
        rho_std=("rho", "std"),
        repeats=("rho", "count"),
        n_train=("n_train", "mean"),
        n_eval=("n_eval", "mean"),
    ).reset_index()
    table.loc[table["repeats"] == 1, "rho_std"] = 0.0
    table["_split"] = table["split"].map(_split_key)
    table["_pred"] = table["predictor"].map(PLOT_PREDICTORS.index)
    table = table.sort_values(["_split", "split", "_pred", "blocks"], kind="stable")
    return table.drop(columns=["_split", "_pred"]).reset_index(drop=True)


def _split_key(split: str) -> int:
    return SPLIT_ORDER.index(split) if split in SPLIT_ORDER else len(SPLIT_ORDER)


def quality_figure(table: pd.DataFrame) -> Figure:
    """One panel per split: mean rho against b for each predictor, error bars = std over repeats."""
    splits = list(dict.fromkeys(table["split"]))
    fig = new_figure(3.4 * len(splits) + 0.6, 3.4)
    axes = fig.subplots(1, len(splits), sharey=True, squeeze=False)[0]
    bs = sorted(table["blocks"].unique())
    offsets = {p: (i - 1.5) * 0.07 for i, p in enumerate(PLOT_PREDICTORS)}
    for ax, split in zip(axes, splits, strict=True):
        part = table[table["split"] == split]
        for pred in PLOT_PREDICTORS:
            rows = part[part["predictor"] == pred]
            if rows.empty:
                continue
            ax.errorbar(
                rows["blocks"] + offsets[pred],
                rows["rho_mean"],
                yerr=rows["rho_std"],
                color=PREDICTOR_COLORS[pred],
                label=PREDICTOR_LABELS[pred],
                marker="o",
                markersize=4,
                capsize=3,
                linestyle="--" if pred == "mean" else "-",
            )
        repeats = sorted(part["repeats"].unique())
        reps = f"{repeats[0]}" if len(repeats) == 1 else f"{repeats[0]}–{repeats[-1]}"
        ax.set_title(f"Spearman ρ on {SPLIT_TITLES.get(split, split)}\n(mean ± std over {reps} repeats)")
        ax.set_xlabel("b (fit on cells of 1..b blocks)")
        ax.set_xticks(bs, [_tick(part, b) for b in bs])
        ax.axhline(0.0, color="black", linewidth=0.6)
    axes[0].set_ylabel("Spearman rank correlation ρ")
    axes[0].set_ylim(min(-0.1, float((table["rho_mean"] - table["rho_std"]).min()) - 0.05), 1.0)
    legend_below(fig, axes[0], max_cols=len(PLOT_PREDICTORS))
    return fig


def _tick(part: pd.DataFrame, b: int) -> str:
    """``b`` and, when every predictor was fit on the same number of cells, that number."""
    n = part.loc[part["blocks"] == b, "n_train"].unique()
    return f"{b}\n(fit on {n[0]:.0f})" if len(n) == 1 else f"{b}"
