"""A finished run's results in one call, for a notebook: ``pnas_core.results.load("results/<name>")``.

Reads the files the workflow writes (config/README.md): ``summary.parquet`` and ``best_cell.txt``
(required), ``final/metrics.json``, the random-search baseline (``random/trained.parquet`` with
``random/candidates.parquet``) and the replicated searches' ``replicates/strategies.csv`` (each when
the run made it). A missing required file or any malformed file is one :class:`PnasError` naming it.

Stands above the library's layers (it reads what the search, the final training and the figures'
checked readers know), beside the ``pnas`` command.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from pnas_core.errors import PnasError
from pnas_core.figures.inputs import read_cell_text, read_random, read_summary
from pnas_core.io.text_io import read_json
from pnas_core.search.summary import best_row

SUMMARY_FILE = "summary.parquet"
BEST_CELL_FILE = "best_cell.txt"
FINAL_METRICS_FILE = "final/metrics.json"
RANDOM_FILES = ("random/trained.parquet", "random/candidates.parquet")
STRATEGIES_FILE = "replicates/strategies.csv"


@dataclass(frozen=True)
class Results:
    """What a run found.

    Attributes:
        folder: the results folder (``results/<name>``).
        summary: every cell the search trained, in training order (``models_trained`` 1-based): level,
            cell, validation accuracy, status, parameters, multiply-adds, the predictions made before it
            was trained (summary.parquet).
        best: the summary row of the best cell (highest validation accuracy; ties to fewer parameters).
        best_cell: the cell text of best_cell.txt (what the final network stacks).
        final: the final network's metrics (final/metrics.json: test_acc, params, epochs, classes, ...);
            None when the run has not trained it.
        baselines: the baselines' training records by name; ``random_search``: the random-search
            records in sample order with ``models_trained`` (absent when the run has none).
        replicates: the replicated searches' per-strategy table (replicates/strategies.csv); None when
            the run made none.
    """

    folder: Path
    summary: pd.DataFrame
    best: pd.Series
    best_cell: str
    final: dict[str, Any] | None
    baselines: dict[str, pd.DataFrame]
    replicates: pd.DataFrame | None

    def describe(self) -> str:
        """A few lines: models trained, the best cell and its accuracies, the baselines' best."""
        lines = [
            f"{self.folder}: {len(self.summary)} models trained, best cell {self.best_cell} "
            f"(validation accuracy {float(self.best['val_acc']):.4f}, {int(self.best['params']):,} parameters)"
        ]
        if self.final is not None:
            lines.append(f"final network: test accuracy {float(self.final['test_acc']):.4f}")
        for name, df in self.baselines.items():
            ok = df[df["status"] == "ok"]["val_acc"]
            best = f"{float(ok.max()):.4f}" if len(ok) else "none trained"
            lines.append(f"{name}: {len(df)} models trained, best validation accuracy {best}")
        return "\n".join(lines)


def load(folder: str | os.PathLike[str]) -> Results:
    """The :class:`Results` of the run whose outputs are in ``folder`` (``results/<name>``)."""
    root = Path(folder)
    if not root.is_dir():
        raise PnasError(f"results folder {root} does not exist (give results/<name> of a run)")
    summary_path = root / SUMMARY_FILE
    if not summary_path.is_file():
        raise PnasError(f"results folder {root} lacks {SUMMARY_FILE}: the search has not finished there")
    summary = read_summary(summary_path)
    final_path = root / FINAL_METRICS_FILE
    final = read_json(final_path, "final metrics file") if final_path.exists() else None
    if final is not None and not (isinstance(final, dict) and "test_acc" in final):
        raise PnasError(f"final metrics file {final_path} holds no test_acc")
    trained, candidates = (root / f for f in RANDOM_FILES)
    baselines = {"random_search": read_random(trained, candidates)} if trained.exists() else {}
    strategies = root / STRATEGIES_FILE
    return Results(
        folder=root,
        summary=summary,
        best=best_row(summary),
        best_cell=read_cell_text(root / BEST_CELL_FILE),
        final=final,
        baselines=baselines,
        replicates=_read_csv(strategies) if strategies.exists() else None,
    )


def _read_csv(path: Path) -> pd.DataFrame:
    """A CSV file the workflow wrote; PnasError naming it when pandas cannot read it."""
    try:
        return pd.read_csv(path)
    except (OSError, ValueError, pd.errors.ParserError) as exc:
        raise PnasError(f"table {path} is not a readable CSV file: {exc}") from exc
