"""Replicated-search commands: ``replicate`` (one strategy, one seed, real training through the
result cache) and ``compare-replicates`` (every seed and strategy: tables, figure, printed
comparison). Heavy imports happen inside the command functions."""

from __future__ import annotations

import argparse
import sys

from pnas_core.cli.arg_types import count, folder_path, int_range, output_dir, output_file
from pnas_core.cli.overwrite import Paths
from pnas_core.space.cells import MAX_BLOCKS, OPS

REPLICATE_FILES = ("comparison.parquet", "strategies.csv", "paired.csv", "reach.csv", "comparison.txt")
"""What ``compare-replicates`` writes into its folder besides the figure (replicates.png/.pdf/.csv)."""


def register(sub: argparse._SubParsersAction) -> None:
    """Add the replicate commands."""
    p = sub.add_parser(
        "replicate",
        help="run one search strategy for one seed, training through the result cache",
        description="The seed is the training settings' seed: it seeds every candidate's training and "
        "the strategy's own draws (PNAS's predictors, the random cells, mutations, neighbour orders).",
    )
    p.add_argument(
        "--strategy",
        required=True,
        help="strategy text as pnas simulate takes it: pnas[:BY[:P1+P2]][@options], "
        "pnas-es:R1+R2:KEEP[:FIT_ON[:BY[:P1+P2]]], random, evolution[@population=P,sample=S], local",
    )
    p.add_argument(
        "--selection",
        default=None,
        help="selection settings of a pnas or pnas-es strategy (the workflow's settings/selection.json), "
        "in place of the text's @options; the text's BY must be its select_by",
    )
    p.add_argument("--name", required=True, help="the strategy's name in the comparison (e.g. pnas)")
    p.add_argument("--settings", required=True, help="training settings JSON/YAML (its seed is the seed)")
    p.add_argument(
        "--surrogate-settings", default=None, help="predictor settings for PNAS (default: built-in)"
    )
    p.add_argument(
        "--ops", nargs="+", default=None, metavar="OP", help=f"op subset (default all: {' '.join(OPS)})"
    )
    p.add_argument("--max-blocks", type=int_range(1, MAX_BLOCKS), required=True, help="B")
    p.add_argument("--beam-size", type=count, required=True, help="K of the search whose budget is used")
    p.add_argument("--budget", type=count, default=None, help="models to train (default: PNAS's budget)")
    p.add_argument("--cache-dir", required=True, type=folder_path, help="the result cache")
    p.add_argument("--threads", type=count, default=None, help="torch threads (default $PNAS_THREADS or all)")
    p.add_argument("--out", required=True, type=output_file, help="run table Parquet to write")
    p.set_defaults(func=run_replicate, paths=_replicate_paths)

    p = sub.add_parser(
        "compare-replicates", help="compare replicated searches: tables, figure and printed statistics"
    )
    p.add_argument("--runs", nargs="+", required=True, help="run tables written by pnas replicate")
    p.add_argument(
        "--reference",
        default="pnas",
        help="the strategy compared with every other one, the baselines (default pnas)",
    )
    p.add_argument("--top-k", type=count, default=5, help="k of the top-k mean (default 5)")
    p.add_argument(
        "--out-dir",
        required=True,
        type=output_dir,
        help=f"folder for {', '.join(REPLICATE_FILES)}, replicates.*",
    )
    p.set_defaults(func=run_compare, paths=_compare_paths)


def _replicate_paths(args: argparse.Namespace) -> Paths:
    """The settings replicate reads, the run table it writes."""
    return Paths(reads=[args.settings, args.surrogate_settings, args.selection], writes=[args.out])


def _compare_paths(args: argparse.Namespace) -> Paths:
    """The run tables compare-replicates reads, the tables and figure it writes."""
    from pnas_core.figures.style import figure_paths

    return Paths(
        reads=args.runs,
        writes=[
            *(args.out_dir / name for name in REPLICATE_FILES),
            *figure_paths(args.out_dir, "replicates"),
        ],
    )


def run_replicate(args: argparse.Namespace) -> int:
    """Run the strategy through the cache and write its run table."""
    import dataclasses
    import time

    from pnas_core import __version__
    from pnas_core.devices import cpu_fingerprint, pick_device, set_threads
    from pnas_core.search import beam
    from pnas_core.search.progressive import TrainingEvaluator
    from pnas_core.search.replicates import run_strategy, write_run
    from pnas_core.search.selection import load_selection
    from pnas_core.search.strategies import Context, parse_strategy
    from pnas_core.space.cells import Space
    from pnas_core.surrogate import SurrogateSettings
    from pnas_core.training.cost import search_costs
    from pnas_core.training.train import load_settings

    selection = None if args.selection is None else load_selection(args.selection)
    strategy = parse_strategy(args.strategy, selection)
    threads = set_threads(args.threads)
    settings = load_settings(args.settings)
    settings = dataclasses.replace(settings, device=str(pick_device(settings.device)))  # not hashed
    space = Space.from_names(args.ops, args.max_blocks)
    budget = args.budget or beam.search_budget(space, args.max_blocks, args.beam_size)
    surrogate = (
        SurrogateSettings()
        if args.surrogate_settings is None
        else SurrogateSettings.from_file(args.surrogate_settings)
    )

    def log(line: str) -> None:
        print(line, file=sys.stderr, flush=True)

    evaluator = TrainingEvaluator(settings, cache_dir=args.cache_dir, log=log)
    ctx = Context(
        space, evaluator, settings.seed, budget, args.beam_size, surrogate, costs=search_costs(settings)
    )
    log(
        f"pnas replicate: {args.name} ({args.strategy}), seed {settings.seed}, {budget} models, dataset "
        f"{evaluator.data.fingerprint}, settings {settings.settings_hash()}, {threads} thread(s)"
    )
    start, cpu = time.perf_counter(), time.process_time()
    table = run_strategy(strategy, ctx, len(evaluator.data.train_y))
    meta = {
        "strategy": args.name,
        "strategy_text": args.strategy,
        "selection": None if selection is None else selection.to_mapping(),
        "seed": settings.seed,
        "budget": budget,
        "settings": settings.to_dict(),
        "settings_hash": settings.settings_hash(),
        "dataset": evaluator.data.fingerprint,
        "cpu": cpu_fingerprint(),
        "threads": threads,
        "version": __version__,
    }
    write_run(table, args.out, meta)
    best = table["val_acc"].max()
    print(
        f"{args.name}, seed {settings.seed}: {len(table)} models, best {best:.4f}, "
        f"wall {time.perf_counter() - start:.1f} s, CPU {time.process_time() - cpu:.1f} s -> {args.out}"
    )
    return 0


def run_compare(args: argparse.Namespace) -> int:
    """Read every run, write the comparison table, the summaries, the figure, and print them."""
    from pnas_core.errors import PnasError
    from pnas_core.figures.replicates import figure_table, replicates_figure
    from pnas_core.figures.style import figure_style, save_figure
    from pnas_core.io.atomic import atomic_path, write_text
    from pnas_core.search import comparison
    from pnas_core.search.replicates import read_runs

    runs, metas = read_runs(args.runs, first=args.reference)
    if args.reference not in runs.strategies:
        raise PnasError(f"--reference {args.reference!r} is not among the runs' strategies {runs.strategies}")
    against = runs.strategies[1:]
    summary = comparison.strategy_summary(runs, args.top_k)
    paired = comparison.paired_differences(runs, against, args.top_k)
    reach = comparison.reach_baseline(runs, against, args.top_k)
    text = comparison.format_comparison(summary, paired, reach, len(runs.seeds), args.top_k)
    meta = metas[args.reference]
    machine = f"CPU kernel path: {meta.get('cpu')}; torch threads per training: {meta.get('threads')}"
    text = f"Seeds {runs.seeds}; {machine}\n{text}\n"
    out = args.out_dir
    with atomic_path(out / "comparison.parquet") as tmp:
        comparison.long_table(runs, args.top_k).to_parquet(tmp, index=False)
    for name, frame in (("strategies", summary), ("paired", paired), ("reach", reach)):
        with atomic_path(out / f"{name}.csv") as tmp:
            frame.to_csv(tmp, index=False, float_format="%.6g", lineterminator="\n")
    write_text(out / "comparison.txt", text)
    by_models = comparison.curves(runs.accuracy, args.top_k)
    by_compute = comparison.compute_curves(runs, args.top_k)
    with figure_style():
        figure = replicates_figure(by_models, by_compute, len(runs.seeds), args.top_k)
        save_figure(figure, out, "replicates", figure_table(by_models, by_compute))
    print(text, end="")
    return 0
