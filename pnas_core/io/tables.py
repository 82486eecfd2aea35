"""Checked reading of the Parquet tables the stages hand each other (candidates, scored children,
training records, summaries, predictor quality, benchmark tables): the one place that says what each
column may hold, so that no file is trusted because pnas might have written it.

A column means the same in every table that has it, so the rules go by column name
(:data:`COLUMNS`, and :data:`PREFIXED` for the predictions ``pred_<p>`` and ``std_<p>``). Every reader
goes through :func:`read_arrow` / :func:`read_frame` (or :func:`check_table` for a table it read
itself), which refuses with one line naming the file, and the row and value where there is one:

- a missing or unreadable file, a missing column, a column of the wrong type (text where numbers
  belong, fractions where counts belong);
- a missing value in an identity column, a number out of range or not finite (an accuracy outside
  [0, 1], a negative or infinite cost), an unknown status or selection; a status ``ok`` or
  ``stopped`` without its accuracy;
- a cell text that does not parse (docs/method.md, "Canonical form"), a ``cell_id`` that is not the
  id of the cell's canonical text, a ``num_blocks`` that is not its size;
- a row repeating the table's key (``unique``: a cell listed twice would shrink the beam).

Cell texts come back canonical: any valid block and half order is accepted.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from pnas_core.errors import PnasError
from pnas_core.names import COSTS, SELECT_BY
from pnas_core.space.cells import MAX_BLOCKS, CellSyntaxError, canonical_texts, cell_id

STATUSES = ("ok", "stopped", "diverged", "failed")
"""How a training run ended (see :mod:`pnas_core.io.records`)."""
SCORED_STATUSES = ("ok", "stopped")
"""Statuses whose record carries an accuracy."""


@dataclass(frozen=True)
class Column:
    """What one column may hold: ``kind`` text, float, int, floats or ints (lists), values in
    ``low..high`` (None: unbounded; numbers must be finite, or NaN where ``nan``: undefined), ``required``
    (no missing value), one of ``choices`` (text)."""

    kind: str
    low: float | None = None
    high: float | None = None
    required: bool = False
    choices: tuple[str, ...] = ()
    nan: bool = False


COLUMNS: dict[str, Column] = {
    "cell": Column("text", required=True),
    "cell_id": Column("text", required=True),
    "parent": Column("text"),
    "num_blocks": Column("int", 1, MAX_BLOCKS, required=True),
    "val_acc": Column("float", 0, 1),
    "val_curve": Column("floats", 0, 1),
    "curve_epochs": Column("ints", 1),
    "train_loss": Column("float", 0),
    "params": Column("int", 0),
    "mult_adds": Column("int", 0),
    "train_seconds": Column("float", 0),
    "epochs": Column("int", 0),
    "batch_size": Column("int", 1),
    "seed": Column("int", 0),
    "candidate_seed": Column("int", 0),
    "status": Column("text", required=True, choices=STATUSES),
    "rank": Column("int", 0, required=True),
    "score": Column("float"),
    "spread": Column("float", 0),
    "front": Column("int", 0),
    "select_by": Column("text", choices=SELECT_BY),
    "ucb_kappa": Column("float", 0),
    "max_params": Column("int", 1),
    "max_mult_adds": Column("int", 1),
    "pareto_cost": Column("text", choices=COSTS),
    "level": Column("int", 1, required=True),
    "models_trained": Column("int", 1, required=True),
    "model": Column("int", 1, required=True),  # a replicate run's model index, 1-based
    "pnas_level": Column("int", 1),  # the PNAS level that trained a replicate run's model (baselines: none)
    "cost": Column("float", 0),  # training cost: mult-adds x images x epochs
    "rho": Column("float", -1, 1, nan=True),  # NaN: constant predictions rank nothing
    "n_train": Column("int", 0),
    "n_eval": Column("int", 0),
}
"""The rule of every column that some table has, by name."""
PREFIXED: dict[str, Column] = {"pred_": Column("float"), "std_": Column("float", 0)}
"""Rules of the prediction columns ``pred_<p>`` (``pred_mean`` too) and ``std_<p>``."""


def column_rule(name: str) -> Column | None:
    """The rule of column ``name`` (None: any content)."""
    if name in COLUMNS:
        return COLUMNS[name]
    return next((rule for prefix, rule in PREFIXED.items() if name.startswith(prefix)), None)


def read_arrow(
    path: str | os.PathLike[str], what: str, columns: Iterable[str] = (), unique: Sequence[str] = ()
) -> pa.Table:
    """Read the Parquet file ``path`` (described as ``what`` in errors), check that it has ``columns``,
    and check it (:func:`check_table`, rows unique by ``unique``)."""
    path = Path(path)
    if not path.is_file():
        raise PnasError(f"{what} file {path} does not exist")
    try:
        table = pq.read_table(path)
    except Exception as exc:  # pyarrow raises several types for a corrupt file
        raise PnasError(f"{what} file {path} is not a readable Parquet file: {exc}") from exc
    missing = [c for c in columns if c not in table.schema.names]
    if missing:
        raise PnasError(f"{what} file {path} lacks column(s) {', '.join(missing)}")
    return check_table(table, f"{what} file {path}", unique)


def read_frame(
    path: str | os.PathLike[str], what: str, columns: Iterable[str] = (), unique: Sequence[str] = ()
) -> pd.DataFrame:
    """:func:`read_arrow` as a pandas DataFrame."""
    return read_arrow(path, what, columns, unique).to_pandas()


def check_table(table: pa.Table, where: str, unique: Sequence[str] = ()) -> pa.Table:
    """``table`` with its cells canonical, after checking every column it has (see the module
    docstring); errors start with ``where`` (e.g. ``candidates file x.parquet``) and name the row.
    ``unique``: columns whose values no two rows share (checked when the table has them all)."""
    table = table.combine_chunks()  # one chunk per column: positions are row numbers
    for name in table.schema.names:
        rule = column_rule(name)
        if rule is not None:
            _check_column(table.column(name), name, rule, where)
    if "cell" in table.schema.names:
        table = _check_cells(table, where)
    if "parent" in table.schema.names:
        parents = table.column("parent").drop_null().to_pylist()
        try:
            canonical_texts(parents)
        except CellSyntaxError as exc:
            raise PnasError(f"{where}: a parent cell does not parse: {exc}") from exc
    if "status" in table.schema.names and "val_acc" in table.schema.names:
        lacking = pc.and_(
            pc.is_in(table.column("status"), value_set=pa.array(SCORED_STATUSES)),
            table.column("val_acc").is_null(),
        )
        _refuse_first(
            np.asarray(lacking),
            where,
            lambda i: f"status {table.column('status')[i].as_py()!r} without val_acc",
        )
    if unique and all(c in table.schema.names for c in unique):
        _check_unique(table, unique, where)
    return table


def _refuse_first(bad: np.ndarray, where: str, describe: Any) -> None:
    """Raise naming the first row where ``bad`` is true, described by ``describe(row)``."""
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise PnasError(f"{where}, row {i}: {describe(i)}")


def _type_ok(kind: str, t: pa.DataType) -> bool:
    if pa.types.is_null(t):
        return True
    if kind in ("floats", "ints"):
        return (pa.types.is_list(t) or pa.types.is_large_list(t)) and _type_ok(kind[:-1], t.value_type)
    if kind == "text":
        return pa.types.is_string(t) or pa.types.is_large_string(t)
    return pa.types.is_integer(t) or pa.types.is_floating(t)  # an int column with nulls may be float


def _check_column(column: pa.ChunkedArray, name: str, rule: Column, where: str) -> None:
    """Refuse a wrong type, a missing required value, a number out of range or not a choice."""
    expected = {
        "text": "text",
        "float": "numbers",
        "int": "integers",
        "floats": "lists of numbers",
        "ints": "lists of integers",
    }[rule.kind]
    if not _type_ok(rule.kind, column.type):
        raise PnasError(f"{where}: column {name!r} holds {column.type}, expected {expected}")
    if rule.required:
        _refuse_first(np.asarray(column.is_null()), where, lambda i: f"{name} is missing")
    if rule.kind == "text":
        if rule.choices:
            bad = pc.and_(pc.invert(pc.is_in(column, value_set=pa.array(rule.choices))), column.is_valid())
            _refuse_first(
                np.asarray(bad),
                where,
                lambda i: f"{name} {column[i].as_py()!r} is not one of {', '.join(rule.choices)}",
            )
        return
    if rule.kind in ("floats", "ints"):
        flat = pc.list_flatten(column)
        rows = np.asarray(pc.list_parent_indices(column))
    else:
        flat, rows = column, np.arange(len(column))
    if pa.types.is_null(flat.type) or len(flat) == 0:
        return
    values = np.asarray(flat.to_numpy(zero_copy_only=False), dtype=np.float64)
    present = ~np.asarray(flat.is_null())
    if rule.nan:
        present &= ~np.isnan(values)
    bad = present & ~np.isfinite(values)
    if rule.kind.startswith("int"):
        bad |= present & np.isfinite(values) & (values != np.floor(values))
    if rule.low is not None:
        bad |= present & (values < rule.low)
    if rule.high is not None:
        bad |= present & (values > rule.high)
    if bad.any():
        k = int(np.flatnonzero(bad)[0])
        low = "-inf" if rule.low is None else f"{rule.low:g}"
        high = "inf" if rule.high is None else f"{rule.high:g}"
        kind = "an integer" if rule.kind.startswith("int") else "a finite number"
        raise PnasError(
            f"{where}, row {int(rows[k])}: {name} holds {flat[k].as_py()!r}, expected {kind} in [{low}, {high}]"
        )


def _check_cells(table: pa.Table, where: str) -> pa.Table:
    """Parse every cell (errors name the row), check ``cell_id`` and ``num_blocks`` against it and put
    the canonical texts in place."""
    texts = table.column("cell").to_pylist()
    try:
        canonical = canonical_texts(texts)
    except CellSyntaxError as exc:
        raise PnasError(f"{where}, {exc}") from exc
    if "cell_id" in table.schema.names:
        ids = table.column("cell_id").to_pylist()
        wrong = np.array([cell_id(c) != i for c, i in zip(canonical, ids, strict=True)], dtype=bool)
        _refuse_first(
            wrong,
            where,
            lambda i: f"cell_id {ids[i]!r} is not the id of cell {texts[i]!r} ({cell_id(canonical[i])})",
        )
    if "num_blocks" in table.schema.names:
        sizes = np.array([c.count(";") + 1 for c in canonical])
        stored = np.asarray(table.column("num_blocks").to_numpy(zero_copy_only=False))
        _refuse_first(
            sizes != stored,
            where,
            lambda i: f"num_blocks {stored[i]} but cell {texts[i]!r} has {sizes[i]} block(s)",
        )
    field = table.schema.field("cell")
    return table.set_column(table.schema.get_field_index("cell"), field, pa.array(canonical, field.type))


def _check_unique(table: pa.Table, unique: Sequence[str], where: str) -> None:
    """Refuse the first row whose ``unique`` values an earlier row has."""
    seen: dict[tuple, int] = {}
    for i, key in enumerate(zip(*(table.column(c).to_pylist() for c in unique), strict=True)):
        first = seen.setdefault(key, i)
        if first != i:
            shown = ", ".join(f"{c} {v!r}" for c, v in zip(unique, key, strict=True))
            raise PnasError(f"{where}, row {i}: repeats row {first} ({shown})")
