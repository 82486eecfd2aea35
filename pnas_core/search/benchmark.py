"""Tabular benchmarks: every distinct cell of a reduced space trained with several seeds, one table.

A table has one row per (cell, training seed) with the columns of :data:`TABLE_SCHEMA` and, in its
Parquet metadata (``pnas.*`` keys), everything needed to retrain any row: the training settings
(JSON, without the seed), their hash, the dataset fingerprint, the ops, B, the seeds, the pnas
version, the CPU kernel path and the torch threads per training. Tables shipped with the package live in ``pnas_core/benchmarks/<name>.parquet`` and load by
name (:func:`load_table`). Needs numpy, pandas and pyarrow only (no torch).
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Mapping, Sequence
from functools import cached_property
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from pnas_core.errors import PnasError
from pnas_core.io.atomic import atomic_path
from pnas_core.io.tables import check_table
from pnas_core.space.cells import Space, tokens_to_texts, unique_rows

TABLE_SCHEMA = pa.schema(
    [
        pa.field("cell", pa.string(), nullable=False),
        pa.field("cell_id", pa.string(), nullable=False),
        pa.field("num_blocks", pa.int8(), nullable=False),
        pa.field("seed", pa.int64(), nullable=False),
        pa.field("val_acc", pa.float64()),
        pa.field("val_curve", pa.list_(pa.float64()), nullable=False),
        pa.field("curve_epochs", pa.list_(pa.int32()), nullable=False),
        pa.field("params", pa.int64(), nullable=False),
        pa.field("mult_adds", pa.int64(), nullable=False),
        pa.field("train_seconds", pa.float64(), nullable=False),
        pa.field("status", pa.string(), nullable=False),
    ]
)
"""One row per (cell, training seed), sorted by num_blocks, cell, seed. ``val_acc`` is null unless
``status == "ok"``; the columns mean what they mean in training records (:mod:`pnas_core.io.records`)."""

METADATA_KEYS = ("settings", "settings_hash", "dataset", "ops", "max_blocks", "seeds", "complete", "version")
"""``pnas.<key>`` entries every table carries (JSON values for settings, ops and seeds; ``complete`` is
``true``, or ``false`` for a partial table of the cells finished so far, built with ``partial=True``).
Tables assembled since version 0.1.0's complete digits table also carry ``pnas.build_cpu``, the
:func:`~pnas_core.devices.cpu_fingerprint` of the machine that assembled them, and since issue 25
``pnas.threads``, the torch threads each training used (accuracies depend on it on the CPU)."""

PREFIX = "pnas."
BUNDLED_DIR = "benchmarks"
"""Folder of the tables shipped inside the package."""


def enumerate_cells(space: Space) -> list[str]:
    """Canonical texts of every distinct cell of 1..B blocks: size by size, each in the order of
    canonical expansion (level 1 in block-table order)."""
    level = space.one_block_tokens()
    texts = tokens_to_texts(level, canonical=True)
    for _ in range(2, space.max_blocks + 1):
        children, _, _ = space.canonical_children(level)
        level = unique_rows(children)
        texts += tokens_to_texts(level, canonical=True)
    return texts


def bundled_tables() -> list[str]:
    """Names of the tables shipped with the package."""
    folder = resources.files("pnas_core") / BUNDLED_DIR
    if not folder.is_dir():
        return []
    return sorted(p.name[: -len(".parquet")] for p in folder.iterdir() if p.name.endswith(".parquet"))


def table_path(name_or_path: str | os.PathLike[str]) -> Path:
    """The file of a bundled table name (e.g. ``digits_b2``) or of an existing path."""
    path = Path(name_or_path)
    if path.is_file():
        return path
    if path.suffix == "" and path.name in bundled_tables():
        return Path(str(resources.files("pnas_core") / BUNDLED_DIR / f"{path.name}.parquet"))
    known = ", ".join(bundled_tables()) or "none"
    raise PnasError(f"benchmark table {str(name_or_path)!r} is neither a file nor a bundled table ({known})")


@dataclasses.dataclass(frozen=True)
class BenchmarkTable:
    """A loaded table: ``rows`` (a DataFrame of :data:`TABLE_SCHEMA`) and its metadata."""

    rows: pd.DataFrame
    settings: dict[str, Any]
    settings_hash: str
    dataset: str
    ops: tuple[str, ...]
    max_blocks: int
    seeds: tuple[int, ...]
    complete: bool
    version: str
    build_cpu: str | None = None
    threads: int | None = None
    """Torch threads per training (``pnas.threads``); None in tables built before it was recorded."""

    @property
    def space(self) -> Space:
        """The space the table enumerates."""
        return Space.from_names(self.ops, self.max_blocks)

    @cached_property
    def cells(self) -> pd.DataFrame:
        """One row per distinct cell, in table order: cell, cell_id, num_blocks, params, mult_adds (the
        search network's cost, the same under every training seed)."""
        first = self.rows.drop_duplicates("cell", keep="first")
        return first[["cell", "cell_id", "num_blocks", "params", "mult_adds"]].reset_index(drop=True)

    @cached_property
    def accuracy(self) -> np.ndarray:
        """Validation accuracy (cells × seeds) in :attr:`cells` and :attr:`seeds` order; NaN where not ok."""
        return self.rows["val_acc"].to_numpy(dtype=np.float64)[self.positions]

    @cached_property
    def positions(self) -> np.ndarray:
        """Row number in :attr:`rows` of each (cell, seed), shape (cells × seeds), in :attr:`cells` order."""
        pos = pd.Series(
            np.arange(len(self.rows)), index=pd.MultiIndex.from_frame(self.rows[["cell", "seed"]])
        )
        keys = pd.MultiIndex.from_product([self.cells["cell"], list(self.seeds)])
        return pos.loc[keys].to_numpy().reshape(len(self.cells), len(self.seeds))

    @cached_property
    def index(self) -> dict[str, int]:
        """Row of each cell text in :attr:`cells`."""
        return {text: i for i, text in enumerate(self.cells["cell"])}

    def train_settings(self, seed: int) -> dict[str, Any]:
        """The training settings of the rows of ``seed`` (a mapping for ``TrainSettings.from_dict``)."""
        if seed not in self.seeds:
            raise PnasError(f"the table has no training seed {seed} (seeds: {list(self.seeds)})")
        return {**self.settings, "seed": seed}


def assemble(
    records: pd.DataFrame,
    space: Space,
    seeds: Sequence[int],
    settings: Mapping[str, Any],
    version: str,
    partial: bool = False,
    build_cpu: str | None = None,
    threads: int | None = None,
) -> pa.Table:
    """The table of every cell of ``space`` under every seed from training records (a records
    DataFrame, see :mod:`pnas_core.io.records`), with its metadata. A missing (cell, seed) is an error,
    unless ``partial``: then the cells trained under every seed so far make a table marked incomplete.
    ``build_cpu`` (the training machine's CPU fingerprint) is stored as ``pnas.build_cpu``, ``threads``
    (torch threads per training) as ``pnas.threads``: with the settings, what a retrain needs."""
    if not seeds or len(set(seeds)) != len(seeds):
        raise PnasError(f"benchmark seeds must be distinct and at least one, got {list(seeds)}")
    cells = enumerate_cells(space)
    hashes, datasets = sorted(set(records["settings_hash"])), sorted(set(records["dataset"]))
    if len(hashes) != 1 or len(datasets) != 1:
        raise PnasError(
            f"records mix settings hashes {hashes} or datasets {datasets}; a table has one of each"
        )
    records = records.drop_duplicates(["cell", "seed"], keep="first").set_index(["cell", "seed"])
    want = pd.MultiIndex.from_product([cells, list(seeds)], names=["cell", "seed"])
    missing = want.difference(records.index)
    if partial:
        lacking = set(missing.get_level_values("cell"))
        want = pd.MultiIndex.from_tuples([k for k in want if k[0] not in lacking], names=want.names)
        if not len(want):
            raise PnasError("no cell of the space has records for every seed yet")
    elif len(missing):
        cell, seed = missing[0]
        raise PnasError(
            f"records lack {len(missing)} of {len(want)} (cell, seed) runs, e.g. {cell!r} seed {seed}"
        )
    rows = records.loc[want].reset_index()
    rows = rows.sort_values(["num_blocks", "cell", "seed"], kind="mergesort", ignore_index=True)
    table = pa.Table.from_pandas(rows[TABLE_SCHEMA.names], schema=TABLE_SCHEMA, preserve_index=False)
    meta = {
        "settings": json.dumps({k: v for k, v in settings.items() if k != "seed"}, sort_keys=True),
        "settings_hash": hashes[0],
        "dataset": datasets[0],
        "ops": json.dumps(list(space.op_names)),
        "max_blocks": str(space.max_blocks),
        "seeds": json.dumps([int(s) for s in seeds]),
        "complete": json.dumps(not (partial and len(missing))),
        "version": version,
    }
    if build_cpu is not None:
        meta["build_cpu"] = build_cpu
    if threads is not None:
        meta["threads"] = str(threads)
    return table.replace_schema_metadata({f"{PREFIX}{k}": v for k, v in meta.items()})


def write_table(table: pa.Table, path: str | os.PathLike[str]) -> None:
    """Write a table atomically (zstd-compressed Parquet)."""
    with atomic_path(path) as tmp:
        pq.write_table(table, tmp, compression="zstd")


def load_table(name_or_path: str | os.PathLike[str]) -> BenchmarkTable:
    """Read a bundled table by name or a table file, checking its schema, metadata and completeness."""
    path = table_path(name_or_path)
    try:
        table = pq.read_table(path)
    except Exception as exc:
        raise PnasError(f"benchmark table {path} is not a readable Parquet file: {exc}") from exc
    if not table.schema.remove_metadata().equals(TABLE_SCHEMA):
        raise PnasError(f"benchmark table {path} does not have the benchmark schema ({table.schema.names})")
    table = check_table(table, f"benchmark table {path}", unique=("cell", "seed"))
    raw = {k.decode(): v.decode() for k, v in (table.schema.metadata or {}).items()}
    missing = [k for k in METADATA_KEYS if PREFIX + k not in raw]
    if missing:
        raise PnasError(f"benchmark table {path} lacks metadata {', '.join(PREFIX + k for k in missing)}")
    meta = {k: raw[PREFIX + k] for k in METADATA_KEYS}
    try:
        out = BenchmarkTable(
            rows=table.to_pandas(),
            settings=json.loads(meta["settings"]),
            settings_hash=meta["settings_hash"],
            dataset=meta["dataset"],
            ops=tuple(json.loads(meta["ops"])),
            max_blocks=int(meta["max_blocks"]),
            seeds=tuple(int(s) for s in json.loads(meta["seeds"])),
            complete=json.loads(meta["complete"]),
            version=meta["version"],
            build_cpu=raw.get(PREFIX + "build_cpu"),
            threads=None if PREFIX + "threads" not in raw else int(raw[PREFIX + "threads"]),
        )
        cells = set(enumerate_cells(out.space)) if out.complete else set(out.cells["cell"])
    except (ValueError, TypeError) as exc:  # malformed JSON, a seed or B that is no integer, unknown ops
        raise PnasError(f"benchmark table {path} has unreadable metadata: {exc}") from exc
    rows_ok = (
        len(out.rows) == len(out.cells) * len(out.seeds) and not out.rows.duplicated(["cell", "seed"]).any()
    )
    if set(out.cells["cell"]) != cells or set(out.rows["seed"]) != set(out.seeds) or not rows_ok:
        raise PnasError(
            f"benchmark table {path} has {len(out.rows)} rows; it needs one for each of "
            f"{len(cells)} cells × {len(out.seeds)} seeds"
        )
    return out
