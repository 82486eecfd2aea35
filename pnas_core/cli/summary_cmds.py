"""``pnas summarize``: the search summary and the best cell."""

from __future__ import annotations

import argparse

from pnas_core.cli.arg_types import output_file
from pnas_core.cli.overwrite import Paths


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``summarize``."""
    p = sub.add_parser("summarize", help="join every level's candidates and records; write the best cell")
    p.add_argument("--candidates", nargs="+", required=True, help="level1..B candidates.parquet, in order")
    p.add_argument("--trained", nargs="+", required=True, help="level1..B trained.parquet, in order")
    p.add_argument("--out", required=True, type=output_file, help="summary Parquet to write")
    p.add_argument("--best", required=True, type=output_file, help="best_cell.txt to write")
    p.add_argument("--csv", default=None, type=output_file, help="also write the summary as CSV")
    p.set_defaults(
        func=run,
        paths=lambda a: Paths(reads=[*a.candidates, *a.trained], writes=[a.out, a.best, a.csv]),
    )


def run(args: argparse.Namespace) -> int:
    """Write the summary and print the best cell."""
    from pnas_core.search.summary import selection_note, summarize, write_summary

    summary = summarize(args.candidates, args.trained)
    best = write_summary(summary, args.out, args.best, args.csv)
    print(f"{len(summary)} trained cells over {summary['level'].max()} levels -> {args.out}")
    note = selection_note(summary)
    if note:
        print(note)
    print(f"best: {best['cell']} (val_acc {best['val_acc']:.4f})")
    return 0
