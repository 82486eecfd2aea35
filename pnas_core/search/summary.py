"""The search summary: every trained cell with its level, accuracy, size and the predictions made
before it was trained, and the best cell."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from pnas_core.errors import PnasError
from pnas_core.io.atomic import atomic_path, write_text
from pnas_core.io.report_text import Headline
from pnas_core.io.tables import read_frame
from pnas_core.search.selection import Selection


def summarize(candidates: Sequence[str | Path], trained: Sequence[str | Path]) -> pd.DataFrame:
    """Join each level's candidates (rank, parent, predictions, and what picked them: score, spread,
    Pareto front, the selection and its budgets) with its training records.

    Rows are ordered by level, then rank: the order in which the search trained them, so
    ``models_trained`` (1-based) is the x axis of the paper's efficiency plots.
    """
    if len(candidates) != len(trained) or not candidates:
        raise PnasError("summarize needs one candidates file per trained file, level by level")
    levels = [
        (
            read_frame(cand_path, "candidates", ("cell", "rank"), unique=("cell",)),
            read_frame(
                trained_path, "trained records", ("cell", "val_acc", "status", "params"), unique=("cell",)
            ),
        )
        for cand_path, trained_path in zip(candidates, trained, strict=True)
    ]
    return join_levels(levels, [(str(t), str(c)) for c, t in zip(candidates, trained, strict=True)])


def join_levels(
    levels: Sequence[tuple[pd.DataFrame, pd.DataFrame]], sources: Sequence[tuple[str, str]] | None = None
) -> pd.DataFrame:
    """The summary of ``(candidates, records)`` frames, level by level (see :func:`summarize`);
    ``sources`` names each level's (records, candidates) in errors."""
    frames = []
    for level, (cand, rec) in enumerate(levels, start=1):
        missing = set(cand["cell"]) - set(rec["cell"])
        if missing:
            rec_name, cand_name = sources[level - 1] if sources else (f"level {level} records", "candidates")
            raise PnasError(
                f"{rec_name} lacks {len(missing)} candidates of {cand_name}, e.g. {sorted(missing)[0]!r}"
            )
        rec = rec.drop(
            columns=[c for c in ("cell_id", "num_blocks") if c in cand.columns and c in rec.columns]
        )
        # the cost the selection saw is the cost training measured: the record's columns are kept
        cand = cand.drop(
            columns=[c for c in ("params", "mult_adds") if c in cand.columns and c in rec.columns]
        )
        merged = cand.merge(rec, on="cell", how="left", validate="one_to_one")
        merged.insert(0, "level", level)
        frames.append(merged.sort_values("rank", kind="stable"))
    summary = pd.concat(frames, ignore_index=True)
    summary.insert(1, "models_trained", range(1, len(summary) + 1))
    return summary


def selection_note(summary: pd.DataFrame) -> str:
    """One line per level >= 2 saying how its cells were picked (empty when no level was selected)."""
    if "select_by" not in summary.columns:
        return ""
    lines = []
    for level, part in summary.dropna(subset=["select_by"]).groupby("level", sort=True):
        selection = Selection.from_mapping(part.iloc[0].to_dict())
        line = f"level {level}: {len(part)} cells by {selection.describe()}"
        if selection.pareto:
            line += f" ({int((part['front'] == 0).sum())} of {len(part)} from the first front)"
        lines.append(line)
    return "\n".join(lines)


def best_row(summary: pd.DataFrame) -> pd.Series:
    """The best trained cell: highest validation accuracy; ties go to fewer parameters, then text."""
    ok = summary[summary["status"] == "ok"]
    if ok.empty:
        raise PnasError("no candidate trained successfully: every status is 'diverged' or 'failed'")
    return ok.sort_values(["val_acc", "params", "cell"], ascending=[False, True, True], kind="stable").iloc[0]


def headline(summary: pd.DataFrame, random: pd.DataFrame | None = None) -> Headline:
    """The landing page's numbers from the summary and, where random search ran, its records (both
    with ``models_trained``): the best cell's validation accuracy, the models PNAS trained, and each
    method's best validation accuracy (status ok) within the random search's number of models."""
    best = best_row(summary)
    if random is None:
        return Headline(float(best["val_acc"]), len(summary))
    n = len(random)
    early = summary[(summary["models_trained"] <= n) & (summary["status"] == "ok")]
    ok = random[random["status"] == "ok"]
    return Headline(
        float(best["val_acc"]),
        len(summary),
        random_models=n,
        random_best=float(ok["val_acc"].max()) if len(ok) else float("nan"),
        pnas_best_at_random=float(early["val_acc"].max()) if len(early) else float("nan"),
    )


def write_summary(
    summary: pd.DataFrame, out: str | Path, best_out: str | Path, csv_out: str | Path | None = None
) -> pd.Series:
    """Write the summary Parquet (and optionally CSV, for reading and the report) and
    ``best_cell.txt`` (cell text on line 1, facts below), all atomically."""
    with atomic_path(out) as tmp:
        summary.to_parquet(tmp, index=False)
    if csv_out is not None:
        with atomic_path(csv_out) as tmp:
            summary.to_csv(tmp, index=False, float_format="%.6g")
    best = best_row(summary)
    write_text(
        best_out,
        f"{best['cell']}\n"
        f"# level {best['level']}, val_acc {best['val_acc']:.4f}, params {int(best['params']):,}, "
        f"trained as model {best['models_trained']} of {len(summary)}\n",
    )
    return best
