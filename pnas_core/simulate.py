"""Search strategies replayed on a benchmark table over many seeds (``pnas simulate``).

A strategy turns a seed into the cells it trains, in order; the table says what each cell scored
under the training seed that search seed observes (:class:`~pnas_core.search.TableEvaluator`: one
training seed drawn per cell and search seed; every strategy of a seed sees the same draw, so the
comparison is paired). Strategies (:data:`STRATEGIES`, extensible):

* ``pnas[:BY[:P1+P2..]]``: the progressive search (:func:`pnas_core.search.run_search`) selecting by
  ``BY`` (``mean`` by default, ``ucb`` or one predictor) with predictors ``P1+P2..`` (default:
  rnn+mlp+xgb for ``mean`` and ``ucb``, else ``BY`` alone); predictors are seeded with the search seed.
* ``pnas-es:R1+R2..:KEEP[:FIT_ON[:BY[:P1+P2..]]]``: the same search with early stopping inside each
  level (:mod:`pnas_core.early_stop`): rungs at epochs R1, R2, .. keeping the share KEEP at each,
  predictors fit on ``full`` (default) or ``all`` records; the table's learning curves give each
  rung's accuracy (exactly what the rung's training would observe).
* ``random``: distinct B-block cells drawn uniformly, as the workflow's random-search baseline
  (``random_search.blocks: null``).

Every strategy trains the same budget M (PNAS's: all 1-block cells plus K per later level); with
early stopping only some of them to the full budget, so a strategy's cost is also counted in epochs
(the table's ``epochs`` per model trained to the end). Best and top-k accuracies count only models
trained to the full budget.
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections import defaultdict
from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd
from scipy.stats import t

from pnas_core.benchmark import BenchmarkTable
from pnas_core.early_stop import EarlyStop
from pnas_core.errors import PnasError
from pnas_core.figures.efficiency import best_so_far, top_k_mean_so_far
from pnas_core.search import TableEvaluator, run_search
from pnas_core.surrogate import PREDICTORS, Predictor, SurrogateSettings
from pnas_core.surrogate.bundle import fit_predictors

TOP_K = 5
SIMULATION_SURROGATE = SurrogateSettings(xgb={"n_jobs": 1})
"""Predictor settings of a simulation: the paper's (the workflow's defaults), with XGBoost on one
thread: on tiny fits its thread pool only adds overhead (0.24 s against 7.4 s for 36 cells on a
loaded 2-core machine), and the simulation runs seeds one after another anyway."""

DEFAULT_STRATEGIES = ("pnas:mean", "pnas:rnn", "pnas:mlp", "pnas:xgb", "random")


@dataclasses.dataclass
class Context:
    """What a strategy run sees: the table, the seed's evaluator, budget, beam and predictor fits."""

    table: BenchmarkTable
    evaluator: TableEvaluator
    seed: int
    budget: int
    beam_size: int
    surrogate: SurrogateSettings
    fit: FitCache


StrategyFn = Callable[[list[str], Context], pd.DataFrame]
"""``(arguments after the kind, context) -> cells trained, in order``: columns ``cell`` and
``epochs`` (epochs each was trained for)."""


class FitCache:
    """Fits each predictor once per (name, settings, fit data), timing every fit: strategies of one
    seed that observe the same records (every PNAS strategy at level 2) share their fits."""

    def __init__(self) -> None:
        self.fits: dict[tuple, Predictor] = {}
        self.seconds: dict[str, float] = defaultdict(float)
        self.count: dict[str, int] = defaultdict(int)

    def clear(self) -> None:
        """Forget the fitted predictors (the timings stay)."""
        self.fits.clear()

    def __call__(
        self, data: pd.DataFrame, names: Sequence[str], settings: SurrogateSettings
    ) -> dict[str, Predictor]:
        key = (
            tuple(data["cell"]),
            data["val_acc"].to_numpy().tobytes(),
            json.dumps(settings.to_dict(), sort_keys=True),
        )
        out = {}
        for name in names:
            if (name, key) not in self.fits:
                start = time.process_time()
                self.fits[name, key] = fit_predictors(data, [name], settings)[name]
                self.seconds[name] += time.process_time() - start
                self.count[name] += 1
            out[name] = self.fits[name, key]
        return out


def _pnas(args: list[str], ctx: Context, early_stop: EarlyStop | None = None) -> pd.DataFrame:
    if len(args) > 2:
        raise PnasError(f"strategy pnas takes at most BY and PREDICTORS, got {':'.join(args)!r}")
    by = args[0] if args else "mean"
    pooled = by in ("mean", "ucb")
    predictors = args[1].split("+") if len(args) > 1 else (list(PREDICTORS) if pooled else [by])
    unknown = [p for p in predictors if p not in PREDICTORS]
    if unknown or len(set(predictors)) != len(predictors) or (not pooled and by not in predictors):
        raise PnasError(
            f"strategy pnas:{':'.join(args)}: predictors must be distinct names of {', '.join(PREDICTORS)} "
            f"and include the one it selects by"
        )
    settings = dataclasses.replace(ctx.surrogate, max_blocks=ctx.table.max_blocks, seed=ctx.seed)
    result = run_search(
        ctx.table.space,
        ctx.evaluator,
        ctx.beam_size,
        predictors,
        by,
        settings,
        fit=ctx.fit,
        early_stop=early_stop,
    )
    return result.summary[["cell", "epochs"]]


def _pnas_es(args: list[str], ctx: Context) -> pd.DataFrame:
    usage = "strategy pnas-es takes RUNGS:KEEP[:FIT_ON[:BY[:PREDICTORS]]], e.g. pnas-es:1+2:0.5"
    if len(args) < 2:
        raise PnasError(f"{usage}; got {':'.join(['pnas-es', *args])!r}")
    try:
        rungs, keep = tuple(int(r) for r in args[0].split("+")), float(args[1])
    except ValueError as exc:
        raise PnasError(f"{usage}; got {':'.join(['pnas-es', *args])!r}") from exc
    early_stop = EarlyStop(rungs, keep, (args[2] if len(args) > 2 else "") or "full")
    return _pnas(args[3:], ctx, early_stop)


def _random(args: list[str], ctx: Context) -> pd.DataFrame:
    if args:
        raise PnasError(f"strategy random takes no arguments, got {':'.join(args)!r}")
    cells = ctx.table.cells
    pool = cells.loc[cells["num_blocks"] == ctx.table.max_blocks, "cell"].to_numpy()
    rng = np.random.default_rng([1, ctx.seed])
    picked = pool[rng.permutation(len(pool))[: ctx.budget]].tolist()
    return pd.DataFrame({"cell": picked, "epochs": ctx.evaluator.epochs})


STRATEGIES: dict[str, StrategyFn] = {"pnas": _pnas, "pnas-es": _pnas_es, "random": _random}
"""Strategy kinds by name; a strategy text is ``kind[:arg[:arg..]]``."""


def check_strategies(texts: Sequence[str]) -> None:
    """Raise :class:`PnasError` for an unknown kind or a repeated strategy."""
    if not texts or len(set(texts)) != len(texts):
        raise PnasError(f"strategies must be distinct and at least one, got {list(texts)}")
    for text in texts:
        if text.split(":")[0] not in STRATEGIES:
            raise PnasError(f"unknown strategy {text!r} (kinds: {', '.join(STRATEGIES)})")


def default_budget(table: BenchmarkTable, beam_size: int) -> int:
    """Models PNAS trains on the table: every 1-block cell, then K per later level."""
    cells = table.cells
    return int((cells["num_blocks"] == 1).sum()) + (table.max_blocks - 1) * beam_size


@dataclasses.dataclass
class Simulation:
    """Observed accuracies per strategy (seeds × models; NaN past a short run and for models stopped
    early), the cells trained to the full budget, the predictor fit costs (CPU seconds and fits per
    family), and the epochs each model trained (seeds × models; absent: unknown)."""

    accuracy: dict[str, np.ndarray]
    cells: dict[str, list[list[str]]]
    seeds: list[int]
    fit_seconds: dict[str, float]
    fit_count: dict[str, int]
    seconds: dict[str, float]
    epochs: dict[str, np.ndarray] = dataclasses.field(default_factory=dict)


def simulate(
    table: BenchmarkTable,
    strategies: Sequence[str],
    seeds: Sequence[int],
    beam_size: int = 16,
    budget: int | None = None,
    surrogate: SurrogateSettings = SIMULATION_SURROGATE,
    log: Callable[[str], None] | None = None,
) -> Simulation:
    """Run every strategy for every seed on the table."""
    check_strategies(strategies)
    budget = default_budget(table, beam_size) if budget is None else budget
    if budget < 1:
        raise PnasError(f"budget must be at least 1, got {budget}")
    acc = {s: np.full((len(seeds), budget), np.nan) for s in strategies}
    epochs = {s: np.zeros((len(seeds), budget)) for s in strategies}
    cells: dict[str, list[list[str]]] = {s: [] for s in strategies}
    seconds: dict[str, float] = defaultdict(float)
    fit = FitCache()
    for i, seed in enumerate(seeds):
        evaluator = TableEvaluator(table, seed)
        observed = evaluator.accuracy()
        ctx = Context(table, evaluator, seed, budget, beam_size, surrogate, fit)
        for text in strategies:
            kind, *args = text.split(":")
            start = time.process_time()
            trained = STRATEGIES[kind](args, ctx).head(budget)
            seconds[text] += time.process_time() - start
            full = trained["epochs"].to_numpy() >= evaluator.epochs
            cells[text].append(trained["cell"][full].tolist())
            found = observed[[table.index[c] for c in trained["cell"]]]
            acc[text][i, : len(trained)] = np.where(full, found, np.nan)
            epochs[text][i, : len(trained)] = trained["epochs"].to_numpy()
        fit.clear()
        if log is not None:
            log(f"seed {seed}: done ({i + 1}/{len(seeds)})")
    return Simulation(acc, cells, list(seeds), dict(fit.seconds), dict(fit.count), dict(seconds), epochs)


def _interval(values: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mean over seeds (axis 0) and its 95% confidence interval (Student t); NaN bounds for 1 seed."""
    n = values.shape[0]
    mean = values.mean(axis=0)
    if n < 2:
        nan = np.full_like(mean, np.nan)
        return mean, nan, nan
    half = t.ppf(0.975, n - 1) * values.std(axis=0, ddof=1) / np.sqrt(n)
    return mean, mean - half, mean + half


def curves(sim: Simulation, top_k: int = TOP_K) -> pd.DataFrame:
    """Per strategy and models trained: best and top-k mean so far, each as mean and 95% interval
    over seeds. Columns: strategy, models_trained, best_mean, best_lo, best_hi, topk_mean, topk_lo,
    topk_hi."""
    frames = []
    for name, acc in sim.accuracy.items():
        best = np.stack([best_so_far(row) for row in acc])
        topk = np.stack([top_k_mean_so_far(row, top_k) for row in acc])
        (bm, bl, bh), (tm, tl, th) = _interval(best), _interval(topk)
        frames.append(
            pd.DataFrame(
                {
                    "strategy": name,
                    "models_trained": np.arange(1, acc.shape[1] + 1),
                    "best_mean": bm,
                    "best_lo": bl,
                    "best_hi": bh,
                    "topk_mean": tm,
                    "topk_lo": tl,
                    "topk_hi": th,
                }
            )
        )
    return pd.concat(frames, ignore_index=True)


def _first_reaching(curve: np.ndarray, target: float) -> float:
    hits = np.flatnonzero(curve >= target)
    return float(hits[0] + 1) if len(hits) else float("nan")


def summarize(
    sim: Simulation, table: BenchmarkTable, top_k: int = TOP_K, baseline: str = "random"
) -> pd.DataFrame:
    """One row per strategy: the epochs it trained in all and the models it trained to the full
    budget (means over seeds; epochs with a 95% interval), best and top-k mean after M models (mean, 95% interval), the models
    its mean curve needs to reach the ``baseline``'s final mean best and top-k mean and their ratio
    to the baseline's own (NaN if never reached or no baseline), and the share of seeds that trained
    a best cell of the table (highest accuracy averaged over its training seeds; ties all count)."""
    table_curves = curves(sim, top_k)
    finals = table_curves.groupby("strategy", sort=False).tail(1).set_index("strategy")
    by = {name: part for name, part in table_curves.groupby("strategy", sort=False)}
    mean_acc = np.nanmean(table.accuracy, axis=1)
    best_cells = set(table.cells["cell"][mean_acc == np.nanmax(mean_acc)])
    rows = []
    for name in sim.accuracy:
        row = {"strategy": name, "models": int(finals.loc[name, "models_trained"])}
        spent = sim.epochs[name].sum(axis=1) if name in sim.epochs else np.full(len(sim.seeds), np.nan)
        row.update(
            zip(
                ("epochs_mean", "epochs_lo", "epochs_hi"),
                (float(v[0]) for v in _interval(spent[:, None])),
                strict=True,
            )
        )
        row["full_models"] = float(np.mean([len(c) for c in sim.cells[name]]))
        for col in ("best", "topk"):
            row.update({f"{col}_{s}": finals.loc[name, f"{col}_{s}"] for s in ("mean", "lo", "hi")})
        for col in ("best", "topk"):
            if baseline in by:
                target = finals.loc[baseline, f"{col}_mean"]
                models = _first_reaching(by[name][f"{col}_mean"].to_numpy(), target)
                own = _first_reaching(by[baseline][f"{col}_mean"].to_numpy(), target)
                row[f"models_to_{baseline}_{col}"], row[f"ratio_{col}"] = models, models / own
            else:
                row[f"models_to_{baseline}_{col}"] = row[f"ratio_{col}"] = float("nan")
        row["found_best"] = float(np.mean([not best_cells.isdisjoint(cells) for cells in sim.cells[name]]))
        rows.append(row)
    return pd.DataFrame(rows)
