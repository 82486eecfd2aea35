"""Search efficiency (the paper's Figure 5): best and mean-of-top-k validation accuracy so far
against the number of models trained, PNAS against random search, PNAS level boundaries marked."""

from __future__ import annotations

import pandas as pd
from matplotlib.figure import Figure

from pnas_core.figures.inputs import ok_accuracy
from pnas_core.figures.style import METHOD_COLORS, METHOD_LABELS, legend_below, new_figure, percent_axis
from pnas_core.stats import best_so_far, top_k_mean_so_far


def efficiency_table(pnas: pd.DataFrame, random: pd.DataFrame | None, top_k: int = 5) -> pd.DataFrame:
    """Per method and model trained: ``val_acc`` (NaN if not ok), ``best_so_far``, ``top{k}_mean_so_far``.

    Columns: ``method`` (PNAS | random), ``models_trained``, ``level`` (PNAS only), ``num_blocks``,
    ``cell``, ``status``, ``val_acc``, ``best_so_far``, ``top_k_mean_so_far``.
    """
    frames = []
    for method, df in (("PNAS", pnas), ("random", random)):
        if df is None:
            continue
        acc = ok_accuracy(df).to_numpy()
        frames.append(
            pd.DataFrame(
                {
                    "method": method,
                    "models_trained": df["models_trained"].to_numpy(),
                    "level": df["level"].to_numpy() if "level" in df else pd.NA,
                    "num_blocks": df["num_blocks"].to_numpy(),
                    "cell": df["cell"].to_numpy(),
                    "status": df["status"].to_numpy(),
                    "val_acc": acc,
                    "best_so_far": best_so_far(acc),
                    "top_k_mean_so_far": top_k_mean_so_far(acc, top_k),
                }
            )
        )
    table = pd.concat(frames, ignore_index=True)
    table["level"] = table["level"].astype("Int64")
    return table


def level_boundaries(pnas: pd.DataFrame) -> list[tuple[int, int, int]]:
    """``(level, first, last)`` models_trained of each PNAS level, in order."""
    g = pnas.groupby("level", sort=True)["models_trained"]
    return [(int(lv), int(lo), int(hi)) for (lv, lo), hi in zip(g.min().items(), g.max(), strict=True)]


def efficiency_figure(table: pd.DataFrame, pnas: pd.DataFrame, top_k: int) -> Figure:
    """Two panels: best-so-far and mean-of-top-k-so-far accuracy vs models trained."""
    fig = new_figure(8.4, 3.6)
    axes = fig.subplots(1, 2, sharex=True)
    columns = (
        ("best_so_far", "best validation accuracy so far"),
        ("top_k_mean_so_far", f"mean of the top {top_k} validation accuracies so far"),
    )
    bounds = level_boundaries(pnas)
    for ax, (column, title) in zip(axes, columns, strict=True):
        for method, part in table.groupby("method", sort=False):
            n_ok = int(part["val_acc"].notna().sum())
            ax.step(
                part["models_trained"],
                part[column],
                where="post",
                color=METHOD_COLORS[method],
                label=f"{METHOD_LABELS[method]} ({len(part)} models, {n_ok} ok)",
            )
        for _level, first, _last in bounds[1:]:
            ax.axvline(first - 0.5, color="grey", linestyle=":", linewidth=0.9)
        ax.set_title(title, pad=14)
        ax.set_xlabel("number of models trained")
        ax.set_ylabel("validation accuracy")
        percent_axis(ax.yaxis)
        _label_levels(ax, bounds)
    legend_below(fig, axes[0])
    seed = f" ({int(pnas['seed'].iloc[0])})" if "seed" in pnas and len(pnas) else ""
    fig.suptitle(
        f"Search efficiency: {_settings_text(bounds)}; dotted lines: PNAS level boundaries\n"
        f"One seed{seed} only: either method can lead by chance; `snakemake replicates` compares seeds"
    )
    return fig


def _settings_text(bounds: list[tuple[int, int, int]]) -> str:
    """``PNAS with B = 5 levels, 136 + 4 x 64 models`` from the level spans."""
    sizes = [last - first + 1 for _, first, last in bounds]
    if len(sizes) > 2 and len(set(sizes[1:])) == 1:
        counts = f"{sizes[0]} + {len(sizes) - 1} × {sizes[1]}"
    else:
        counts = " + ".join(str(n) for n in sizes)
    return f"PNAS over b = 1..{bounds[-1][0]} blocks ({counts} models)"


def _label_levels(ax, bounds: list[tuple[int, int, int]]) -> None:
    """Write ``b=<level>`` at the top of each PNAS level's span (axes-fraction y, data x)."""
    transform = ax.get_xaxis_transform()
    for level, first, last in bounds:
        ax.text(
            (first + last) / 2,
            1.0,
            f"b={level}",
            transform=transform,
            ha="center",
            va="bottom",
            fontsize=7,
            color="grey",
        )
