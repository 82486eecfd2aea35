"""Replicated searches with real training (the workflow's ``replicates`` target; docs/method.md,
"Replicated searches"): one strategy run for one seed through the result cache (``pnas replicate``),
written as a *run* table, and the runs of every seed and strategy read back for
:mod:`pnas_core.search.comparison` (``pnas compare-replicates``).

A run table has one row per model trained, in training order: model (1-based), cell, num_blocks,
pnas_level (PNAS's level; null for the baselines), origin (:data:`pnas_core.search.baselines.ORIGIN`; ``level``
for PNAS), val_acc (null unless ok), status, epochs, params, mult_adds, train_seconds, cost
(:func:`pnas_core.search.comparison.training_cost`), and for PNAS the predictions made before training
(``pred_<p>``, ``pred_mean``), from which the predictors' rank correlation per level follows. Its
metadata (``pnas.*``) holds the strategy, the seed, the budget, the training settings and their hash,
the dataset fingerprint, the CPU kernel path and the torch threads it trained with.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from pnas_core.errors import PnasError
from pnas_core.io.atomic import atomic_path
from pnas_core.io.records import METADATA_PREFIX
from pnas_core.io.tables import read_arrow
from pnas_core.search.baselines import ORIGIN
from pnas_core.search.comparison import Runs, training_cost
from pnas_core.search.strategies import Context, Strategy

RUN_COLUMNS = (
    "model",
    "cell",
    "num_blocks",
    "pnas_level",
    ORIGIN,
    "val_acc",
    "status",
    "epochs",
    "params",
    "mult_adds",
    "train_seconds",
    "cost",
)
"""The columns every run table has, in order (PNAS's prediction columns follow)."""


def run_table(records: pd.DataFrame, train_images: int) -> pd.DataFrame:
    """A strategy's records (a PNAS summary or a baseline's records, in training order) as a run table."""
    n = len(records)
    out = pd.DataFrame(
        {
            "model": np.arange(1, n + 1),
            "cell": records["cell"].to_numpy(),
            "num_blocks": records["num_blocks"].to_numpy().astype(np.int64),
            "pnas_level": records["level"].astype("Int64")
            if "level" in records
            else pd.array([None] * n, "Int64"),
            ORIGIN: records[ORIGIN].to_numpy() if ORIGIN in records else np.full(n, "level", object),
            "val_acc": np.where(records["status"] == "ok", records["val_acc"].astype(np.float64), np.nan),
            "status": records["status"].to_numpy(),
            "epochs": records["epochs"].to_numpy().astype(np.int64),
            "params": records["params"].to_numpy().astype(np.int64),
            "mult_adds": records["mult_adds"].to_numpy().astype(np.int64),
            "train_seconds": records["train_seconds"].to_numpy().astype(np.float64),
            "cost": training_cost(
                records["mult_adds"].to_numpy(), records["epochs"].to_numpy(), train_images
            ),
        }
    )
    predictions = [c for c in records.columns if c.startswith("pred_")]
    for col in predictions:
        out[col] = records[col].to_numpy().astype(np.float64)
    return out


def run_strategy(strategy: Strategy, ctx: Context, train_images: int) -> pd.DataFrame:
    """Run ``strategy`` for ``ctx.seed`` and return its run table (the first ``ctx.budget`` models)."""
    return run_table(strategy.run(ctx).head(ctx.budget).reset_index(drop=True), train_images)


def write_run(table: pd.DataFrame, path: str | os.PathLike[str], metadata: Mapping[str, object]) -> None:
    """Write a run table atomically, ``metadata`` (JSON-encoded values) under ``pnas.<key>``."""
    arrow = pa.Table.from_pandas(table, preserve_index=False)
    meta = {f"{METADATA_PREFIX}{k}".encode(): json.dumps(v).encode() for k, v in metadata.items()}
    with atomic_path(path) as tmp:
        pq.write_table(arrow.replace_schema_metadata(meta), tmp)


def read_run(path: str | os.PathLike[str]) -> tuple[pd.DataFrame, dict[str, object]]:
    """A run table and its metadata; a :class:`PnasError` naming the file if it is not one."""
    arrow = read_arrow(path, "replicate run", RUN_COLUMNS)
    raw = arrow.schema.metadata or {}
    meta = {
        k.decode()[len(METADATA_PREFIX) :]: json.loads(v)
        for k, v in raw.items()
        if k.decode().startswith(METADATA_PREFIX)
    }
    missing = [k for k in ("strategy", "seed") if k not in meta]
    if missing:
        raise PnasError(f"replicate run {path} lacks metadata {', '.join(missing)}")
    return arrow.to_pandas(), meta


def read_runs(
    paths: Sequence[str | os.PathLike[str]], first: str | None = None
) -> tuple[Runs, dict[str, dict[str, object]]]:
    """The runs of every (strategy, seed) as :class:`~pnas_core.search.comparison.Runs` (strategy ``first``
    first, the others in the order first seen; seeds sorted) and each strategy's metadata (of its
    first run). Every strategy must have run every seed exactly once, with one number of models."""
    tables: dict[str, dict[int, pd.DataFrame]] = {}
    metas: dict[str, dict[str, object]] = {}
    for path in paths:
        table, meta = read_run(path)
        name, seed = str(meta["strategy"]), int(meta["seed"])  # type: ignore[call-overload]
        if seed in tables.setdefault(name, {}):
            raise PnasError(f"replicate run {path}: strategy {name!r} has seed {seed} twice")
        tables[name][seed] = table
        metas.setdefault(name, meta)
    if not tables:
        raise PnasError("no replicate runs given")
    if first in tables:
        tables = {first: tables[first], **tables}
    seeds = sorted(next(iter(tables.values())))
    for name, by_seed in tables.items():
        if sorted(by_seed) != seeds:
            raise PnasError(f"strategy {name!r} ran seeds {sorted(by_seed)}, others ran {seeds}")
        sizes = {len(t) for t in by_seed.values()}
        if len(sizes) != 1:
            raise PnasError(f"strategy {name!r} trained {sorted(sizes)} models in different seeds")

    def stack(name: str, col: str) -> np.ndarray:
        return np.stack([tables[name][s][col].to_numpy(np.float64) for s in seeds])

    runs = Runs(
        {n: stack(n, "val_acc") for n in tables},
        {n: stack(n, "cost") for n in tables},
        {n: stack(n, "train_seconds") for n in tables},
        seeds,
    )
    return runs, metas
