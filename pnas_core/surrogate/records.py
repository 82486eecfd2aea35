"""Training records (Parquet, written by the training jobs) as predictor fit data."""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np
import pandas as pd

from pnas_core.errors import PnasError
from pnas_core.io.records import UNIQUE_RUN
from pnas_core.io.tables import read_frame

REQUIRED_COLUMNS = ("cell", "num_blocks", "val_acc", "status")


def read_fit_records(paths: Sequence[str | os.PathLike[str]]) -> pd.DataFrame:
    """Concatenate record files, each checked (:func:`pnas_core.io.tables.read_frame`) and holding the
    columns the predictors need."""
    if not paths:
        raise PnasError("no records files given")
    frames = [read_frame(path, "records", REQUIRED_COLUMNS, unique=UNIQUE_RUN) for path in paths]
    return pd.concat(frames, ignore_index=True)


def fit_data(records: pd.DataFrame, fit_on: str = "full") -> pd.DataFrame:
    """Rows with status "ok", one per cell (``val_acc`` averaged over repeats), sorted by cell text;
    with ``fit_on="all"`` also the rows early stopping ended (status "stopped", their accuracy at
    the epoch they stopped at; see :mod:`pnas_core.search.early_stop`).

    Columns: cell, num_blocks, val_acc.
    """
    ok = records[records["status"].isin(("ok", "stopped") if fit_on == "all" else ("ok",))]
    if ok.empty:
        raise PnasError("no records with status 'ok' to fit on")
    acc = ok["val_acc"].to_numpy(dtype=np.float64)
    if not np.all(np.isfinite(acc)) or acc.min() < 0 or acc.max() > 1:
        raise PnasError("records have val_acc outside [0, 1] for status 'ok' rows")
    out = ok.groupby("cell", sort=True).agg(num_blocks=("num_blocks", "first"), val_acc=("val_acc", "mean"))
    return out.reset_index()
