"""Checked Parquet reading: every problem (missing file, unreadable Parquet, missing column) is a
:class:`PnasError` naming the file and what it should hold."""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from pnas_core.errors import PnasError


def read_arrow(path: str | os.PathLike[str], what: str, columns: Iterable[str] = ()) -> pa.Table:
    """Read the Parquet file ``path`` (described as ``what`` in errors) and check its ``columns``."""
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
    return table


def read_frame(path: str | os.PathLike[str], what: str, columns: Iterable[str] = ()) -> pd.DataFrame:
    """:func:`read_arrow` as a pandas DataFrame."""
    return read_arrow(path, what, columns).to_pandas()
