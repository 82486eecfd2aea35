"""Checked readers of the cached results the figures are drawn from.

Every problem (missing file, unreadable Parquet, missing column, empty table) is a
:class:`PnasError` naming the file.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path

import pandas as pd

from pnas_core.errors import PnasError
from pnas_core.io.tables import read_frame
from pnas_core.io.text_io import read_text

SUMMARY_COLUMNS = (
    "level",
    "models_trained",
    "cell",
    "num_blocks",
    "val_acc",
    "params",
    "mult_adds",
    "status",
)
RANDOM_TRAINED_COLUMNS = ("cell", "num_blocks", "val_acc", "params", "mult_adds", "status")
RANDOM_CANDIDATE_COLUMNS = ("cell", "rank")
QUALITY_COLUMNS = ("predictor", "blocks", "repeat", "split", "rho", "n_train", "n_eval")
"""Columns of ``pnas eval-surrogate`` output (``pnas_core.search.quality.QUALITY_SCHEMA``)."""


def read_nonempty(
    path: str | Path, what: str, columns: Iterable[str], unique: Sequence[str] = ()
) -> pd.DataFrame:
    """Read a Parquet file, checked (:func:`pnas_core.io.tables.read_frame`, rows unique by ``unique``),
    with ``columns`` and at least one row."""
    df = read_frame(path, what, columns, unique)
    if df.empty:
        raise PnasError(f"{what} file {path} has no rows")
    return df


def read_summary(path: str | Path) -> pd.DataFrame:
    """The PNAS search summary, in training order (sorted by ``models_trained``)."""
    df = read_nonempty(path, "summary", SUMMARY_COLUMNS, unique=("cell",))
    return df.sort_values("models_trained", kind="stable").reset_index(drop=True)


def read_random(trained: str | Path, candidates: str | Path) -> pd.DataFrame:
    """Random-search training records in sample order, with ``models_trained`` (1-based) added.

    The order is the ``rank`` of each cell in ``candidates``; every trained cell must be a candidate.
    Candidates not (yet) trained are left out.
    """
    rec = read_nonempty(trained, "random-search records", RANDOM_TRAINED_COLUMNS, unique=("cell",))
    cand = read_nonempty(candidates, "random-search candidates", RANDOM_CANDIDATE_COLUMNS, unique=("cell",))
    unknown = sorted(set(rec["cell"]) - set(cand["cell"]))
    if unknown:
        raise PnasError(
            f"random-search records {trained} hold {len(unknown)} cell(s) not in {candidates}, e.g. {unknown[0]!r}"
        )
    df = rec.merge(cand[["cell", "rank"]], on="cell", how="left", validate="one_to_one")
    df = df.sort_values(["rank", "cell"], kind="stable").reset_index(drop=True)
    df.insert(0, "models_trained", range(1, len(df) + 1))
    return df


def read_quality(paths: Sequence[str | Path]) -> pd.DataFrame:
    """The predictor-quality rows of ``pnas eval-surrogate`` files (typically one per b), concatenated.

    A (predictor, blocks, repeat, split) row given twice is an error naming both files' key.
    """
    frames = [read_nonempty(p, "predictor-quality", QUALITY_COLUMNS).assign(_file=str(p)) for p in paths]
    df = pd.concat(frames, ignore_index=True)
    key = ["predictor", "blocks", "repeat", "split"]
    dup = df[df.duplicated(key, keep=False)]
    if not dup.empty:
        first = dup.iloc[0]
        files = sorted(set(dup.loc[(dup[key] == first[key]).all(axis=1), "_file"]))
        raise PnasError(
            f"predictor-quality row (predictor {first['predictor']}, b={first['blocks']}, repeat {first['repeat']}, "
            f"split {first['split']}) appears more than once, in {', '.join(files)}"
        )
    return df.drop(columns="_file")


def read_cell_text(path: str | Path) -> str:
    """The cell text on the first line of ``best_cell.txt``."""
    if not Path(path).exists():
        raise PnasError(f"best-cell file {path} does not exist")
    lines = read_text(path, "best-cell file").splitlines()
    if not lines or not lines[0].strip():
        raise PnasError(f"best-cell file {path} has no cell text on its first line")
    return lines[0].strip()


def ok_accuracy(df: pd.DataFrame) -> pd.Series:
    """Validation accuracy as float, NaN where the training did not end with status ``ok``."""
    return df["val_acc"].astype("float64").where(df["status"] == "ok")
