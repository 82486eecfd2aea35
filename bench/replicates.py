"""Why a replicated comparison comes out as it does: from the run tables of the workflow's
``replicates`` target (``results/<name>/replicates/<strategy>/seed<s>.parquet``), per PNAS level and
seed, and per strategy.

Printed, each as mean and 95% interval over seeds (Student t):

* per PNAS level: models, their share of the budget and of the training compute, mean accuracy, the
  best accuracy, and the Spearman rho between the prediction made before training (``pred_mean`` and
  each predictor's) and the accuracy observed, among the K cells the level picked (a range restricted
  to the predicted top K, so lower than the rho of Algorithm 2 over random cells);
* per strategy: mean accuracy of its models, by cell size; where its best cell came from (PNAS level);
  the compute per model;
* the selection gain: PNAS's level-B picks against random search's B-block cells of the same seed,
  paired (mean accuracy, and the share of random search's cells below the picks' mean).

Run: python bench/replicates.py results/<name>/replicates [--top-k 5]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from pnas_core.search.replicates import read_run
from pnas_core.stats import spearman, t_interval


def interval(values: list[float] | np.ndarray, fmt: str = ".4f") -> str:
    """``mean [lo, hi]`` over seeds (NaN values dropped; n of them noted when some are)."""
    v = np.asarray(values, np.float64)
    finite = v[np.isfinite(v)]
    if not len(finite):
        return "n/a"
    mean, lo, hi = (float(x[0]) for x in t_interval(finite[:, None]))
    note = "" if len(finite) == len(v) else f" (n={len(finite)})"
    if np.isnan(lo):
        return f"{mean:{fmt}}{note}"
    return f"{mean:{fmt}} [{lo:{fmt}}, {hi:{fmt}}]{note}"


def load(folder: Path) -> dict[str, dict[int, pd.DataFrame]]:
    """Run tables by strategy and seed (seeds every strategy ran only)."""
    runs: dict[str, dict[int, pd.DataFrame]] = {}
    for path in sorted(folder.glob("*/seed*.parquet")):
        table, meta = read_run(path)
        runs.setdefault(str(meta["strategy"]), {})[int(meta["seed"])] = table  # type: ignore[call-overload]
    common = set.intersection(*(set(by_seed) for by_seed in runs.values()))
    return {name: {s: t for s, t in by_seed.items() if s in common} for name, by_seed in runs.items()}


def pnas_levels(runs: dict[int, pd.DataFrame]) -> pd.DataFrame:
    """One row per PNAS level with per-seed statistics formatted as intervals."""
    predictors = [c for c in next(iter(runs.values())).columns if c.startswith("pred_")]
    rows = []
    for level in sorted(next(iter(runs.values()))["pnas_level"].dropna().unique()):
        stats: dict[str, list[float]] = {}
        for table in runs.values():
            part = table[table["pnas_level"] == level]
            ok = part[part["status"] == "ok"]
            stats.setdefault("models", []).append(len(part))
            stats.setdefault("budget share", []).append(len(part) / len(table))
            stats.setdefault("compute share", []).append(part["cost"].sum() / table["cost"].sum())
            stats.setdefault("mean acc", []).append(ok["val_acc"].mean())
            stats.setdefault("best acc", []).append(ok["val_acc"].max())
            for col in predictors:
                stats.setdefault(f"rho {col[5:]}", []).append(spearman(ok[col], ok["val_acc"]))
        row = {"level": int(level)}
        for key, values in stats.items():
            fmt = ".0f" if key == "models" else ".2f" if "share" in key or key.startswith("rho") else ".4f"
            row[key] = interval(values, fmt)
        rows.append(row)
    return pd.DataFrame(rows)


def strategies(runs: dict[str, dict[int, pd.DataFrame]]) -> pd.DataFrame:
    """Per strategy: mean accuracy by cell size, where the best cell came from, compute per model."""
    rows = []
    for name, by_seed in runs.items():
        row: dict[str, str] = {"strategy": name, "seeds": str(len(by_seed))}
        sizes = sorted({int(b) for t in by_seed.values() for b in t["num_blocks"].unique()})
        for b in sizes:
            row[f"mean acc b={b}"] = interval(
                [
                    t.loc[(t["num_blocks"] == b) & (t["status"] == "ok"), "val_acc"].mean()
                    for t in by_seed.values()
                ]
            )
        row["best acc"] = interval([t["val_acc"].max() for t in by_seed.values()])
        best_sizes = [int(t.loc[t["val_acc"].idxmax(), "num_blocks"]) for t in by_seed.values()]
        row["best cell's blocks"] = " ".join(str(b) for b in best_sizes)
        row["compute per model"] = interval([t["cost"].mean() for t in by_seed.values()], ".3g")
        row["seconds per model"] = interval([t["train_seconds"].mean() for t in by_seed.values()], ".2f")
        rows.append(row)
    table = pd.DataFrame(rows)
    sizes = sorted(c for c in table.columns if c.startswith("mean acc b="))
    return table[
        ["strategy", "seeds", *sizes, *[c for c in table.columns if c not in ("strategy", "seeds", *sizes)]]
    ]


def selection_gain(pnas: dict[int, pd.DataFrame], random: dict[int, pd.DataFrame]) -> str:
    """PNAS's last-level picks against random search's cells of that size, seed by seed."""
    lines = []
    last = int(next(iter(pnas.values()))["pnas_level"].max())
    diffs, below = [], []
    for seed, table in pnas.items():
        picks = table.loc[(table["pnas_level"] == last) & (table["status"] == "ok"), "val_acc"]
        drawn = random[seed]
        drawn = drawn.loc[(drawn["num_blocks"] == last) & (drawn["status"] == "ok"), "val_acc"]
        diffs.append(picks.mean() - drawn.mean())
        below.append(float((drawn < picks.mean()).mean()))
    lines.append(
        f"PNAS's level-{last} picks minus random search's {last}-block cells, mean accuracy: {interval(diffs)}"
    )
    lines.append(f"share of random search's cells below the picks' mean: {interval(below, '.2f')}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("folder", type=Path, help="results/<name>/replicates")
    args = parser.parse_args(argv)
    runs = load(args.folder)
    if not runs or not next(iter(runs.values())):
        print(f"no complete seed in {args.folder}", file=sys.stderr)
        return 1
    seeds = sorted(next(iter(runs.values())))
    print(f"{args.folder}: seeds {seeds} (those every strategy finished); mean [95% interval] over seeds")
    with pd.option_context("display.width", 250, "display.max_columns", 30, "display.max_colwidth", 40):
        if "pnas" in runs:
            print("\nPNAS per level (rho: Spearman of the prediction made before training and the accuracy)")
            print(pnas_levels(runs["pnas"]).to_string(index=False))
        print("\nPer strategy")
        print(strategies(runs).to_string(index=False))
        if "pnas" in runs and "random" in runs:
            print()
            print(selection_gain(runs["pnas"], runs["random"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
