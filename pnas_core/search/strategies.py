"""Search strategies as texts, each run over an :class:`~pnas_core.search.progressive.Evaluator`: the same code
replays on a benchmark table (``pnas simulate``, :mod:`pnas_core.search.simulate`) and trains for real
through the result cache (``pnas replicate``, the workflow's ``replicates`` target).

A strategy text is ``KIND[:ARG[:ARG..]][@KEY=VALUE[,KEY=VALUE..]]``; kinds (:data:`STRATEGIES`):

* ``pnas[:BY[:P1+P2..]]``: the progressive search (:func:`pnas_core.search.progressive.run_search`) selecting by
  ``BY`` (``mean`` by default, ``ucb`` or one predictor) with predictors ``P1+P2..`` (default:
  rnn+mlp+xgb for ``mean`` and ``ucb``, else ``BY`` alone); predictors are seeded with the search seed.
  Options set the rest of its :class:`~pnas_core.search.selection.Selection` (the workflow's ``search`` keys):
  ``kappa=κ`` (``ucb_kappa``; only with ``BY`` = ``ucb``, default 1), ``max_params=N`` and
  ``max_mult_adds=N`` (budgets on the children picked), ``pareto=params|mult_adds`` (Pareto fronts of
  the score against that cost, ``pareto: true`` with ``pareto_cost``). E.g. ``pnas:ucb@kappa=2``,
  ``pnas:mean@max_params=48000``, ``pnas:mean@pareto=mult_adds``.
* ``pnas-es:R1+R2..:KEEP[:FIT_ON[:BY[:P1+P2..]]]`` (same options as ``pnas``): the same search with
  early stopping inside each level (:mod:`pnas_core.search.early_stop`): rungs at epochs R1, R2, .. keeping
  the share KEEP at each, predictors fit on ``full`` (default) or ``all`` records.
* ``random``: distinct B-block cells drawn uniformly (:func:`pnas_core.search.baselines.random_search`, the
  workflow's random-search sampler); ``random@max_params=N`` (and/or ``max_mult_adds=N``) draws only
  among the B-block cells of a benchmark table within the budget: the fair baseline of a budgeted PNAS.
* ``evolution[@population=P,sample=S]``: regularized evolution (Real et al. 2019;
  :func:`pnas_core.search.baselines.regularized_evolution`), P = 20 and S = 5 by default.
* ``local``: best-improvement local search over one-edit neighbours with random restarts
  (:func:`pnas_core.search.baselines.local_search`).

Every strategy trains the budget it is given (PNAS's own: all 1-block cells plus K per later level);
a budget applies to the cells a strategy picks, so budgeted PNAS still trains every 1-block cell first.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import Protocol

import numpy as np
import pandas as pd

from pnas_core.errors import PnasError
from pnas_core.names import COSTS, DEFAULT_PREDICTORS
from pnas_core.search import baselines, beam
from pnas_core.search.benchmark import BenchmarkTable
from pnas_core.search.early_stop import EarlyStop
from pnas_core.search.progressive import Evaluator, FitFn, run_search
from pnas_core.search.selection import DEFAULT_KAPPA, Selection, cost_budgets
from pnas_core.space.cells import Space
from pnas_core.surrogate import PREDICTORS, SurrogateSettings
from pnas_core.surrogate.bundle import fit_predictors

"""The predictors of ``pnas:mean`` and ``pnas:ucb`` without a list (the workflow's default)."""
EVOLUTION_DEFAULTS = {"population": 20, "sample": 5}
"""Regularized evolution's population P and tournament size S when a text leaves them out."""


@dataclasses.dataclass
class Context:
    """What a strategy run sees: the space, the seed's evaluator, the budget (models to train), the
    beam width, the predictor settings and fit function, the children's cost columns (for cost
    budgets and Pareto picks) and, on a benchmark, its table."""

    space: Space
    evaluator: Evaluator
    seed: int
    budget: int
    beam_size: int
    surrogate: SurrogateSettings
    fit: FitFn = fit_predictors
    costs: beam.CostColumns | None = None
    table: BenchmarkTable | None = None


class Strategy(Protocol):
    """A parsed strategy text: what it trains for one seed, under which cost budgets."""

    @property
    def budgets(self) -> dict[str, int]:
        """The cost columns with a budget on the cells it picks, and the budget."""
        ...

    def run(self, ctx: Context) -> pd.DataFrame:
        """The records of the cells trained, in training order (at least the evaluator's cell,
        num_blocks, val_acc, status, epochs, params, mult_adds, train_seconds)."""
        ...


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
        """The search's summary (level, models_trained, the candidates' and records' columns)."""
        settings = dataclasses.replace(ctx.surrogate, max_blocks=ctx.space.max_blocks, seed=ctx.seed)
        costs = ctx.costs if self.selection.cost_columns else None
        if self.selection.cost_columns and costs is None:
            raise PnasError("cost budgets and Pareto picks need the children's costs")
        result = run_search(
            ctx.space,
            ctx.evaluator,
            ctx.beam_size,
            self.predictors,
            self.selection,
            settings,
            costs=costs,
            fit=ctx.fit,
            early_stop=self.early_stop,
            progress=False,  # one of many runs: the caller reports progress
        )
        return result.summary


@dataclasses.dataclass(frozen=True)
class RandomStrategy:
    """Distinct B-block cells drawn uniformly; with cost budgets, among a table's cells within them."""

    max_params: int | None = None
    max_mult_adds: int | None = None

    @property
    def budgets(self) -> dict[str, int]:
        return cost_budgets(self.max_params, self.max_mult_adds)

    def run(self, ctx: Context) -> pd.DataFrame:
        if not self.budgets:
            return baselines.random_search(ctx.space, ctx.evaluator, ctx.budget, ctx.seed)
        if ctx.table is None:
            raise PnasError("random search within cost budgets draws from a benchmark table's cells")
        cells = ctx.table.cells
        keep = (cells["num_blocks"] == ctx.space.max_blocks).to_numpy().copy()
        for col, limit in self.budgets.items():
            keep &= (cells[col] <= limit).to_numpy()
        pool = cells.loc[keep, "cell"].to_numpy()
        if not len(pool):
            raise PnasError("no B-block cell of the table is within the budget")
        rng = np.random.default_rng([1, ctx.seed])
        return ctx.evaluator.evaluate(pool[rng.permutation(len(pool))[: ctx.budget]].tolist())


@dataclasses.dataclass(frozen=True)
class EvolutionStrategy:
    """Regularized evolution with population P and tournament size S."""

    population: int = EVOLUTION_DEFAULTS["population"]
    sample: int = EVOLUTION_DEFAULTS["sample"]

    @property
    def budgets(self) -> dict[str, int]:
        return {}

    def run(self, ctx: Context) -> pd.DataFrame:
        return baselines.regularized_evolution(
            ctx.space, ctx.evaluator, ctx.budget, ctx.seed, self.population, self.sample
        )


@dataclasses.dataclass(frozen=True)
class LocalStrategy:
    """Best-improvement local search with random restarts."""

    @property
    def budgets(self) -> dict[str, int]:
        return {}

    def run(self, ctx: Context) -> pd.DataFrame:
        return baselines.local_search(ctx.space, ctx.evaluator, ctx.budget, ctx.seed)


def _positive(options: dict[str, str], key: str) -> int | None:
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
        max_params=_positive(options, "max_params"),
        max_mult_adds=_positive(options, "max_mult_adds"),
        pareto=cost is not None,
        pareto_cost=cost or "params",
    )
    pooled = by in ("mean", "ucb")
    predictors = args[1].split("+") if len(args) > 1 else (list(DEFAULT_PREDICTORS) if pooled else [by])
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


def _no_args(kind: str, args: list[str]) -> None:
    if args:
        raise PnasError(f"{kind} takes no arguments")


def _random(args: list[str], options: dict[str, str]) -> RandomStrategy:
    _no_args("random", args)
    return RandomStrategy(_positive(options, "max_params"), _positive(options, "max_mult_adds"))


def _evolution(args: list[str], options: dict[str, str]) -> EvolutionStrategy:
    _no_args("evolution", args)
    given = {k: _positive(options, k) for k in EVOLUTION_DEFAULTS if k in options}
    strategy = EvolutionStrategy(**{**EVOLUTION_DEFAULTS, **given})
    baselines.check_evolution(strategy.population, strategy.sample)
    return strategy


def _local(args: list[str], options: dict[str, str]) -> LocalStrategy:
    _no_args("local", args)
    return LocalStrategy()


STRATEGIES: dict[str, tuple[Callable[[list[str], dict[str, str]], Strategy], tuple[str, ...]]] = {
    "pnas": (_pnas, ("kappa", "max_params", "max_mult_adds", "pareto")),
    "pnas-es": (_pnas_es, ("kappa", "max_params", "max_mult_adds", "pareto")),
    "random": (_random, ("max_params", "max_mult_adds")),
    "evolution": (_evolution, tuple(EVOLUTION_DEFAULTS)),
    "local": (_local, ()),
}
"""Strategy kinds by name: the parser of ``(arguments after the kind, options)`` and the option keys."""


def parse_strategy(text: str, selection: Selection | None = None) -> Strategy:
    """The strategy of a text (see the module docstring); a :class:`PnasError` naming the text if bad.

    ``selection`` (the workflow's ``settings/selection.json``) is the selection of a ``pnas`` or
    ``pnas-es`` text, which then sets no selection options and selects by the selection's ``by``."""
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
                f"KEY one of {', '.join(keys) or '(none)'}; got {item!r}"
            )
        options[key] = value
    try:
        strategy = parser(args, options)
        return strategy if selection is None else _with_selection(strategy, options, selection)
    except PnasError as exc:
        raise PnasError(f"strategy {text!r}: {exc}") from exc


def _with_selection(strategy: Strategy, options: dict[str, str], selection: Selection) -> PnasStrategy:
    """A PNAS strategy with ``selection`` in place of the one its text set."""
    if not isinstance(strategy, PnasStrategy):
        raise PnasError("a selection settings file is the selection of a pnas or pnas-es strategy")
    if options:
        raise PnasError("the selection settings file sets the selection: give no @options")
    if strategy.selection.by != selection.by:
        raise PnasError(
            f"it selects by {strategy.selection.by}, the selection settings file by {selection.by}"
        )
    return dataclasses.replace(strategy, selection=selection)


def check_strategies(texts: Sequence[str], selection: Selection | None = None) -> dict[str, Strategy]:
    """The parsed strategies by text; :class:`PnasError` for a bad or repeated text. ``selection`` (a
    selection settings file's) is the selection of every ``pnas`` and ``pnas-es`` text, as
    :func:`parse_strategy` takes it; the other kinds keep their texts' options."""
    if not texts or len(set(texts)) != len(texts):
        raise PnasError(f"strategies must be distinct and at least one, got {list(texts)}")
    return {
        text: parse_strategy(text, selection if strategy_kind(text) in SELECTING_KINDS else None)
        for text in texts
    }


SELECTING_KINDS = ("pnas", "pnas-es")
"""The strategy kinds that pick by a :class:`~pnas_core.search.selection.Selection`."""


def strategy_kind(text: str) -> str:
    """The kind of a strategy text (``pnas:ucb@kappa=2`` -> ``pnas``)."""
    return text.partition("@")[0].partition(":")[0]
