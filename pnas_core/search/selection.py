"""Which K children to train: the score (a predictor's mean, the mean of all, or an upper confidence
bound), hard cost budgets, and Pareto picks of predicted accuracy against cost.

Pure functions on a scored table's columns (numpy arrays, pyarrow tables), no file I/O, so the workflow's
``pnas select`` and an in-process search loop pick the same cells.

Scores. ``rnn``, ``mlp``, ``xgb``, ``gnn``, ``weighted``: that predictor's mean; ``mean``: the mean of the predictors' means
(``pred_mean``). ``ucb``: ``pred_mean + κ·spread``, where spread is the standard deviation of the pooled
predictions of every predictor's ensemble, each family weighted equally (law of total variance):
``spread² = mean_p(std_p²) + mean_p((pred_p − pred_mean)²)``. It grows where an ensemble's members
disagree and where the families disagree with each other, the two signs that a child lies outside what
the predictors have seen (a single XGBoost model has no spread of its own; with the others it still
adds the families' disagreement). The spread reported with a single predictor's score is its std.

Budgets drop every child above ``max_params`` or ``max_mult_adds`` before anything is ranked.

Pareto picks sort the children into non-dominated fronts of (score: higher is better, cost: lower is
better) and fill the K picks front by front, as NSGA-II fills its population; the front that does not fit
whole is cut by crowding distance (the sum over both objectives of the normalised gap between a point's
two neighbours; the ends of a front count as infinitely far), so the picks spread along it. Ties:
higher score, then lower cost, then cell text.
"""

from __future__ import annotations

import math
import numbers
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from pnas_core.errors import PnasError
from pnas_core.io.settings_io import read_mapping
from pnas_core.limits import MAX_BUDGET
from pnas_core.names import COSTS, DEFAULT_PARETO_COST, DEFAULT_SELECT_BY, SELECT_BY

DEFAULT_KAPPA = 1.0
SELECTION_KEYS = {
    "by": "select_by",
    "kappa": "ucb_kappa",
    "max_params": "max_params",
    "max_mult_adds": "max_mult_adds",
    "pareto": "pareto",
    "pareto_cost": "pareto_cost",
}
"""Each :class:`Selection` field's key in the config's ``search`` section, in a selection settings file
(``settings/selection.json``) and in a candidates table's columns."""
COST_BUDGETS = ("max_params", "max_mult_adds")
"""The budget keys, one per cost column."""


def cost_budgets(max_params: int | None, max_mult_adds: int | None) -> dict[str, int]:
    """The cost columns with a budget (``params``, ``mult_adds``), and the budget."""
    pairs = zip(COSTS, (max_params, max_mult_adds), strict=True)
    return {col: limit for col, limit in pairs if limit is not None}


@dataclass(frozen=True)
class Selection:
    """How to pick K children (see the module docstring). The default picks the top K by ``pred_mean``."""

    by: str = DEFAULT_SELECT_BY
    kappa: float = DEFAULT_KAPPA
    max_params: int | None = None
    max_mult_adds: int | None = None
    pareto: bool = False
    pareto_cost: str = DEFAULT_PARETO_COST

    def __post_init__(self) -> None:
        if self.by not in SELECT_BY:
            raise PnasError(f"cannot select by {self.by!r}: choose one of {', '.join(SELECT_BY)}")
        if not isinstance(self.kappa, int | float) or not math.isfinite(self.kappa) or self.kappa < 0:
            raise PnasError(f"the UCB weight kappa must be a finite number >= 0, got {self.kappa!r}")
        for key in ("max_params", "max_mult_adds"):
            value = getattr(self, key)
            if value is not None and (
                not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= MAX_BUDGET
            ):
                raise PnasError(
                    f"budget {key} must be an integer in 1..{MAX_BUDGET:,} or none, got {value!r}"
                )
        if self.pareto_cost not in COSTS:
            raise PnasError(f"pareto_cost must be params or mult_adds, got {self.pareto_cost!r}")

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any]) -> Selection:
        """The one reader of a selection's keys (:data:`SELECTION_KEYS`), from the config's ``search``
        section, a selection settings file (:func:`load_selection`) or a candidates row (``pareto``
        left out there: a non-null ``pareto_cost`` means Pareto picks); missing or null keys take the
        defaults, a value of the wrong type is an error naming the key."""

        def get(key: str) -> Any:
            value = values.get(key)
            return None if value is None or (isinstance(value, float) and math.isnan(value)) else value

        def number(key: str, integral: bool) -> Any:
            value = get(key)
            if value is not None and (
                isinstance(value, bool | np.bool_)
                or not isinstance(value, numbers.Real)
                or (integral and not float(value).is_integer())
            ):
                raise PnasError(
                    f"selection {key} must be {'an integer' if integral else 'a number'}, got {value!r}"
                )
            return value

        pareto = get("pareto")
        if pareto is not None and not isinstance(pareto, bool | np.bool_):
            raise PnasError(f"selection pareto must be true or false, got {pareto!r}")
        budgets = {key: None if number(key, True) is None else int(get(key)) for key in COST_BUDGETS}
        kappa = number("ucb_kappa", False)
        by, pareto_cost = get("select_by"), get("pareto_cost")
        return cls(  # only a missing or null key takes the default: an empty text is refused
            by=DEFAULT_SELECT_BY if by is None else by,
            kappa=float(kappa if kappa is not None else DEFAULT_KAPPA),
            pareto=bool(pareto) or ("pareto" not in values and pareto_cost is not None),
            pareto_cost=DEFAULT_PARETO_COST if pareto_cost is None else pareto_cost,
            **budgets,
        )

    def to_mapping(self) -> dict[str, Any]:
        """The selection by its keys (:data:`SELECTION_KEYS`): what :meth:`from_mapping` reads back."""
        return {key: getattr(self, field) for field, key in SELECTION_KEYS.items()}

    def describe(self) -> str:
        """What picks, in words: ``ucb (kappa 2) within max_params 50,000, Pareto fronts against params``."""
        text = f"ucb (kappa {self.kappa:g})" if self.by == "ucb" else self.by
        if self.budgets:
            text += " within " + " and ".join(f"max_{c} {limit:,}" for c, limit in self.budgets.items())
        return text + (f", Pareto fronts against {self.pareto_cost}" if self.pareto else "")

    @property
    def budgets(self) -> dict[str, int]:
        """The cost columns with a budget, and the budget."""
        return cost_budgets(self.max_params, self.max_mult_adds)

    @property
    def cost_columns(self) -> list[str]:
        """Cost columns the scored table must have for this selection."""
        needed = set(self.budgets) | ({self.pareto_cost} if self.pareto else set())
        return [c for c in COSTS if c in needed]


def load_selection(path: str | os.PathLike[str]) -> Selection:
    """The selection of a settings file (JSON or YAML, e.g. the workflow's ``settings/selection.json``)
    holding :data:`SELECTION_KEYS`; an unknown key is an error naming it."""
    data = read_mapping(path, "selection")
    if not isinstance(data, Mapping):
        raise PnasError(f"selection settings file {path} must hold a mapping of keys to values")
    unknown = sorted(set(data) - set(SELECTION_KEYS.values()), key=str)
    if unknown:
        raise PnasError(
            f"selection settings file {path}: unknown key(s) {', '.join(map(repr, unknown[:5]))} "
            f"(known: {', '.join(SELECTION_KEYS.values())})"
        )
    null = [
        key
        for key in SELECTION_KEYS.values()
        if key in data and data[key] is None and key not in COST_BUDGETS
    ]
    if null:  # as the config schema: only a cost budget may be null (no budget)
        raise PnasError(f"selection settings file {path}: {null[0]} must not be null")
    try:
        return Selection.from_mapping(data)
    except PnasError as exc:
        raise PnasError(f"selection settings file {path}: {exc}") from exc


class Picks(NamedTuple):
    """Rows of the scored table picked, best first, with the score and spread that ranked them and
    each one's Pareto front (0 = first; -1 when not picking by fronts)."""

    rows: np.ndarray
    score: np.ndarray
    spread: np.ndarray
    front: np.ndarray


def _column(table: pa.Table, name: str, dtype: type) -> np.ndarray:
    if name not in table.schema.names:
        raise PnasError(f"the scored table has no column {name!r}")
    values = table.column(name).to_numpy(zero_copy_only=False)
    if dtype is np.float32:
        values = values.astype(np.float32)
        if not np.all(np.isfinite(values)):
            raise PnasError(f"column {name!r} has missing or non-finite scores")
    elif table.column(name).null_count:
        raise PnasError(f"column {name!r} has missing values")
    return values.astype(dtype)


def pooled_spread(means: list[np.ndarray], stds: list[np.ndarray]) -> np.ndarray:
    """Std of the equal-weight mixture of the predictors' ensembles (see the module docstring)."""
    mean = np.mean(means, axis=0, dtype=np.float64)
    var = np.mean(
        [s.astype(np.float64) ** 2 + (m - mean) ** 2 for m, s in zip(means, stds, strict=True)], axis=0
    )
    return np.sqrt(var).astype(np.float32)


def score_and_spread(
    scored: pa.Table, by: str, kappa: float = DEFAULT_KAPPA
) -> tuple[np.ndarray, np.ndarray]:
    """(score, spread) float32 per row of a scored table for ``by`` (see the module docstring)."""
    names = [n[4:] for n in scored.schema.names if n.startswith("std_")]
    if by in ("mean", "ucb"):
        if not names:
            raise PnasError(f"cannot select by {by!r}: the scored table has no predictions")
        means = [_column(scored, f"pred_{p}", np.float32) for p in names]
        spread = pooled_spread(means, [_column(scored, f"std_{p}", np.float32) for p in names])
        score = _column(scored, "pred_mean", np.float32)
        return (score + np.float32(kappa) * spread if by == "ucb" else score), spread
    if by not in names:
        raise PnasError(
            f"cannot select by {by!r}: the scored table has {', '.join([*names, 'mean', 'ucb']) or 'no'} scores"
        )
    return _column(scored, f"pred_{by}", np.float32), _column(scored, f"std_{by}", np.float32)


def within_budget(costs: dict[str, np.ndarray], budgets: dict[str, int], cells: pa.Array) -> np.ndarray:
    """Mask of the rows within every budget (``budgets``: cost column -> limit). No row within them is
    an error naming the cheapest child's cost."""
    keep = np.ones(len(cells), dtype=bool)
    for col, limit in budgets.items():
        keep &= costs[col] <= limit
    if keep.any() or not budgets:
        return keep
    asked = " and ".join(f"max_{col} {limit:,}" for col, limit in budgets.items())
    cheapest = []
    for col in budgets:
        i = int(np.argmin(costs[col]))
        others = ", ".join(f"{costs[c][i]:,} {c}" for c in budgets if c != col)
        cheapest.append(
            f"{costs[col][i]:,} {col}{f' ({others})' if others else ''}, cell {cells[i].as_py()!r}"
        )
    raise PnasError(f"no child meets the budget {asked}: the cheapest has {'; by '.join(cheapest)}")


def pareto_fronts(score: np.ndarray, cost: np.ndarray, need: int | None = None) -> np.ndarray:
    """Non-dominated front of each row (0 = first) for maximising ``score`` and minimising ``cost``.

    A row dominates another if it is no worse in both and better in one. Fronts are peeled one at a
    time (each peel vectorised: rows sorted by cost, then by score descending, are on the front when
    they beat the best score of every cheaper row and tie the best of their own cost); peeling stops
    once ``need`` rows have a front, and rows left without one get -1.
    """
    n = len(score)
    front = np.full(n, -1, dtype=np.int32)
    rest = np.lexsort((-score.astype(np.float64), cost))
    need = n if need is None else min(need, n)
    taken, level = 0, 0
    while taken < need:
        s, c = score[rest], cost[rest]
        starts = np.flatnonzero(np.r_[True, c[1:] != c[:-1]])
        group = np.repeat(starts, np.diff(np.r_[starts, len(c)]))  # first row of each row's cost group
        best_before = np.r_[-np.inf, np.maximum.accumulate(s)][group]  # best score of cheaper rows
        on_front = (s > best_before) & (s == s[group])
        front[rest[on_front]] = level
        rest = rest[~on_front]
        taken += int(on_front.sum())
        level += 1
    return front


def crowding_distance(score: np.ndarray, cost: np.ndarray) -> np.ndarray:
    """NSGA-II crowding distance of the points of one front (both objectives normalised by their range;
    the two ends of an objective that varies count as infinitely far)."""
    distance = np.zeros(len(score))
    for values in (score.astype(np.float64), cost.astype(np.float64)):
        order = np.argsort(values, kind="stable")
        v = values[order]
        if len(v) == 0 or v[0] == v[-1]:
            continue
        padded = np.r_[-np.inf, v, np.inf]
        gaps = np.where(padded[2:] == padded[:-2], 0.0, padded[2:] - padded[:-2])
        distance[order] += gaps / (v[-1] - v[0])
    return distance


def _order(cells: pa.Array, *keys: tuple[np.ndarray, str]) -> np.ndarray:
    """Indices sorting rows by ``keys`` ((values, "ascending"|"descending"), ...), then cell text."""
    table = pa.table({f"k{i}": values for i, (values, _) in enumerate(keys)} | {"cell": cells})
    sort_keys = [(f"k{i}", how) for i, (_, how) in enumerate(keys)] + [("cell", "ascending")]
    return pc.sort_indices(table, sort_keys=sort_keys).to_numpy()


def pick(scored: pa.Table, k: int, selection: Selection) -> Picks:
    """The ``min(k, #rows within budget)`` rows a selection picks from a scored table, best first."""
    if k < 1:
        raise PnasError(f"--k must be at least 1, got {k}")
    if scored.num_rows == 0:
        raise PnasError("the scored table is empty")
    missing = [c for c in selection.cost_columns if c not in scored.schema.names]
    if missing:
        raise PnasError(
            f"the scored table has no {' or '.join(missing)} column: budgets and Pareto picks need "
            "'pnas expand-score --settings <train settings>'"
        )
    score, spread = score_and_spread(scored, selection.by, selection.kappa)
    costs = {c: _column(scored, c, np.int64) for c in selection.cost_columns}
    rows = np.flatnonzero(within_budget(costs, selection.budgets, scored.column("cell")))
    cells = scored.column("cell").take(pa.array(rows))
    score, spread, costs = score[rows], spread[rows], {c: v[rows] for c, v in costs.items()}
    if not selection.pareto:
        top = _order(cells, (score, "descending"))[:k]
        return Picks(rows[top], score[top], spread[top], np.full(len(top), -1, np.int32))
    cost = costs[selection.pareto_cost]
    front = pareto_fronts(score, cost, need=k)
    last = front.max()
    chosen = np.flatnonzero((front >= 0) & (front < last))
    cut = np.flatnonzero(front == last)
    if len(chosen) + len(cut) > k:  # the last front does not fit whole: keep its least crowded points
        crowd = crowding_distance(score[cut], cost[cut])
        keep = _order(
            cells.take(pa.array(cut)),
            (crowd, "descending"),
            (score[cut], "descending"),
            (cost[cut], "ascending"),
        )
        cut = cut[keep[: k - len(chosen)]]
    chosen = np.r_[chosen, cut]
    top = chosen[
        _order(
            cells.take(pa.array(chosen)),
            (front[chosen], "ascending"),
            (score[chosen], "descending"),
            (cost[chosen], "ascending"),
        )
    ]
    return Picks(rows[top], score[top], spread[top], front[top])
