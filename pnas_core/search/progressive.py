"""The progressive search in one process: level 1, then fit, expand and score, select, evaluate,
level after level, with a pluggable evaluator.

The workflow runs the same steps as cached, distributed jobs; both call :mod:`pnas_core.search.beam` and
:func:`pnas_core.surrogate.bundle.fit_predictors`, so there is one copy of the beam logic. An
evaluator turns cells into training records: :class:`TrainingEvaluator` trains them (optionally
through the result cache the workflow uses), :class:`TableEvaluator` looks them up in a benchmark
table (:mod:`pnas_core.search.benchmark`), which replays a whole search in about a second::

    from pnas_core.search.progressive import TrainingEvaluator, run_search
    from pnas_core.space.cells import Space
    from pnas_core.training.train import TrainSettings

    settings = TrainSettings(dataset="digits", image_size=8, val_fraction=0.25, cells_per_stack=1,
                             filters=8, epochs=4, batch_size=64, lr=0.05)
    result = run_search(Space.from_names(["sep3x3", "identity", "max3x3"], 2),
                        TrainingEvaluator(settings), beam_size=8)
    result.best["cell"], result.best["val_acc"]
"""

from __future__ import annotations

import abc
import dataclasses
import os
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from pnas_core.errors import PnasError
from pnas_core.io.records import RECORD_COLUMNS
from pnas_core.names import DEFAULT_PREDICTORS, DEFAULT_SELECT_BY
from pnas_core.search import beam, scoring
from pnas_core.search.benchmark import BenchmarkTable
from pnas_core.search.early_stop import EarlyStop, records_at, successive_halving
from pnas_core.search.progress import Progress, TerminalBar
from pnas_core.search.selection import Selection
from pnas_core.search.summary import best_row, join_levels
from pnas_core.space.cells import Space
from pnas_core.surrogate import Predictor, SurrogateSettings, fit_data
from pnas_core.surrogate.bundle import fit_predictors
from pnas_core.training.cache import ResultCache
from pnas_core.training.cost import search_costs
from pnas_core.training.shard import Stop, train_or_get
from pnas_core.training.train import Rung, TrainSettings, train_candidate

if TYPE_CHECKING:
    from pnas_core.training.data import DataSplits

FitFn = Callable[[pd.DataFrame, Sequence[str], SurrogateSettings], dict[str, Predictor]]
"""Fits predictors on fit data (cell, num_blocks, val_acc); :func:`fit_predictors` by default."""


class Evaluator(abc.ABC):
    """Turns candidate cells into training records."""

    epochs: int
    """The full training budget in epochs."""
    eval_every: int = 1
    """Epochs between evaluations (an early-stopping rung must be one of them)."""

    @abc.abstractmethod
    def evaluate(self, cells: Sequence[str], stop: Stop = None) -> pd.DataFrame:
        """One record per cell, in order: at least cell, num_blocks, val_acc, status, epochs; with
        ``stop`` = (stop_at, resume_from), as an early-stopping rung (:func:`pnas_core.training.shard.train_or_get`)."""

    def restrict(self, scored: pa.Table) -> pa.Table:
        """The scored children this evaluator can evaluate (all, unless it knows only some cells)."""
        return scored


class TableEvaluator(Evaluator):
    """Looks cells up in a benchmark table. For each search seed, every cell is observed under one
    of the table's training seeds, drawn independently per cell (``numpy.random.default_rng(seed)``
    over the table's cells in order): each seed sees its own mix of training noise, as a rerun of
    the search would. With ``restrict`` (default: when the table is partial) the search only
    selects among the children the table holds; otherwise a cell outside the table is an error."""

    def __init__(self, table: BenchmarkTable, seed: int = 0, restrict: bool | None = None) -> None:
        self.table = table
        rng = np.random.default_rng(seed)
        pick = rng.integers(0, len(table.seeds), size=len(table.cells))
        self.rows = table.positions[np.arange(len(table.cells)), pick]
        """Row of :attr:`BenchmarkTable.rows` observed for each cell (in ``table.cells`` order)."""
        restrict = not table.complete if restrict is None else restrict
        self.known = pa.array(table.cells["cell"], pa.string()) if restrict else None
        trained = TrainSettings.from_dict(table.settings)  # keys the table leaves out take the defaults
        self.epochs, self.eval_every = trained.epochs, trained.eval_every

    def accuracy(self) -> np.ndarray:
        """Observed validation accuracy of every cell of the table, in ``table.cells`` order."""
        return self.table.rows["val_acc"].to_numpy(dtype=np.float64)[self.rows]

    def evaluate(self, cells: Sequence[str], stop: Stop = None) -> pd.DataFrame:
        """The table's rows (a rung's view of them with ``stop``: :func:`pnas_core.search.early_stop.records_at`)."""
        index = self.table.index
        unknown = [c for c in cells if c not in index]
        if unknown:
            raise PnasError(f"cell {unknown[0]!r} is not in the benchmark table ({len(unknown)} missing)")
        rows = self.rows[[index[c] for c in cells]]
        at = self.epochs if stop is None else stop[0]
        return records_at(self.table.rows.iloc[rows].reset_index(drop=True), at, self.epochs)

    def restrict(self, scored: pa.Table) -> pa.Table:
        if self.known is None:
            return scored
        return scored.filter(pc.is_in(scored.column("cell"), value_set=self.known))


def table_costs(table: BenchmarkTable) -> beam.CostColumns:
    """The children's ``params`` and ``mult_adds`` as the workflow's scoring adds them
    (:func:`pnas_core.training.cost.search_costs` of the table's training settings): exact for every cell of the
    space, so also for children a partial table lacks, and equal to the table's own columns."""
    return search_costs(TrainSettings.from_dict(table.train_settings(table.seeds[0])))


class TrainingEvaluator(Evaluator):
    """Trains each cell with :func:`pnas_core.training.train.train_candidate`; with ``cache_dir``, through
    the workflow's result cache (a cached run is read back, a new one stored). Early-stopping rungs
    resume from their checkpoints in the cache; without a cache each rung trains from epoch 0."""

    def __init__(
        self,
        settings: TrainSettings,
        data: DataSplits | None = None,
        cache_dir: str | os.PathLike[str] | None = None,
        log: Callable[[str], None] | None = None,
    ) -> None:

        self.settings = settings
        self.epochs, self.eval_every = settings.epochs, settings.eval_every
        self.data = settings.load_data() if data is None else data
        self.cache = None if cache_dir is None else ResultCache(cache_dir)
        self.log = log

    def evaluate(self, cells: Sequence[str], stop: Stop = None) -> pd.DataFrame:
        records = []
        for text in cells:
            if self.cache is None:
                rung = None if stop is None else Rung(stop[0])
                record, how = train_candidate(text, self.settings, self.data, rung=rung), "trained"
            else:  # the workflow's own cache logic (pnas_core.training.shard): read, else train under the lock
                record, how, _ = train_or_get(text, self.settings, self.data, self.cache, stop=stop)
            if self.log is not None:
                self.log(f"{text}: val_acc {record['val_acc']} ({record['status']}, {how})")
            records.append(record)
        return pd.DataFrame(records, columns=list(RECORD_COLUMNS))


@dataclasses.dataclass
class SearchResult:
    """What a search trained: ``summary`` (the workflow's summary table: level, models_trained,
    the candidates' columns and the records' columns, in training order) and each level's
    candidates table (Arrow, the beam's schema)."""

    summary: pd.DataFrame
    candidates: list[pa.Table]

    @property
    def best(self) -> pd.Series:
        """The best trained cell (highest val_acc; ties: fewer params, then text)."""
        return best_row(self.summary)


def run_search(
    space: Space,
    evaluator: Evaluator,
    beam_size: int,
    predictors: Sequence[str] = DEFAULT_PREDICTORS,
    selection: Selection | str = DEFAULT_SELECT_BY,
    surrogate: SurrogateSettings | None = None,
    costs: beam.CostColumns | None = None,
    fit: FitFn = fit_predictors,
    log: Callable[[str], None] | None = None,
    early_stop: EarlyStop | None = None,
    progress: Progress | bool = True,
) -> SearchResult:
    """PNAS over ``space`` (B = ``space.max_blocks`` levels) with beam ``beam_size``, as the workflow
    runs it: every 1-block cell, then per level the predictors fit on all records so far, every child
    of the previous level's candidates scored, K of them picked by ``selection`` (a
    :class:`~pnas_core.search.selection.Selection` or a score name, see :func:`pnas_core.search.beam.select`) and
    evaluated.

    ``surrogate`` defaults to the built-in settings with ``max_blocks`` = B and seed 0 (the workflow
    writes ``{**surrogate, max_blocks: B, seed: seed}``); ``costs`` (e.g.
    :func:`pnas_core.training.cost.search_costs`) adds the children's params and mult-adds, which cost budgets
    and Pareto picks need. ``early_stop`` trains each level by successive halving
    (:mod:`pnas_core.search.early_stop`); the predictors then fit on what its ``fit_on`` says.

    ``progress`` (:data:`pnas_core.search.progress.Progress`) is called after each model with (models
    evaluated, models planned, level and best so far); with ``True`` (the default) a terminal gets the
    plan and a tqdm bar on stderr (:class:`~pnas_core.search.progress.TerminalBar`) and anything else
    nothing; ``False``: no progress at all.
    """
    if beam_size < 1:
        raise PnasError(f"beam size must be at least 1, got {beam_size}")
    settings = surrogate or SurrogateSettings(max_blocks=space.max_blocks)
    fit_on = "full" if early_stop is None else early_stop.fit_on
    total = beam.search_budget(space, space.max_blocks, beam_size)
    with TerminalBar(total, "search", "model", enabled=progress is True) as bar:
        bar.say(
            f"run_search: B = {space.max_blocks} levels, K = {beam_size}, {len(space.ops)} ops, "
            f"up to {total} models ({type(evaluator).__name__})"
        )
        tick = _Ticker(total, progress if callable(progress) else bar if bar.active else None)
        candidates = beam.enumerate_level1(space)
        levels = [(candidates, _evaluate_level(evaluator, candidates, early_stop, tick, 1))]
        for b in range(2, space.max_blocks + 1):
            records = pd.concat([rec for _, rec in levels], ignore_index=True)
            fitted = fit(fit_data(records, fit_on), predictors, settings)
            parents = beam.parent_tokens(levels[-1][0], space)
            scored = evaluator.restrict(scoring.expand_and_score(parents, fitted, space, costs))
            candidates = beam.select(scored, beam_size, selection)
            levels.append((candidates, _evaluate_level(evaluator, candidates, early_stop, tick, b)))
            if log is not None:
                log(f"level {b}: {scored.num_rows} children scored, {candidates.num_rows} evaluated")
    summary = join_levels([(cands.to_pandas(), rec) for cands, rec in levels])
    return SearchResult(summary, [cands for cands, _ in levels])


@dataclasses.dataclass
class _Ticker:
    """Counts evaluated models and reports them to a progress callback (None: counts only)."""

    total: int
    report: Progress | None
    done: int = 0
    best: float = float("nan")

    def __call__(self, level: int, records: pd.DataFrame) -> None:
        self.done += len(records)
        accs = records["val_acc"].dropna()
        if len(accs):
            self.best = float(np.fmax(self.best, accs.max()))
        if self.report is not None:
            self.report(self.done, max(self.total, self.done), f"level {level}, best {self.best:.4f}")


def _evaluate_level(
    evaluator: Evaluator, candidates: pa.Table, early_stop: EarlyStop | None, tick: _Ticker, level: int
) -> pd.DataFrame:
    """The level's records: all trained to the full budget (one at a time when progress is reported),
    or by successive halving (reported when the level is done)."""
    cells = candidates.column("cell").to_pylist()
    if early_stop is None:
        if tick.report is None:
            records = evaluator.evaluate(cells)
            tick(level, records)
            return records
        parts = []
        for cell in cells:
            parts.append(evaluator.evaluate([cell]))
            tick(level, parts[-1])
        return pd.concat(parts, ignore_index=True)
    budgets = early_stop.budgets(evaluator.epochs, evaluator.eval_every)
    records = successive_halving(
        cells, lambda c, at, prev: evaluator.evaluate(c, (at, prev)), early_stop, budgets
    )
    tick(level, records)
    return records
