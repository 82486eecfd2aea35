"""Benchmark: every predictor option against today's rnn, mlp, xgb and their mean, on a benchmark table.

Two measurements, both paired across options (the same draws for every option):

* Algorithm 2 (``pnas_core.search.quality.algorithm2``, as ``pnas bench-quality``): T repeats, fit on K
  random cells of each size 1..b; Spearman rho on the b-block cells not fitted ("rho b") and on
  every (b+1)-block cell ("rho b+1"), mean and 95% interval (Student t) over the repeats.
* ``pnas simulate`` (``pnas_core.search.simulate``): the progressive search replayed on the table for seeds
  0..N-1 selecting by the option, against random search at the same budget M; best and top-5 mean
  accuracy after M models (mean and 95% interval over seeds), the models the mean best curve needs
  to reach random search's final mean best, and predictor-fit CPU seconds per fit.

Options (:data:`OPTIONS`): a predictor or ``mean:P1+P2..`` with surrogate settings overrides.
Run: python bench/predictors.py [--table digits_b2] [--repeats 20] [--seeds 10] [--options ...]
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time

import numpy as np
import pandas as pd

from pnas_core.search import quality
from pnas_core.search.benchmark import load_table
from pnas_core.search.simulate import SIMULATION_SURROGATE, Simulation, simulate, summarize
from pnas_core.stats import t_interval
from pnas_core.surrogate import SurrogateSettings

BASELINE = ("rnn", "mlp", "xgb", "mean")
OPTIONS: dict[str, tuple[str, dict]] = {
    "rnn": ("rnn", {}),
    "mlp": ("mlp", {}),
    "xgb": ("xgb", {}),
    "mean": ("mean:rnn+mlp+xgb", {}),
    "gnn": ("gnn", {}),
    "gnn+cost": ("gnn", {"cost_features": True}),
    "xgb+cost": ("xgb", {"cost_features": True}),
    "weighted": ("weighted", {}),
    "weighted+gnn": ("weighted", {"weighted_of": "rnn+mlp+xgb+gnn"}),
    "mean+gnn": ("mean:rnn+mlp+xgb+gnn", {}),
    "rnn+rank": ("rnn", {"rank_weight": 1.0}),
    "mlp+rank": ("mlp", {"rank_weight": 1.0}),
    "mean+rank": ("mean:rnn+mlp+xgb", {"rank_weight": 1.0}),
    "rnn-h50": ("rnn", {"embed_dim": 50, "hidden_dim": 50}),
    "mean-h50": ("mean:rnn+mlp+xgb", {"embed_dim": 50, "hidden_dim": 50}),
    "mean-h32": ("mean:rnn+mlp+xgb", {"embed_dim": 32, "hidden_dim": 32}),
    "rnn-e10": ("rnn", {"epochs": 10}),
    "mean-e10": ("mean:rnn+mlp+xgb", {"epochs": 10}),
}
"""Option name -> (predictor, or ``mean:`` and the predictors averaged; settings overrides)."""


def log(text: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {text}", file=sys.stderr, flush=True)


def interval(values: np.ndarray) -> tuple[float, float, float]:
    """Mean and 95% Student-t interval of the finite values (NaN bounds for fewer than 2)."""
    v = values[np.isfinite(values)]
    if not len(v):
        return float("nan"), float("nan"), float("nan")
    mean, lo, hi = t_interval(v)
    return float(mean), float(lo), float(hi)


def groups(options: list[str]) -> dict[str, tuple[dict, list[str]]]:
    """Options sharing settings overrides, fit together: key -> (overrides, predictors needed)."""
    out: dict[str, tuple[dict, list[str]]] = {}
    for name in options:
        spec, overrides = OPTIONS[name]
        key = repr(sorted(overrides.items()))
        needed = spec.removeprefix("mean:").split("+")
        names = out.setdefault(key, (overrides, []))[1]
        names += [p for p in needed if p not in names]
    return out


def settings_for(base: SurrogateSettings, overrides: dict, max_blocks: int) -> SurrogateSettings:
    return SurrogateSettings.from_dict({**base.to_dict(), **overrides, "max_blocks": max_blocks})


def run_quality(table, options: list[str], b: int, train_size: int, repeats: int, seed: int) -> pd.DataFrame:
    """Per option and repeat: rho on held-out b-block cells ("heldout") and on (b+1)-block cells
    ("next"). Per settings group, one Algorithm 2 run per ``mean:`` option (its predictors' rows and
    its mean row), then one for the predictors left; every run draws the same cells (same seed), and
    a predictor's fit does not depend on the others fit beside it."""
    rows = []
    for overrides, _ in groups(options).values():
        s = settings_for(SIMULATION_SURROGATE, overrides, table.max_blocks)
        names = [n for n in options if OPTIONS[n][1] == overrides]
        runs = [(n, OPTIONS[n][0][5:].split("+")) for n in names if OPTIONS[n][0].startswith("mean:")]
        covered = {p for _, ps in runs for p in ps}
        rest = [OPTIONS[n][0] for n in names if not OPTIONS[n][0].startswith("mean:")]
        if set(rest) - covered:
            runs.append(("", [p for p in rest if p not in covered]))
        seen: set[str] = set()
        for mean_name, predictors in runs:
            log(f"Algorithm 2: {'+'.join(predictors)} {overrides or ''}")
            df = quality.algorithm2(table.rows, b, predictors, s, train_size, repeats, seed)
            df = df[df["split"].isin(["heldout", "next"])]
            for name in names:
                spec = OPTIONS[name][0]
                source = "mean" if name == mean_name else spec
                if name in seen or source not in set(df["predictor"]) or (source == "mean" and not mean_name):
                    continue
                seen.add(name)
                part = df[df["predictor"] == source]
                rows += [
                    {"option": name, "split": r.split, "repeat": r.repeat, "rho": r.rho}
                    for r in part.itertuples()
                ]
    return pd.DataFrame(rows)


def run_simulations(table, options: list[str], seeds: int, beam_size: int) -> tuple[Simulation, dict]:
    """One simulation per settings group (random search in the first), merged under option names."""
    merged: Simulation | None = None
    fit_cost: dict[str, float] = {}
    for i, (overrides, _) in enumerate(groups(options).values()):
        names = [n for n in options if OPTIONS[n][1] == overrides]
        strategies = {f"pnas:{OPTIONS[n][0]}": n for n in names}
        s = settings_for(SIMULATION_SURROGATE, overrides, table.max_blocks)
        log(f"simulate: {' '.join(strategies)} {overrides or ''}")
        sim = simulate(
            table, [*strategies, *(["random"] if i == 0 else [])], range(seeds), beam_size, None, s
        )
        for name in strategies.values():
            fams = OPTIONS[name][0].removeprefix("mean:").split("+")
            fit_cost[name] = sum(sim.fit_seconds[f] / max(sim.fit_count[f], 1) for f in fams)
        renamed = {strategies.get(k, k): v for k, v in sim.accuracy.items()}
        cells = {strategies.get(k, k): v for k, v in sim.cells.items()}
        if merged is None:
            merged = dataclasses.replace(sim, accuracy=renamed, cells=cells)
        else:
            merged.accuracy |= renamed
            merged.cells |= cells
    return merged, fit_cost


def table_text(rho: pd.DataFrame, summary: pd.DataFrame, fit_cost: dict, options: list[str]) -> str:
    """The one table: per option rho b, rho b+1 (Algorithm 2) and the simulation's figures."""

    def fmt(m: float, lo: float, hi: float, digits: int = 3) -> str:
        return f"{m:.{digits}f} [{lo:.{digits}f}, {hi:.{digits}f}]"

    header = (
        "option",
        "rho b (held out)",
        "rho b+1",
        "best after M",
        "top-5 after M",
        "models to random's best",
        "fit s",
    )
    out = [header]
    by = summary.set_index("strategy")
    for name in [*options, "random"]:
        if name == "random":
            q = ("", "")
        else:
            part = rho[rho["option"] == name]
            q = tuple(fmt(*interval(part[part["split"] == s]["rho"].to_numpy())) for s in ("heldout", "next"))
        r = by.loc[name]
        models = (
            "not reached"
            if r.models_to_baseline_best != r.models_to_baseline_best
            else f"{int(r.models_to_baseline_best)}"
        )
        out.append(
            (
                name,
                *q,
                fmt(r.best_mean, r.best_lo, r.best_hi, 4),
                fmt(r.topk_mean, r.topk_lo, r.topk_hi, 4),
                models,
                f"{fit_cost[name]:.2f}" if name in fit_cost else "",
            )
        )
    widths = [max(len(row[i]) for row in out) for i in range(len(header))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) for row in out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--table", default="digits_b2")
    parser.add_argument("--options", nargs="+", default=list(OPTIONS), choices=list(OPTIONS))
    parser.add_argument("--blocks", type=int, default=1, help="Algorithm 2's b (default 1)")
    parser.add_argument("--train-size", type=int, default=24, help="Algorithm 2's K (default 24)")
    parser.add_argument("--repeats", type=int, default=20, help="Algorithm 2's T (default 20)")
    parser.add_argument("--seeds", type=int, default=10, help="simulation seeds 0..N-1 (default 10)")
    parser.add_argument("--beam-size", type=int, default=16)
    parser.add_argument("--seed", type=int, default=0, help="Algorithm 2's seed")
    parser.add_argument("--out", default=None, help="CSV of the per-repeat rho (optional)")
    args = parser.parse_args()
    options = list(dict.fromkeys([*BASELINE, *args.options]))
    table = load_table(args.table)
    start = time.perf_counter()
    rho = run_quality(table, options, args.blocks, args.train_size, args.repeats, args.seed)
    quality_wall = time.perf_counter() - start
    sim, fit_cost = run_simulations(table, options, args.seeds, args.beam_size)
    summary = summarize(sim, table)
    if args.out:
        rho.to_csv(args.out, index=False)
    status = "complete" if table.complete else "PARTIAL"
    print(
        f"table {args.table} ({status}: {len(table.cells)} cells, training seeds {list(table.seeds)}); "
        f"Algorithm 2: b = {args.blocks}, K = {args.train_size}, T = {args.repeats}; simulate: "
        f"{args.seeds} seeds, K = {args.beam_size}, M = {int(summary['models'].iloc[0])}; "
        "mean [95% interval]"
    )
    print(table_text(rho, summary, fit_cost, options))
    print(
        f"wall: Algorithm 2 {quality_wall:.0f} s, simulate {time.perf_counter() - start - quality_wall:.0f} s"
    )


if __name__ == "__main__":
    main()
