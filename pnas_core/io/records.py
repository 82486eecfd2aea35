"""Training records: one row per trained candidate, stored as Parquet with an explicit schema.

Columns (:data:`RECORD_SCHEMA`):

- ``cell`` canonical cell text, ``cell_id`` its 16-hex id, ``num_blocks``
- ``val_acc`` validation accuracy in [0, 1] (null unless ``status`` is ``ok`` or ``stopped``; for
  ``stopped``, the accuracy at the epoch it stopped at), ``train_loss`` mean training loss of the
  last epoch (null if none finished)
- ``val_curve`` the learning curve: validation accuracy after each evaluated epoch, listed in
  ``curve_epochs`` (every ``eval_every`` epochs and the last; its last entry equals ``val_acc``;
  a diverged run keeps the evaluations before it diverged)
- ``params`` and ``mult_adds`` of the built network, ``train_seconds`` wall time of the training run
- ``epochs`` epochs run, ``batch_size`` the batch size actually used (halved after a CUDA OOM)
- ``device`` e.g. ``cpu`` or ``cuda:0``, ``seed`` the global seed, ``candidate_seed`` the seed derived
  from it and the cell id
- ``dataset`` the dataset fingerprint, ``settings_hash`` of the training settings
- ``status`` ``ok`` | ``stopped`` (early stopping ended it after ``epochs`` of the full budget, see
  :mod:`pnas_core.search.early_stop`) | ``diverged`` | ``failed`` and ``error`` (text, or null)

File metadata (``pnas.*`` keys) carries the settings JSON and the pnas version.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from pnas_core.errors import PnasError
from pnas_core.io.atomic import atomic_path
from pnas_core.io.tables import check_table

RECORD_SCHEMA = pa.schema(
    [
        pa.field("cell", pa.string(), nullable=False),
        pa.field("cell_id", pa.string(), nullable=False),
        pa.field("num_blocks", pa.int8(), nullable=False),
        pa.field("val_acc", pa.float64()),
        pa.field("val_curve", pa.list_(pa.float64()), nullable=False),
        pa.field("curve_epochs", pa.list_(pa.int32()), nullable=False),
        pa.field("train_loss", pa.float64()),
        pa.field("params", pa.int64(), nullable=False),
        pa.field("mult_adds", pa.int64(), nullable=False),
        pa.field("train_seconds", pa.float64(), nullable=False),
        pa.field("epochs", pa.int32(), nullable=False),
        pa.field("batch_size", pa.int32(), nullable=False),
        pa.field("device", pa.string(), nullable=False),
        pa.field("seed", pa.int64(), nullable=False),
        pa.field("candidate_seed", pa.int64(), nullable=False),
        pa.field("dataset", pa.string(), nullable=False),
        pa.field("settings_hash", pa.string(), nullable=False),
        pa.field("status", pa.string(), nullable=False),
        pa.field("error", pa.string()),
    ]
)
"""The Parquet schema of training records."""

RECORD_COLUMNS: tuple[str, ...] = tuple(RECORD_SCHEMA.names)
RECORD_KEY = ("cell_id", "settings_hash", "dataset", "seed")
"""Columns that identify one training run (the cache key)."""
UNIQUE_RUN = ("cell", "settings_hash", "dataset", "seed")
"""What no two rows of one records file share: :data:`RECORD_KEY` with the canonical cell for its id."""

METADATA_PREFIX = "pnas."


def check_record(row: Mapping[str, Any]) -> None:
    """Raise :class:`PnasError` when ``row`` is not a valid record: a schema column missing or of the
    wrong type, or content that :func:`pnas_core.io.tables.check_table` refuses (a cell text that does not
    parse or is not its ``cell_id``, an accuracy outside [0, 1], an unknown status ...)."""
    missing = [c for c in RECORD_COLUMNS if c not in row]
    if missing:
        raise PnasError(f"record lacks column(s) {', '.join(missing)}")
    try:
        table = pa.Table.from_pylist([{c: row[c] for c in RECORD_COLUMNS}], schema=RECORD_SCHEMA)
    except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, ValueError, OverflowError) as exc:
        raise PnasError(f"record does not match the schema: {exc}") from exc
    canonical = check_table(table, "record").column("cell")[0].as_py()
    if canonical != row["cell"]:
        raise PnasError(f"record cell {row['cell']!r} is not written canonically ({canonical!r})")


def records_table(rows: Iterable[Mapping[str, Any]] | pd.DataFrame) -> pa.Table:
    """A :data:`RECORD_SCHEMA` table from row dicts or a DataFrame (extra columns are an error)."""
    if isinstance(rows, pd.DataFrame):
        df = rows
    else:
        rows = list(rows)
        for r in rows:
            check_record(r)
        df = pd.DataFrame(rows, columns=list(RECORD_COLUMNS))
    extra = sorted(set(df.columns) - set(RECORD_COLUMNS))
    missing = [c for c in RECORD_COLUMNS if c not in df.columns]
    if extra or missing:
        raise PnasError(f"records do not match the schema: missing {missing}, unexpected {extra}")
    df = df[list(RECORD_COLUMNS)].astype({"val_acc": "float64", "train_loss": "float64"})
    nulls = [f.name for f in RECORD_SCHEMA if not f.nullable and df[f.name].isna().any()]
    if nulls:
        raise PnasError(f"records have missing values in required column(s) {', '.join(nulls)}")
    df = df.astype(object).where(df.notna(), None)
    try:
        return pa.Table.from_pandas(df, schema=RECORD_SCHEMA, preserve_index=False)
    except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
        raise PnasError(f"records do not match the schema: {exc}") from exc


def write_records(
    path: str | os.PathLike[str],
    rows: Iterable[Mapping[str, Any]] | pd.DataFrame,
    metadata: Mapping[str, str] | None = None,
) -> None:
    """Write records atomically to a Parquet file with :data:`RECORD_SCHEMA`.

    ``metadata`` values (strings) are stored under ``pnas.<key>`` in the file's schema metadata.
    """
    table = records_table(rows)
    meta = {f"{METADATA_PREFIX}{k}".encode(): str(v).encode() for k, v in (metadata or {}).items()}
    table = table.replace_schema_metadata(meta)
    with atomic_path(path) as tmp:
        pq.write_table(table, tmp)


def read_metadata(path: str | os.PathLike[str]) -> dict[str, str]:
    """The ``pnas.*`` metadata of one records file, keys without the prefix."""
    schema = _read_schema(Path(path))
    raw = schema.metadata or {}
    return {
        k.decode()[len(METADATA_PREFIX) :]: v.decode()
        for k, v in raw.items()
        if k.decode().startswith(METADATA_PREFIX)
    }


def read_records(paths: str | os.PathLike[str] | Sequence[str | os.PathLike[str]]) -> pd.DataFrame:
    """Concatenate records files into one DataFrame (file order, then row order).

    A missing, unreadable or wrong-schema file raises :class:`PnasError` naming it.
    """
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    frames = []
    for p in map(Path, paths):
        schema = _read_schema(p)
        if not schema.remove_metadata().equals(RECORD_SCHEMA):
            diff = _schema_difference(schema)
            raise PnasError(f"records file {p} does not have the training-record schema: {diff}")
        try:
            table = pq.read_table(p, schema=RECORD_SCHEMA)
        except Exception as exc:
            raise PnasError(f"records file {p} is corrupt: {type(exc).__name__}: {exc}") from exc
        frames.append(check_table(table, f"records file {p}", UNIQUE_RUN).to_pandas())
    if not frames:
        return RECORD_SCHEMA.empty_table().to_pandas()
    return pd.concat(frames, ignore_index=True)


def _read_schema(path: Path) -> pa.Schema:
    if not path.is_file():
        raise PnasError(f"records file {path} not found")
    try:
        return pq.read_schema(path)
    except Exception as exc:
        raise PnasError(f"records file {path} is corrupt: {type(exc).__name__}: {exc}") from exc


def _schema_difference(schema: pa.Schema) -> str:
    have = {f.name: f.type for f in schema}
    parts = []
    for f in RECORD_SCHEMA:
        if f.name not in have:
            parts.append(f"missing column {f.name!r}")
        elif have[f.name] != f.type:
            parts.append(f"column {f.name!r} is {have[f.name]}, expected {f.type}")
    extra = sorted(set(have) - set(RECORD_COLUMNS))
    if extra:
        parts.append(f"unexpected column(s) {', '.join(extra)}")
    return "; ".join(parts) or "column order or nullability differs"


def merge_records(paths: Sequence[str | os.PathLike[str]]) -> tuple[pd.DataFrame, dict[str, str]]:
    """Records of several files, duplicates of :data:`RECORD_KEY` dropped (first kept), sorted by
    cell then the key, with the metadata entries that all inputs share."""
    df = read_records(paths)
    df = df.drop_duplicates(subset=list(RECORD_KEY), keep="first")
    df = df.sort_values(["cell", *RECORD_KEY], kind="mergesort", ignore_index=True)
    metas = [read_metadata(p) for p in paths]
    shared = dict(metas[0]) if metas else {}
    for m in metas[1:]:
        shared = {k: v for k, v in shared.items() if m.get(k) == v}
    return df, shared


def settings_metadata(settings: Mapping[str, Any], version: str) -> dict[str, str]:
    """Metadata entries for a records file: the settings as JSON and the pnas version."""
    return {"settings": json.dumps(dict(settings), sort_keys=True), "version": version}
