"""Per-level views of a search: predicted (before training) against true accuracy of the trained
cells, and the distribution of validation accuracy per cell size b."""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from pnas_core.errors import PnasError
from pnas_core.figures.inputs import ok_accuracy
from pnas_core.figures.style import (
    METHOD_COLORS,
    METHOD_LABELS,
    PLOT_PREDICTORS,
    PREDICTOR_COLORS,
    PREDICTOR_LABELS,
    legend_below,
    new_figure,
    percent_axis,
)
from pnas_core.stats import spearman

JITTER_SEED = 0


def prediction_sources(summary: pd.DataFrame) -> dict[str, str]:
    """Prediction columns to plot, name -> column: the selection ``score`` first, then each
    ``pred_<predictor>`` present. A predictor column equal to ``score`` on every row is folded into
    it (its name is then in the ``score`` label, see :func:`selection_label`)."""
    later = summary[summary["level"] >= 2]
    sources = {}
    if "score" in summary and later["score"].notna().any():
        sources["score"] = "score"
    for pred in PLOT_PREDICTORS:
        col = f"pred_{pred}"
        if col in summary and later[col].notna().any():
            if "score" in sources and _same(later[col], later["score"]):
                continue
            sources[pred] = col
    return sources


def _same(a: pd.Series, b: pd.Series) -> bool:
    return bool(
        np.array_equal(
            a.to_numpy("float64", na_value=np.nan), b.to_numpy("float64", na_value=np.nan), equal_nan=True
        )
    )


def selection_label(summary: pd.DataFrame) -> str:
    """Label of the selection score, naming the predictor it equals when there is one."""
    later = summary[summary["level"] >= 2]
    for pred in PLOT_PREDICTORS:
        col = f"pred_{pred}"
        if "score" in summary and col in summary and _same(later[col], later["score"]):
            return f"selection score (= {PREDICTOR_LABELS[pred]})"
    return PREDICTOR_LABELS["score"]


def predictions_table(summary: pd.DataFrame, source: str = "the summary") -> pd.DataFrame:
    """Long table of every prediction made before training, for trained cells with status ``ok``.

    Columns: ``level``, ``models_trained``, ``cell``, ``predictor`` (score | rnn | mlp | xgb | mean),
    ``predicted``, ``predicted_std`` (ensemble spread, NaN if none), ``val_acc``, and per
    (level, predictor) ``n_cells`` and ``spearman_rho`` of predicted against true accuracy.
    ``source`` names the summary in the error raised when it holds no predictions.
    """
    sources = prediction_sources(summary)
    if not sources:
        raise PnasError(f"{source} holds no predictions (columns score / pred_*) at any level >= 2")
    ok = summary[(summary["level"] >= 2) & (summary["status"] == "ok")]
    frames = []
    for name, col in sources.items():
        std_col = f"std_{name}"
        part = pd.DataFrame(
            {
                "level": ok["level"].astype("int64"),
                "models_trained": ok["models_trained"].astype("int64"),
                "cell": ok["cell"],
                "predictor": name,
                "predicted": ok[col].astype("float64"),
                "predicted_std": ok[std_col].astype("float64") if std_col in ok else np.nan,
                "val_acc": ok_accuracy(ok),
            }
        ).dropna(subset=["predicted"])
        frames.append(part)
    table = pd.concat(frames, ignore_index=True)
    groups = table.groupby(["level", "predictor"], sort=False)
    table["n_cells"] = groups["val_acc"].transform("size").astype("int64")
    rho = groups.apply(
        lambda g: spearman(g["predicted"].to_numpy(), g["val_acc"].to_numpy()), include_groups=False
    )
    table["spearman_rho"] = [rho[(lv, p)] for lv, p in zip(table["level"], table["predictor"], strict=True)]
    order = {name: i for i, name in enumerate(sources)}
    table = table.sort_values(["level", "predictor", "models_trained"], key=_order_key(order), kind="stable")
    return table.reset_index(drop=True)


def _order_key(order: dict[str, int]):
    return lambda col: col.map(order) if col.name == "predictor" else col


def predictions_figure(table: pd.DataFrame, score_label: str) -> Figure:
    """Grid of scatter plots: one row per predictor, one column per level >= 2; rho in each title."""
    predictors = list(dict.fromkeys(table["predictor"]))
    levels = sorted(table["level"].unique())
    fig = new_figure(max(2.5 * len(levels) + 0.8, 5.6), 2.4 * len(predictors) + 0.5)
    axes = fig.subplots(len(predictors), len(levels), squeeze=False)
    for j, level in enumerate(levels):
        at_level = table[table["level"] == level]
        lo = float(min(at_level["predicted"].min(), at_level["val_acc"].min()))
        hi = float(max(at_level["predicted"].max(), at_level["val_acc"].max()))
        pad = 0.05 * (hi - lo or 0.1)
        for i, pred in enumerate(predictors):
            label = score_label if pred == "score" else PREDICTOR_LABELS[pred]
            ax = axes[i, j]
            part = at_level[at_level["predictor"] == pred]
            ax.plot([lo - pad, hi + pad], [lo - pad, hi + pad], color="grey", linewidth=0.7, linestyle="--")
            ax.scatter(
                part["val_acc"],
                part["predicted"],
                s=9,
                alpha=0.6,
                color=PREDICTOR_COLORS[pred],
                edgecolors="none",
            )
            ax.set_xlim(lo - pad, hi + pad)
            ax.set_ylim(lo - pad, hi + pad)
            percent_axis(ax.xaxis, ax.yaxis)
            if part.empty:
                ax.set_title(f"b={level}: no predictions")
            else:
                rho = part["spearman_rho"].iloc[0]
                rho_text = "n/a" if np.isnan(rho) else f"{rho:.3f}"
                ax.set_title(f"b={level}, {len(part)} cells: ρ = {rho_text}")
            if i == len(predictors) - 1:
                ax.set_xlabel("true validation accuracy")
            if j == 0:
                ax.set_ylabel(f"{label}\npredicted accuracy")
    fig.suptitle(
        "Accuracy predicted before training vs. true accuracy of the trained cells\n"
        "(axes shared within a level; dashed: y = x)"
    )
    return fig


def distribution_table(pnas: pd.DataFrame, random: pd.DataFrame | None) -> pd.DataFrame:
    """Box-plot numbers of validation accuracy per method and cell size b (status ``ok`` only).

    Columns: ``method``, ``num_blocks``, ``n_trained``, ``n_ok``, ``min``, ``q1``, ``median``,
    ``q3``, ``max``, ``mean`` (quartiles by linear interpolation, numpy's default).
    """
    rows = []
    for method, df in (("PNAS", pnas), ("random", random)):
        if df is None:
            continue
        acc = ok_accuracy(df)
        for b, idx in df.groupby("num_blocks", sort=True).groups.items():
            vals = acc.loc[idx].dropna().to_numpy()
            q = np.percentile(vals, [0, 25, 50, 75, 100]) if len(vals) else [np.nan] * 5
            rows.append(
                {
                    "method": method,
                    "num_blocks": int(b),
                    "n_trained": len(idx),
                    "n_ok": len(vals),
                    "min": q[0],
                    "q1": q[1],
                    "median": q[2],
                    "q3": q[3],
                    "max": q[4],
                    "mean": float(vals.mean()) if len(vals) else np.nan,
                }
            )
    return pd.DataFrame(rows)


def distribution_figure(stats: pd.DataFrame, pnas: pd.DataFrame, random: pd.DataFrame | None) -> Figure:
    """Box (quartiles, whiskers at min and max) and jittered points of accuracy per b and method."""
    methods = list(dict.fromkeys(stats["method"]))
    bs = sorted(stats["num_blocks"].unique())
    fig = new_figure(1.6 * len(bs) + 1.5, 3.8)
    ax = fig.subplots()
    width = 0.8 / len(methods)
    rng = np.random.default_rng(JITTER_SEED)
    frames = {"PNAS": pnas, "random": random}
    for m, method in enumerate(methods):
        df = frames[method]
        acc = ok_accuracy(df)
        part = stats[stats["method"] == method].set_index("num_blocks")
        color = METHOD_COLORS[method]
        for b in bs:
            if b not in part.index or part.loc[b, "n_ok"] == 0:
                continue
            s = part.loc[b]
            x = bs.index(b) + (m - (len(methods) - 1) / 2) * width
            vals = acc[df["num_blocks"] == b].dropna().to_numpy()
            ax.scatter(
                x + rng.uniform(-0.3, 0.3, len(vals)) * width,
                vals,
                s=6,
                alpha=0.35,
                color=color,
                edgecolors="none",
            )
            ax.bxp(
                [
                    {
                        "med": s["median"],
                        "q1": s["q1"],
                        "q3": s["q3"],
                        "whislo": s["min"],
                        "whishi": s["max"],
                        "mean": s["mean"],
                        "fliers": [],
                    }
                ],
                positions=[x],
                widths=0.7 * width,
                showfliers=False,
                showmeans=True,
                manage_ticks=False,
                boxprops={"color": color},
                whiskerprops={"color": color},
                capprops={"color": color},
                medianprops={"color": "black"},
                meanprops={
                    "marker": "D",
                    "markerfacecolor": "white",
                    "markeredgecolor": "black",
                    "markersize": 3,
                },
            )
        n = int(part["n_ok"].sum())
        ax.scatter([], [], color=color, label=f"{METHOD_LABELS[method]} ({n} trained ok)")
    ax.set_xticks(range(len(bs)), [f"b={b}" for b in bs])
    ax.set_xlim(-0.6, len(bs) - 0.4)
    ax.set_xlabel("cell size (blocks)")
    ax.set_ylabel("validation accuracy")
    percent_axis(ax.yaxis)
    ax.set_title(
        "Validation accuracy per cell size\n(box: quartiles, whiskers: min–max, ◇ mean, dots: cells)"
    )
    legend_below(fig, ax)
    return fig
