"""Search strategies replayed on a benchmark table over many seeds (``pnas simulate``).

A strategy turns a seed into the cells it trains, in order; the table says what each cell scored
under the training seed that search seed observes (:class:`~pnas_core.search.TableEvaluator`: one
training seed drawn per cell and search seed; every strategy of a seed sees the same draw, so the
comparison is paired). A strategy text is ``KIND[:ARG[:ARG..]][@KEY=VALUE[,KEY=VALUE..]]``; kinds
(:data:`STRATEGIES`, extensible):

* ``pnas[:BY[:P1+P2..]]``: the progressive search (:func:`pnas_core.search.run_search`) selecting by
  ``BY`` (``mean`` by default, ``ucb`` or one predictor) with predictors ``P1+P2..`` (default:
  rnn+mlp+xgb for ``mean`` and ``ucb``, else ``BY`` alone); predictors are seeded with the search seed.
  Options set the rest of its :class:`~pnas_core.selection.Selection` (the workflow's ``search`` keys):
  ``kappa=κ`` (``ucb_kappa``; only with ``BY`` = ``ucb``, default 1), ``max_params=N`` and
  ``max_mult_adds=N`` (budgets on the children picked), ``pareto=params|mult_adds`` (Pareto fronts of
  the score against that cost, ``pareto: true`` with ``pareto_cost``). The children's costs come from
  :func:`pnas_core.search.table_costs`. E.g. ``pnas:ucb@kappa=2``, ``pnas:mean@max_params=48000``,
  ``pnas:mean@pareto=mult_adds``.
* ``pnas-es:R1+R2..:KEEP[:FIT_ON[:BY[:P1+P2..]]]`` (same options as ``pnas``): the same search with early stopping inside each
  level (:mod:`pnas_core.early_stop`): rungs at epochs R1, R2, .. keeping the share KEEP at each,
  predictors fit on ``full`` (default) or ``all`` records; the table's learning curves give each
  rung's accuracy (exactly what the rung's training would observe).
* ``random``: distinct B-block cells drawn uniformly, as the workflow's random-search baseline
  (``random_search.blocks: null``); ``random@max_params=N`` (and/or ``max_mult_adds=N``) draws only
  among the B-block cells within the budget: the fair baseline of a budgeted PNAS.

Every strategy trains the same budget M (PNAS's: all 1-block cells plus K per later level); a budget
applies to the cells a strategy picks, so budgeted PNAS still trains every 1-block cell first. With
early stopping only some models train to the full budget, so a strategy's cost is also counted in
epochs (the table's ``epochs`` per model trained to the end). Best and top-k accuracies count only
models trained to the full budget.
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from typing import Protocol

import numpy as np
import pandas as pd

from pnas_core.benchmark import BenchmarkTable
from pnas_core.early_stop import EarlyStop
from pnas_core.errors import PnasError
from pnas_core.figures.efficiency import best_so_far, top_k_mean_so_far
from pnas_core.search import TableEvaluator, run_search, table_costs
from pnas_core.selection import COSTS, DEFAULT_KAPPA, Selection, cost_budgets
from pnas_core.stats import t_interval
from pnas_core.summary import best_row
from pnas_core.surrogate import PREDICTORS, Predictor, SurrogateSettings
from pnas_core.surrogate.bundle import fit_predictors

TOP_K = 5
SIMULATION_SURROGATE = SurrogateSettings(xgb={"n_jobs": 1})
"""Predictor settings of a simulation: the paper's (the workflow's defaults), with XGBoost on one
thread: on tiny fits its thread pool only adds overhead (0.24 s against 7.4 s for 36 cells on a
loaded 2-core machine), and the simulation runs seeds one after another anyway."""

POOLED_DEFAULT = ("rnn", "mlp", "xgb")
"""The predictors of ``pnas:mean`` and ``pnas:ucb`` without a list (the workflow's default)."""
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


class Strategy(Protocol):
    """A parsed strategy text: what it trains for one seed, under which cost budgets."""

    @property
    def budgets(self) -> dict[str, int]:
        """The cost columns with a budget on the cells it picks, and the budget."""
        ...

    def run(self, ctx: Context) -> pd.DataFrame:
        """The cells trained, in order: columns ``cell`` and ``epochs`` (epochs each trained for)."""
        ...


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


@dataclasses.dataclass(frozen=True)
class PnasStrategy:
    """The progressive search with these predictors and this selection."""

    predictors: tuple[str, ...]
    selection: Selection
    early_stop: EarlyStop | None = None

    @property
    def budgets(self) -> dict[str, int]:
        return self.selection.budgets

    def run(self, ctx: Context) -> pd.DataFrame:
        settings = dataclasses.replace(ctx.surrogate, max_blocks=ctx.table.max_blocks, seed=ctx.seed)
        costs = table_costs(ctx.table) if self.selection.cost_columns else None
        result = run_search(
            ctx.table.space,
            ctx.evaluator,
            ctx.beam_size,
            self.predictors,
            self.selection,
            settings,
            costs=costs,
            fit=ctx.fit,
            early_stop=self.early_stop,
        )
        return result.summary[["cell", "epochs"]]


@dataclasses.dataclass(frozen=True)
class RandomStrategy:
    """Distinct B-block cells of the table drawn uniformly, among those within the budgets if any."""

    max_params: int | None = None
    max_mult_adds: int | None = None

    @property
    def budgets(self) -> dict[str, int]:
        return cost_budgets(self.max_params, self.max_mult_adds)

    def run(self, ctx: Context) -> pd.DataFrame:
        cells = ctx.table.cells
        keep = (cells["num_blocks"] == ctx.table.max_blocks).to_numpy().copy()
        for col, limit in self.budgets.items():
            keep &= (cells[col] <= limit).to_numpy()
        pool = cells.loc[keep, "cell"].to_numpy()
        if not len(pool):
            raise PnasError("no B-block cell of the table is within the budget")
        rng = np.random.default_rng([1, ctx.seed])
        picked = pool[rng.permutation(len(pool))[: ctx.budget]].tolist()
        return pd.DataFrame({"cell": picked, "epochs": ctx.evaluator.epochs})


def _budget(options: dict[str, str], key: str) -> int | None:
    if key not in options:
        return None
    try:
        value = int(options[key])
    except ValueError:
        raise PnasError(f"{key} must be a positive integer, got {options[key]!r}") from None
    if value < 1:
        raise PnasError(f"{key} must be a positive integer, got {options[key]!r}")
    return value


def _pnas(args: list[str], options: dict[str, str]) -> PnasStrategy:
    if len(args) > 2:
        raise PnasError("pnas takes at most BY and PREDICTORS")
    by = args[0] if args else "mean"
    if "kappa" in options and by != "ucb":
        raise PnasError(f"kappa weighs the spread of select-by ucb, not {by}")
    try:
        kappa = float(options.get("kappa", DEFAULT_KAPPA))
    except ValueError:
        raise PnasError(f"kappa must be a number, got {options['kappa']!r}") from None
    cost = options.get("pareto")
    if cost is not None and cost not in COSTS:
        raise PnasError(f"pareto takes the cost to trade against: {' or '.join(COSTS)}, got {cost!r}")
    selection = Selection(
        by=by,
        kappa=kappa,
        max_params=_budget(options, "max_params"),
        max_mult_adds=_budget(options, "max_mult_adds"),
        pareto=cost is not None,
        pareto_cost=cost or "params",
    )
    pooled = by in ("mean", "ucb")
    predictors = args[1].split("+") if len(args) > 1 else (list(POOLED_DEFAULT) if pooled else [by])
    unknown = [p for p in predictors if p not in PREDICTORS]
    if unknown or len(set(predictors)) != len(predictors) or (not pooled and by not in predictors):
        raise PnasError(
            f"predictors must be distinct names of {', '.join(PREDICTORS)} and include the one it selects by"
        )
    return PnasStrategy(tuple(predictors), selection)


def _pnas_es(args: list[str], options: dict[str, str]) -> PnasStrategy:
    usage = "pnas-es takes RUNGS:KEEP[:FIT_ON[:BY[:PREDICTORS]]], e.g. pnas-es:1+2:0.5"
    if len(args) < 2:
        raise PnasError(usage)
    try:
        rungs, keep = tuple(int(r) for r in args[0].split("+")), float(args[1])
    except ValueError:
        raise PnasError(usage) from None
    early_stop = EarlyStop(rungs, keep, (args[2] if len(args) > 2 else "") or "full")
    return dataclasses.replace(_pnas(args[3:], options), early_stop=early_stop)


def _random(args: list[str], options: dict[str, str]) -> RandomStrategy:
    if args:
        raise PnasError("random takes no arguments")
    return RandomStrategy(_budget(options, "max_params"), _budget(options, "max_mult_adds"))


STRATEGIES: dict[str, tuple[Callable[[list[str], dict[str, str]], Strategy], tuple[str, ...]]] = {
    "pnas": (_pnas, ("kappa", "max_params", "max_mult_adds", "pareto")),
    "pnas-es": (_pnas_es, ("kappa", "max_params", "max_mult_adds", "pareto")),
    "random": (_random, ("max_params", "max_mult_adds")),
}
"""Strategy kinds by name: the parser of ``(arguments after the kind, options)`` and the option keys."""


def parse_strategy(text: str) -> Strategy:
    """The strategy of a text (see the module docstring); a :class:`PnasError` naming the text if bad."""
    head, at, tail = text.partition("@")
    kind, *args = head.split(":")
    if kind not in STRATEGIES:
        raise PnasError(f"unknown strategy {text!r} (kinds: {', '.join(STRATEGIES)})")
    parser, keys = STRATEGIES[kind]
    options: dict[str, str] = {}
    for item in tail.split(",") if at else []:
        key, eq, value = item.partition("=")
        if not eq or not value or key not in keys or key in options:
            raise PnasError(
                f"strategy {text!r}: options are distinct KEY=VALUE pairs after '@', separated by ',', "
                f"KEY one of {', '.join(keys)}; got {item!r}"
            )
        options[key] = value
    try:
        return parser(args, options)
    except PnasError as exc:
        raise PnasError(f"strategy {text!r}: {exc}") from exc


def check_strategies(texts: Sequence[str]) -> dict[str, Strategy]:
    """The parsed strategies by text; :class:`PnasError` for a bad or repeated text."""
    if not texts or len(set(texts)) != len(texts):
        raise PnasError(f"strategies must be distinct and at least one, got {list(texts)}")
    return {text: parse_strategy(text) for text in texts}


def default_budget(table: BenchmarkTable, beam_size: int) -> int:
    """Models PNAS trains on the table: every 1-block cell, then K per later level."""
    cells = table.cells
    return int((cells["num_blocks"] == 1).sum()) + (table.max_blocks - 1) * beam_size


@dataclasses.dataclass
class Simulation:
    """Observed accuracies per strategy (seeds × models; NaN past a short run and for models stopped
    early), the cells trained to the full budget, the predictor fit costs (CPU seconds and fits per
    family), each strategy's cost budgets, and the epochs each model trained (seeds × models; absent:
    unknown)."""

    accuracy: dict[str, np.ndarray]
    cells: dict[str, list[list[str]]]
    seeds: list[int]
    fit_seconds: dict[str, float]
    fit_count: dict[str, int]
    seconds: dict[str, float]
    budgets: dict[str, dict[str, int]] = dataclasses.field(default_factory=dict)
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
    parsed = check_strategies(strategies)
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
        for text, strategy in parsed.items():
            start = time.process_time()
            try:
                trained = strategy.run(ctx).head(budget)
            except PnasError as exc:
                raise PnasError(f"strategy {text!r}, seed {seed}: {exc}") from exc
            seconds[text] += time.process_time() - start
            full = trained["epochs"].to_numpy() >= evaluator.epochs
            cells[text].append(trained["cell"][full].tolist())
            found = observed[[table.index[c] for c in trained["cell"]]]
            acc[text][i, : len(trained)] = np.where(full, found, np.nan)
            epochs[text][i, : len(trained)] = trained["epochs"].to_numpy()
        fit.clear()
        if log is not None:
            log(f"seed {seed}: done ({i + 1}/{len(seeds)})")
    budgets = {text: strategy.budgets for text, strategy in parsed.items()}
    return Simulation(
        acc, cells, list(seeds), dict(fit.seconds), dict(fit.count), dict(seconds), budgets, epochs
    )


def curves(sim: Simulation, top_k: int = TOP_K) -> pd.DataFrame:
    """Per strategy and models trained: best and top-k mean so far, each as mean and 95% interval
    over seeds. Columns: strategy, models_trained, best_mean, best_lo, best_hi, topk_mean, topk_lo,
    topk_hi."""
    frames = []
    for name, acc in sim.accuracy.items():
        best = np.stack([best_so_far(row) for row in acc])
        topk = np.stack([top_k_mean_so_far(row, top_k) for row in acc])
        (bm, bl, bh), (tm, tl, th) = t_interval(best), t_interval(topk)
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
