"""Search strategies replayed on a benchmark table over many seeds (``pnas simulate``).

A strategy (:mod:`pnas_core.search.strategies`: ``pnas``, ``pnas-es``, ``random``, ``evolution``, ``local``)
turns a seed into the cells it trains, in order; the table says what each cell scored under the
training seed that search seed observes (:class:`~pnas_core.search.progressive.TableEvaluator`: one training seed
drawn per cell and search seed; every strategy of a seed sees the same draw, so the comparison is
paired). The children's costs PNAS's cost budgets and Pareto picks need come from
:func:`pnas_core.search.progressive.table_costs`; a ``pnas-es`` rung's accuracy comes from the table's learning
curves (exactly what the rung's training would observe).

Every strategy trains the same budget M (PNAS's: all 1-block cells plus K per later level). With
early stopping only some models train to the full budget, so a strategy's cost is also counted in
epochs and in training compute (:func:`pnas_core.search.comparison.training_cost`: mult-adds × images ×
epochs; seconds: the table's, pro rata for a model stopped early). Best and top-k accuracies count
only models trained to the full budget.
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections import defaultdict
from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd

from pnas_core.errors import PnasError
from pnas_core.names import COSTS
from pnas_core.search import comparison
from pnas_core.search.benchmark import BenchmarkTable
from pnas_core.search.comparison import TOP_K, Runs, train_images, training_cost
from pnas_core.search.progress import Progress
from pnas_core.search.progressive import TableEvaluator, table_costs
from pnas_core.search.selection import Selection
from pnas_core.search.strategies import Context, check_strategies
from pnas_core.search.summary import best_row
from pnas_core.stats import t_interval
from pnas_core.surrogate import Predictor, SurrogateSettings
from pnas_core.surrogate.bundle import fit_predictors

SIMULATION_SURROGATE = SurrogateSettings(xgb={"n_jobs": 1})
"""Predictor settings of a simulation: the paper's (the workflow's defaults), with XGBoost on one
thread: on tiny fits its thread pool only adds overhead (0.24 s against 7.4 s for 36 cells on a
loaded 2-core machine), and the simulation runs seeds one after another anyway."""

DEFAULT_STRATEGIES = ("pnas:mean", "pnas:rnn", "pnas:mlp", "pnas:xgb", "random")


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


def default_budget(table: BenchmarkTable, beam_size: int) -> int:
    """Models PNAS trains on the table: every 1-block cell, then K per later level."""
    cells = table.cells
    return int((cells["num_blocks"] == 1).sum()) + (table.max_blocks - 1) * beam_size


@dataclasses.dataclass
class Simulation:
    """Observed accuracies per strategy (seeds × models; NaN past a short run and for models stopped
    early), the cells trained to the full budget, the predictor fit costs (CPU seconds and fits per
    family), each strategy's cost budgets, the epochs each model trained (seeds × models; absent:
    unknown), and its training compute and seconds (seeds × models; absent: unknown)."""

    accuracy: dict[str, np.ndarray]
    cells: dict[str, list[list[str]]]
    seeds: list[int]
    fit_seconds: dict[str, float]
    fit_count: dict[str, int]
    seconds: dict[str, float]
    budgets: dict[str, dict[str, int]] = dataclasses.field(default_factory=dict)
    epochs: dict[str, np.ndarray] = dataclasses.field(default_factory=dict)
    compute: dict[str, np.ndarray] = dataclasses.field(default_factory=dict)
    train_seconds: dict[str, np.ndarray] = dataclasses.field(default_factory=dict)

    def runs(self) -> Runs:
        """The accuracies, compute and training seconds for :mod:`pnas_core.search.comparison`."""
        return Runs(self.accuracy, self.compute, self.train_seconds, self.seeds)


def simulate(
    table: BenchmarkTable,
    strategies: Sequence[str],
    seeds: Sequence[int],
    beam_size: int = 16,
    budget: int | None = None,
    surrogate: SurrogateSettings = SIMULATION_SURROGATE,
    log: Callable[[str], None] | None = None,
    progress: Progress | None = None,
    selection: Selection | None = None,
) -> Simulation:
    """Run every strategy for every seed on the table; ``progress`` (:data:`pnas_core.search.progress.Progress`)
    is called after each (seed, strategy) run; ``selection``: that of the ``pnas`` and ``pnas-es``
    strategies (:func:`pnas_core.search.strategies.check_strategies`)."""
    parsed = check_strategies(strategies, selection)
    budget = default_budget(table, beam_size) if budget is None else budget
    if budget < 1:
        raise PnasError(f"budget must be at least 1, got {budget}")
    shape = (len(seeds), budget)
    acc = {s: np.full(shape, np.nan) for s in strategies}
    epochs, compute, train_seconds = ({s: np.zeros(shape) for s in strategies} for _ in range(3))
    cells: dict[str, list[list[str]]] = {s: [] for s in strategies}
    seconds: dict[str, float] = defaultdict(float)
    fit = FitCache()
    images = train_images(table.dataset)
    costs = table_costs(table)
    for i, seed in enumerate(seeds):
        evaluator = TableEvaluator(table, seed)
        ctx = Context(table.space, evaluator, seed, budget, beam_size, surrogate, fit, costs, table)
        for text, strategy in parsed.items():
            start = time.process_time()
            try:
                trained = strategy.run(ctx).head(budget)
            except PnasError as exc:
                raise PnasError(f"strategy {text!r}, seed {seed}: {exc}") from exc
            seconds[text] += time.process_time() - start
            if progress is not None:
                progress(
                    i * len(parsed) + list(parsed).index(text) + 1, len(seeds) * len(parsed), f"seed {seed}"
                )
            n, ran = len(trained), trained["epochs"].to_numpy()
            full = (ran >= evaluator.epochs) & (trained["status"] == "ok").to_numpy()
            cells[text].append(trained["cell"][ran >= evaluator.epochs].tolist())
            acc[text][i, :n] = np.where(full, trained["val_acc"].to_numpy(np.float64), np.nan)
            epochs[text][i, :n] = ran
            compute[text][i, :n] = training_cost(trained["mult_adds"].to_numpy(), ran, images)
            train_seconds[text][i, :n] = trained["train_seconds"].to_numpy() * ran / evaluator.epochs
        fit.clear()
        if log is not None:
            log(f"seed {seed}: done ({i + 1}/{len(seeds)})")
    budgets = {text: strategy.budgets for text, strategy in parsed.items()}
    return Simulation(
        acc,
        cells,
        list(seeds),
        dict(fit.seconds),
        dict(fit.count),
        dict(seconds),
        budgets,
        epochs,
        compute,
        train_seconds,
    )


def curves(sim: Simulation, top_k: int = TOP_K) -> pd.DataFrame:
    """Per strategy and models trained: best and top-k mean so far with 95% intervals over seeds
    (:func:`pnas_core.search.comparison.curves`)."""
    return comparison.curves(sim.accuracy, top_k)


def _first_reaching(curve: np.ndarray, target: float) -> float:
    hits = np.flatnonzero(curve >= target)
    return float(hits[0] + 1) if len(hits) else float("nan")


def summarize(
    sim: Simulation, table: BenchmarkTable, top_k: int = TOP_K, baseline: str = "random"
) -> pd.DataFrame:
    """One row per strategy: the epochs it trained in all and the models it trained to the full
    budget (means over seeds; epochs with a 95% interval), best and top-k mean after M models (mean,
    95% interval); its baseline (the ``baseline`` kind under the same cost budgets, e.g.
    ``random@max_params=N`` for a PNAS with that budget, if simulated, else plain ``baseline``), the
    models its mean curve needs to reach the baseline's final mean best and top-k mean and their ratio
    to the baseline's own (NaN if never reached or no baseline); the share of seeds that trained a best
    cell of the table within its budgets (highest accuracy averaged over its training seeds; ties all
    count); and the cost (:func:`cost_summary`)."""
    table_curves = curves(sim, top_k)
    finals = table_curves.groupby("strategy", sort=False).tail(1).set_index("strategy")
    by = {name: part for name, part in table_curves.groupby("strategy", sort=False)}
    mean_acc = np.nanmean(table.accuracy, axis=1)
    rows = []
    for name in sim.accuracy:
        budgets = sim.budgets.get(name, {})
        own = [n for n in by if n.partition("@")[0] == baseline and sim.budgets.get(n, {}) == budgets]
        base = own[0] if budgets and own else baseline
        row = {"strategy": name, "models": int(finals.loc[name, "models_trained"])}
        spent = sim.epochs[name].sum(axis=1) if name in sim.epochs else np.full(len(sim.seeds), np.nan)
        row.update(
            zip(
                ("epochs_mean", "epochs_lo", "epochs_hi"),
                (float(v[0]) for v in t_interval(spent[:, None])),
                strict=True,
            )
        )
        row["full_models"] = float(np.mean([len(c) for c in sim.cells[name]]))
        for col in ("best", "topk"):
            row.update({f"{col}_{s}": finals.loc[name, f"{col}_{s}"] for s in ("mean", "lo", "hi")})
        row["baseline"] = base if base in by else ""
        for col in ("best", "topk"):
            models = ratio = float("nan")
            if base in by:
                target = finals.loc[base, f"{col}_mean"]
                models = _first_reaching(by[name][f"{col}_mean"].to_numpy(), target)
                ratio = models / _first_reaching(by[base][f"{col}_mean"].to_numpy(), target)
            row[f"models_to_baseline_{col}"], row[f"ratio_{col}"] = models, ratio
        within = np.ones(len(table.cells), dtype=bool)
        for col, limit in budgets.items():
            within &= (table.cells[col] <= limit).to_numpy()
        reach = np.where(within, mean_acc, np.nan)
        best_cells = set(table.cells["cell"][reach == np.nanmax(reach)])
        row["found_best"] = float(np.mean([not best_cells.isdisjoint(cells) for cells in sim.cells[name]]))
        rows.append(row | cost_summary(sim.cells[name], sim.accuracy[name], table, sim.epochs.get(name)))
    return pd.DataFrame(rows)


def cost_summary(
    cells: list[list[str]], accuracy: np.ndarray, table: BenchmarkTable, epochs: np.ndarray | None = None
) -> dict[str, float]:
    """Mean over seeds of the ``params`` and ``mult_adds`` of the cells a strategy trained to the full
    budget (``<cost>_trained``: the mean over them, 1-block ones included) and of the best cell it
    found (``<cost>_best``: highest observed accuracy; ties go to fewer params, then text, as the
    workflow's best cell). ``epochs`` (seeds × models) marks the full-budget models (the most epochs
    of the seed) when some were stopped early."""
    costs = table.cells.set_index("cell")[list(COSTS)]
    trained, best = [], []
    for i, (seed_cells, acc) in enumerate(zip(cells, accuracy, strict=True)):
        seen = costs.loc[seed_cells].reset_index()
        trained.append(seen[list(COSTS)].mean())
        if epochs is not None and epochs[i].max() > 0:
            acc = acc[epochs[i] >= epochs[i].max()]
        observed = acc[: len(seen)]
        best.append(
            best_row(seen.assign(val_acc=observed, status=np.where(np.isnan(observed), "failed", "ok")))
        )
    return {f"{c}_trained": float(np.mean([t[c] for t in trained])) for c in COSTS} | {
        f"{c}_best": float(np.mean([b[c] for b in best])) for c in COSTS
    }
