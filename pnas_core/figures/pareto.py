"""Accuracy against model size (Pareto view): every trained cell of PNAS and of random search, with
each method's Pareto front (no other cell of that method is both smaller and more accurate), the
search's size budget when it had one, and the cells picked from the first front of predicted accuracy
against size when it picked by Pareto fronts."""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from pnas_core.figures.inputs import ok_accuracy
from pnas_core.figures.style import METHOD_COLORS, METHOD_LABELS, legend_below, new_figure, percent_axis

SIZE_LABELS = {"params": "parameters", "mult_adds": "multiply-adds"}


def pareto_mask(size: np.ndarray, acc: np.ndarray) -> np.ndarray:
    """Points on the front: sorted by size (ties: higher accuracy first), each strictly more
    accurate than every smaller-or-equal one before it."""
    order = np.lexsort((-acc, size))
    mask = np.zeros(len(size), dtype=bool)
    best = -np.inf
    for i in order:
        if acc[i] > best:
            mask[i] = True
            best = acc[i]
    return mask


def budget(summary: pd.DataFrame, size: str) -> int | None:
    """The search's budget on ``size`` (its ``max_params`` / ``max_mult_adds`` column), None if none."""
    column = f"max_{size}"
    if column not in summary.columns or summary[column].isna().all():
        return None
    return int(summary[column].max())


def pareto_table(pnas: pd.DataFrame, random: pd.DataFrame | None, size: str = "params") -> pd.DataFrame:
    """Every cell trained with status ``ok``: ``method``, ``cell``, ``num_blocks``, ``params``,
    ``mult_adds``, ``val_acc``, ``on_front`` (Pareto-optimal in ``size`` within its method) and
    ``predicted_front`` (the Pareto front of predicted accuracy it was picked from, 0 = first; missing
    unless the search picked by fronts)."""
    frames = []
    for method, df in (("PNAS", pnas), ("random", random)):
        if df is None:
            continue
        ok = df.assign(val_acc=ok_accuracy(df)).dropna(subset=["val_acc"])
        part = pd.DataFrame(
            {
                "method": method,
                "cell": ok["cell"].to_numpy(),
                "num_blocks": ok["num_blocks"].astype("int64").to_numpy(),
                "params": ok["params"].astype("int64").to_numpy(),
                "mult_adds": ok["mult_adds"].astype("int64").to_numpy(),
                "val_acc": ok["val_acc"].to_numpy(),
                "predicted_front": (
                    ok["front"].astype("Int64").to_numpy() if "front" in ok.columns else pd.NA
                ),
            }
        )
        part["on_front"] = pareto_mask(part[size].to_numpy(), part["val_acc"].to_numpy())
        frames.append(part.sort_values([size, "val_acc", "cell"], kind="stable"))
    return pd.concat(frames, ignore_index=True)


def pareto_figure(table: pd.DataFrame, size: str, limit: int | None = None) -> Figure:
    """Scatter of accuracy against size (log x), each method's front as a step line, the budget
    ``limit`` on ``size`` as a vertical line and the picks from the first predicted front ringed."""
    fig = new_figure(5.6, 4.0)
    ax = fig.subplots()
    for method, part in table.groupby("method", sort=False):
        color = METHOD_COLORS[method]
        marker = "o" if method == "PNAS" else "^"
        ax.scatter(
            part[size],
            part["val_acc"],
            s=10,
            alpha=0.45,
            color=color,
            marker=marker,
            edgecolors="none",
            label=f"{METHOD_LABELS[method]} ({len(part)} cells)",
        )
        front = part[part["on_front"]]
        ax.step(
            front[size],
            front["val_acc"],
            where="post",
            color=color,
            linewidth=1.4,
            label=f"{METHOD_LABELS[method]} Pareto front ({len(front)} cells)",
        )
        ax.scatter(
            front[size],
            front["val_acc"],
            s=22,
            color=color,
            marker=marker,
            edgecolors="black",
            linewidths=0.5,
            zorder=3,
        )
    picked = table[table["predicted_front"].astype("Int64").eq(0).fillna(False).to_numpy(bool)]
    if not picked.empty:
        ax.scatter(
            picked[size],
            picked["val_acc"],
            s=70,
            facecolors="none",
            edgecolors="black",
            linewidths=0.8,
            zorder=4,
            label=f"picked from the first predicted front ({len(picked)} cells)",
        )
    if limit is not None:
        ax.axvline(limit, color="0.3", linestyle="--", linewidth=1.0, label=f"budget: max_{size} {limit:,}")
    ax.set_xscale("log")
    ax.set_xlabel(f"{SIZE_LABELS[size]} of the search-time network (log scale)")
    ax.set_ylabel("validation accuracy")
    percent_axis(ax.yaxis)
    ax.set_title(f"Validation accuracy vs. {SIZE_LABELS[size]}: every cell trained with status ok")
    legend_below(fig, ax, max_cols=2)
    return fig
