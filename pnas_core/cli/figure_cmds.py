"""``pnas figures <kind>``: draw the paper's figures from cached Parquet results (nothing is retrained).

Each kind writes ``OUT_DIR/<stem>.png``, ``.pdf`` and ``.csv`` (the plotted numbers).
"""

from __future__ import annotations

import argparse

from pnas_core.cli.arg_types import count, output_dir
from pnas_core.cli.overwrite import Paths
from pnas_core.names import COSTS, DEFAULT_PARETO_COST, FIGURE_STEMS


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``figures`` with one subcommand per figure kind."""
    p = sub.add_parser("figures", help="draw the paper's figures (PNG, PDF and CSV) from cached results")
    kinds = p.add_subparsers(dest="kind", required=True, metavar="KIND")

    q = _kind(
        kinds, "quality", "predictor quality: Spearman rho by b on the fitted size and on b+1 (Table 1)"
    )
    q.add_argument(
        "--quality", nargs="+", required=True, help="Parquet file(s) of 'pnas eval-surrogate', e.g. one per b"
    )
    q.set_defaults(func=run_quality)

    e = _kind(
        kinds, "efficiency", "best and mean-of-top-k accuracy vs models trained, PNAS vs random (Fig. 5)"
    )
    _summary_args(e, random=True)
    e.add_argument("--top-k", type=count, default=5, help="k of the mean-of-top-k curve (default 5)")
    e.set_defaults(func=run_efficiency)

    pr = _kind(
        kinds, "predictions", "accuracy predicted before training vs true accuracy, one panel per level"
    )
    _summary_args(pr, random=False)
    pr.set_defaults(func=run_predictions)

    d = _kind(kinds, "distribution", "validation accuracy per cell size b (box and strip plot)")
    _summary_args(d, random=True)
    d.set_defaults(func=run_distribution)

    pa = _kind(
        kinds, "pareto", "accuracy vs model size with each method's Pareto front and the search's budget"
    )
    _summary_args(pa, random=True)
    pa.add_argument(
        "--size",
        choices=COSTS,
        default=DEFAULT_PARETO_COST,
        help=f"size on the x axis (default {DEFAULT_PARETO_COST})",
    )
    pa.set_defaults(func=run_pareto)

    c = _kind(kinds, "cell", "a cell drawn as a graph (inputs, op boxes, '+' nodes, concat)")
    src = c.add_mutually_exclusive_group(required=True)
    src.add_argument("--best-cell", help="best_cell.txt (the cell text is its first line)")
    src.add_argument("--cell", help="cell text, e.g. '0:sep3x3,1:max3x3;...'")
    c.add_argument("--title", default="Best cell found by the search", help="title above the graph")
    c.set_defaults(func=run_cell)


def _kind(kinds: argparse._SubParsersAction, name: str, help_text: str) -> argparse.ArgumentParser:
    p = kinds.add_parser(name, help=help_text, description=help_text)
    p.add_argument(
        "--out-dir", required=True, type=output_dir, help="folder to write <stem>.png, .pdf and .csv into"
    )
    stem = FIGURE_STEMS[name]
    p.add_argument("--stem", default=stem, help=f"output file stem (default {stem})")
    p.set_defaults(paths=_paths)
    return p


INPUT_OPTIONS = ("quality", "summary", "random_trained", "random_candidates", "best_cell")
"""The options of the figure kinds that name files to read."""


def _paths(args: argparse.Namespace) -> Paths:
    """The figure's input files and the three files it writes."""
    from pnas_core.figures.style import figure_paths

    given = [getattr(args, name, None) for name in INPUT_OPTIONS]
    reads = [p for value in given for p in (value if isinstance(value, list) else [value])]
    return Paths(reads=reads, writes=figure_paths(args.out_dir, args.stem))


def _summary_args(p: argparse.ArgumentParser, random: bool) -> None:
    p.add_argument("--summary", required=True, help="results/<name>/summary.parquet of the PNAS search")
    if random:
        p.add_argument(
            "--random-trained", help="random-search trained.parquet (optional, needs --random-candidates)"
        )
        p.add_argument("--random-candidates", help="random-search candidates.parquet giving the sample order")


def _read_inputs(args: argparse.Namespace):
    """The PNAS summary and, when given, the random-search records in sample order."""
    from pnas_core.errors import PnasError
    from pnas_core.figures.inputs import read_random, read_summary

    summary = read_summary(args.summary)
    random_args = (getattr(args, "random_trained", None), getattr(args, "random_candidates", None))
    if any(random_args) and not all(random_args):
        raise PnasError("--random-trained and --random-candidates go together: give both or neither")
    random = read_random(*random_args) if all(random_args) else None
    return summary, random


def _save(fig, args: argparse.Namespace, table) -> int:
    from pnas_core.figures.style import save_figure

    paths = save_figure(fig, args.out_dir, args.stem, table)
    print(" ".join(str(p) for p in paths))
    return 0


def run_quality(args: argparse.Namespace) -> int:
    """Predictor-quality figure and its mean/std table."""
    from pnas_core.figures.inputs import read_quality
    from pnas_core.figures.quality import quality_figure, quality_table
    from pnas_core.figures.style import figure_style

    table = quality_table(read_quality(args.quality))
    with figure_style():
        return _save(quality_figure(table), args, table)


def run_efficiency(args: argparse.Namespace) -> int:
    """Search-efficiency curves."""
    from pnas_core.errors import PnasError
    from pnas_core.figures.efficiency import efficiency_figure, efficiency_table
    from pnas_core.figures.style import figure_style

    if args.top_k < 1:
        raise PnasError(f"--top-k must be at least 1, got {args.top_k}")
    summary, random = _read_inputs(args)
    table = efficiency_table(summary, random, args.top_k)
    with figure_style():
        return _save(efficiency_figure(table, summary, args.top_k), args, table)


def run_predictions(args: argparse.Namespace) -> int:
    """Predicted-vs-true grid, one column per level >= 2."""
    from pnas_core.figures.levels import predictions_figure, predictions_table, selection_label
    from pnas_core.figures.style import figure_style

    summary, _ = _read_inputs(args)
    table = predictions_table(summary, f"summary {args.summary}")
    with figure_style():
        return _save(predictions_figure(table, selection_label(summary)), args, table)


def run_distribution(args: argparse.Namespace) -> int:
    """Accuracy distribution per cell size."""
    from pnas_core.figures.levels import distribution_figure, distribution_table
    from pnas_core.figures.style import figure_style

    summary, random = _read_inputs(args)
    table = distribution_table(summary, random)
    with figure_style():
        return _save(distribution_figure(table, summary, random), args, table)


def run_pareto(args: argparse.Namespace) -> int:
    """Accuracy-vs-size scatter with Pareto fronts."""
    from pnas_core.figures.pareto import budget, pareto_figure, pareto_table
    from pnas_core.figures.style import figure_style

    summary, random = _read_inputs(args)
    table = pareto_table(summary, random, args.size)
    with figure_style():
        return _save(pareto_figure(table, args.size, budget(summary, args.size)), args, table)


def run_cell(args: argparse.Namespace) -> int:
    """The cell graph."""
    from pnas_core.figures.cell_graph import cell_figure, cell_table
    from pnas_core.figures.inputs import read_cell_text
    from pnas_core.figures.style import figure_style
    from pnas_core.space.cells import parse

    cell = parse(args.cell if args.cell is not None else read_cell_text(args.best_cell))
    with figure_style():
        return _save(cell_figure(cell, args.title), args, cell_table(cell))
