"""The beam step (docs/method.md, "The progressive search"): level-1 enumeration, random samples, top-K
selection, and the tables they read and write (expand + score: :mod:`pnas_core.search.scoring`).

Two Parquet tables, each with an explicit schema:

* *scored* (the distinct children of a level, one row per cell up to block order): cell, cell_id,
  num_blocks, parent (the first parent that has the child), then ``pred_<p>`` and ``std_<p>``
  (float32) for every predictor p, then ``pred_mean`` (mean of the predictors' means), then
  (when costed, see :mod:`pnas_core.training.cost`) the search network's exact ``params`` and ``mult_adds``;
* *candidates* (the cells to train): cell, cell_id, num_blocks, parent (nullable), rank (0 = best or
  first), then what picked it (null for enumerated or sampled cells): ``score`` (the value ranked),
  ``spread`` (the prediction's spread), ``front`` (Pareto front, null unless picking by fronts),
  ``params`` and ``mult_adds`` (null when the scored table had no cost), the selection's ``select_by``,
  ``ucb_kappa``, ``max_params``, ``max_mult_adds``, ``pareto_cost`` (see
  :mod:`pnas_core.search.selection`); and the scored table's prediction columns when it came from one.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from pnas_core.errors import PnasError
from pnas_core.io.atomic import atomic_path
from pnas_core.io.tables import read_arrow
from pnas_core.names import DEFAULT_SELECT_BY
from pnas_core.search.selection import COST_BUDGETS, Selection, pick
from pnas_core.space.cells import (
    Space,
    cell_id,
    parse,
    tokens_to_texts,
    unique_rows,
)

"""Score that picks the top K by default: the mean of the rnn, mlp and xgb predictions.

Averaging three predictor families with different inductive biases (sequence model, bag of blocks,
trees on one-hots) cancels part of each one's extrapolation error on the unseen, one block larger
cells that are ranked (the case the search depends on; docs/method.md, "Surrogate predictors"); no single family is best at every b
(the paper found the RNN better on the fitted size and the MLP on b+1)."""

COST_FIELDS = [pa.field("params", pa.int64()), pa.field("mult_adds", pa.int64())]
SELECTION_FIELDS = [
    pa.field("rank", pa.int32(), nullable=False),
    pa.field("score", pa.float32()),
    pa.field("spread", pa.float32()),
    pa.field("front", pa.int32()),
    *COST_FIELDS,
    pa.field("select_by", pa.string()),
    pa.field("ucb_kappa", pa.float32()),
    pa.field("max_params", pa.int64()),
    pa.field("max_mult_adds", pa.int64()),
    pa.field("pareto_cost", pa.string()),
]
"""The candidates table's columns after the base ones: its order and what picked each cell."""

CostColumns = Callable[[np.ndarray], Mapping[str, np.ndarray]]
"""Token rows of equal-size cells -> their ``params`` and ``mult_adds`` (:func:`pnas_core.training.cost.search_costs`)."""

BASE_FIELDS = [
    pa.field("cell", pa.string(), nullable=False),
    pa.field("cell_id", pa.string(), nullable=False),
    pa.field("num_blocks", pa.int32(), nullable=False),
    pa.field("parent", pa.string()),
]


def prediction_fields(predictors: Sequence[str]) -> list[pa.Field]:
    """``pred_<p>``, ``std_<p>`` per predictor, then ``pred_mean`` (none if no predictors)."""
    fields = [pa.field(f"{kind}_{p}", pa.float32()) for p in predictors for kind in ("pred", "std")]
    return [*fields, pa.field("pred_mean", pa.float32())] if predictors else []


def scored_schema(predictors: Sequence[str], costed: bool = False) -> pa.Schema:
    """Schema of a scored table for the given predictor names, with the cost columns if ``costed``."""
    cost = [f.with_nullable(False) for f in COST_FIELDS] if costed else []
    return pa.schema(BASE_FIELDS + prediction_fields(predictors) + cost)


def candidates_schema(predictors: Sequence[str] = ()) -> pa.Schema:
    """Schema of a candidates table, carrying the predictions of the given predictors."""
    return pa.schema([*BASE_FIELDS, *SELECTION_FIELDS, *prediction_fields(predictors)])


def predictor_names(schema: pa.Schema) -> list[str]:
    """Predictor names of a scored or candidates table, from its ``std_<p>`` columns."""
    return [name[4:] for name in schema.names if name.startswith("std_")]


def write_table(table: pa.Table, path: str | os.PathLike[str]) -> None:
    """Write a Parquet table atomically."""
    with atomic_path(path) as tmp:
        pq.write_table(table, tmp)


def read_cell_table(path: str | os.PathLike[str], what: str) -> pa.Table:
    """Read a candidates or scored table, checked (:func:`pnas_core.io.tables.read_arrow`: cells parsed
    and canonical, ids and values checked, each cell once), with errors naming the file and row."""
    return read_arrow(path, what, [f.name for f in BASE_FIELDS], unique=("cell",))


def _table(columns: Mapping[str, pa.Array | pa.ChunkedArray], n: int, schema: pa.Schema) -> pa.Table:
    """A table of ``schema`` from ``columns``; every field not given is null."""
    arrays = [columns[f.name] if f.name in columns else pa.nulls(n, f.type) for f in schema]
    return pa.Table.from_arrays([a.cast(f.type) for a, f in zip(arrays, schema, strict=True)], schema=schema)


def _candidates(texts: Sequence[str], num_blocks: int) -> pa.Table:
    n = len(texts)
    columns = {
        "cell": pa.array(texts, pa.string()),
        "cell_id": pa.array([cell_id(t) for t in texts], pa.string()),
        "num_blocks": pa.array(np.full(n, num_blocks, np.int32)),
        "rank": pa.array(np.arange(n, dtype=np.int32)),
    }
    return _table(columns, n, candidates_schema())


def enumerate_level1(space: Space) -> pa.Table:
    """All 1-block cells of the space (136 with all ops), rank = enumeration order, no scores."""
    return _candidates(tokens_to_texts(space.one_block_tokens()), 1)


def sample_cells(space: Space, b: int, n: int, seed: int) -> pa.Table:
    """``n`` distinct b-block cells (the random-search baseline), rank = draw order.

    Every distinct cell (up to block order) is equally likely: see :meth:`Space.sample_distinct`.
    """
    if not 1 <= b <= space.max_blocks or n < 1:
        raise PnasError(f"cannot draw {n} distinct {b}-block cells from this space")
    drawn = space.sample_distinct(b, n, np.random.default_rng(seed))
    return _candidates(tokens_to_texts(drawn, canonical=True), b)


def search_budget(space: Space, max_blocks: int, beam_size: int) -> int:
    """Models the progressive search trains up to ``max_blocks`` blocks with beam width K: every
    1-block cell, then at each further level b the top K children, or all of them when the space
    holds fewer than K b-block cells (the random-search baseline gets the same budget)."""
    if not 1 <= max_blocks <= space.max_blocks or beam_size < 1:
        raise PnasError(
            f"search budget needs 1 <= max_blocks <= {space.max_blocks} and beam_size >= 1, "
            f"got {max_blocks} and {beam_size}"
        )
    return space.count_distinct(1) + sum(
        space.cap_to_distinct(b, beam_size) for b in range(2, max_blocks + 1)
    )


def parent_tokens(candidates: pa.Table, space: Space) -> np.ndarray:
    """Tokens (P, 4·b) of a candidates table's cells, checked to be in the space and of one size."""
    cells = [space.check(parse(t)) for t in candidates.column("cell").to_pylist()]
    if not cells:
        raise PnasError("the parents table is empty")
    sizes = sorted({c.num_blocks for c in cells})
    if len(sizes) != 1:
        raise PnasError(f"parents must all have the same number of blocks, got sizes {sizes}")
    return unique_rows(np.stack([c.tokens() for c in cells]))


def select(scored: pa.Table, k: int, selection: Selection | str = DEFAULT_SELECT_BY) -> pa.Table:
    """The ``min(k, #rows within budget)`` cells a selection picks (by default the top K by
    ``pred_mean``), best first, as candidates saying what picked them (see :mod:`pnas_core.search.selection`).

    A plain string is ``Selection(by=...)``.
    """
    if isinstance(selection, str):
        selection = Selection(by=selection)
    picks = pick(scored, k, selection)
    top = scored.take(pa.array(picks.rows))
    n = top.num_rows
    columns = {name: top.column(name) for name in top.schema.names}
    columns |= {
        "rank": pa.array(np.arange(n, dtype=np.int32)),
        "score": pa.array(picks.score),
        "spread": pa.array(picks.spread),
        "front": pa.array(picks.front, mask=picks.front < 0),
    }
    keys = selection.to_mapping()  # the columns Selection.from_mapping reads back
    columns["select_by"] = pa.array([keys["select_by"]] * n, pa.string())
    if selection.by == "ucb":
        columns["ucb_kappa"] = pa.array(np.full(n, keys["ucb_kappa"], np.float32))
    for key in COST_BUDGETS:
        if keys[key] is not None:
            columns[key] = pa.array(np.full(n, keys[key], np.int64))
    if selection.pareto:
        columns["pareto_cost"] = pa.array([keys["pareto_cost"]] * n, pa.string())
    return _table(columns, n, candidates_schema(predictor_names(scored.schema)))
