"""Benchmark-table commands: ``bench-cells``, ``bench-table``, ``simulate``, ``bench-quality``.
Heavy imports happen inside the command functions."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from pnas_core.cli.arg_types import output_dir, output_file, threads
from pnas_core.cli.overwrite import Paths
from pnas_core.names import DEFAULT_PREDICTORS, PREDICTORS
from pnas_core.space.cells import MAX_BLOCKS, OPS

DEFAULT_TABLE = "digits_b2"
BASELINE_KINDS = ("random", "evolution", "local")
"""Strategy kinds that are baselines: every other strategy is compared with each of them, seed by seed."""
DEFAULT_STRATEGIES = (
    "pnas:mean",
    "pnas:rnn",
    "pnas:mlp",
    "pnas:xgb",
    "random",
)  # simulate.DEFAULT_STRATEGIES


def _table_and_settings(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--table", default=DEFAULT_TABLE, help=f"bundled table name or file (default {DEFAULT_TABLE})"
    )
    parser.add_argument(
        "--settings", default=None, help="surrogate settings JSON/YAML (default: the simulation preset)"
    )


def register(sub: argparse._SubParsersAction) -> None:
    """Add the benchmark commands."""
    p = sub.add_parser("bench-cells", help="every distinct cell of 1..B blocks as a candidates table")
    p.add_argument(
        "--ops", nargs="+", default=None, metavar="OP", help=f"op subset (default all: {' '.join(OPS)})"
    )
    p.add_argument("--max-blocks", type=int, required=True, help=f"B (1..{MAX_BLOCKS})")
    p.add_argument("--out", required=True, type=output_file, help="candidates Parquet to write")
    p.set_defaults(func=run_cells)

    p = sub.add_parser(
        "bench-table", help="assemble a benchmark table from training records, one file per seed"
    )
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--trained", nargs="+", type=Path, help="merged records, one file per seed")
    src.add_argument(
        "--cache-dir",
        type=Path,
        help="read the records from a result cache instead (with --settings; e.g. while a build runs)",
    )
    p.add_argument(
        "--settings", nargs="+", type=Path, help="with --cache-dir: train settings, one file per seed"
    )
    p.add_argument("--ops", nargs="+", default=None, metavar="OP", help="op subset of the table's space")
    p.add_argument("--max-blocks", type=int, required=True, help="B of the table's space")
    p.add_argument(
        "--threads",
        type=threads,
        required=True,
        help="torch threads each training used (the workflow's train_threads), recorded for retraining",
    )
    p.add_argument("--partial", action="store_true", help="allow missing cells (a table marked incomplete)")
    p.add_argument("--out", required=True, type=output_file, help="table Parquet to write")
    p.set_defaults(
        func=run_table, paths=lambda a: Paths(reads=[*(a.trained or []), *(a.settings or [])], writes=[a.out])
    )

    p = sub.add_parser("simulate", help="replay PNAS and random search on a benchmark table over many seeds")
    _table_and_settings(p)
    p.add_argument("--seeds", type=int, default=50, help="search seeds 0..N-1 (default 50)")
    p.add_argument(
        "--strategies",
        nargs="+",
        default=list(DEFAULT_STRATEGIES),
        metavar="S",
        help="KIND[:ARGS][@KEY=VALUE,..]: pnas[:BY[:P1+P2]] (BY: mean, ucb, rnn, mlp, xgb, gnn, weighted) with options kappa=K (BY ucb), "
        "max_params=N, max_mult_adds=N, pareto=params|mult_adds; pnas-es:R1+R2:KEEP[:FIT_ON[:BY[:P1+P2]]] "
        "(early stopping at epochs R1, R2 keeping the share KEEP; same options); random with options max_params=N, "
        "max_mult_adds=N (draws among the B-block cells within budget); evolution with options population=P, "
        "sample=S (default 20, 5); local; e.g. pnas:ucb@kappa=2 "
        "pnas:mean@max_params=48000 random@max_params=48000 pnas:mean@pareto=params "
        "(default: " + " ".join(DEFAULT_STRATEGIES) + ")",
    )
    p.add_argument("--beam-size", type=int, default=16, help="K (default 16; the quick config's is 32)")
    p.add_argument("--budget", type=int, default=None, help="models per strategy (default PNAS's)")
    p.add_argument(
        "--selection",
        default=None,
        help="selection settings of the pnas and pnas-es strategies (JSON or YAML, e.g. a run's "
        "results/<name>/settings/selection.json): their texts then name the same select_by "
        "(pnas:ucb for ucb) and give no @options",
    )
    p.add_argument(
        "--out-dir", required=True, type=output_dir, help="folder for strategies.csv and the figure"
    )
    p.set_defaults(func=run_simulate, paths=_simulate_paths)

    p = sub.add_parser("bench-quality", help="Algorithm 2 on a benchmark table: rho on b and b+1")
    _table_and_settings(p)
    p.add_argument("--blocks", type=int, default=1, help="fit on cells of this size b (default 1)")
    p.add_argument("--train-size", type=int, default=24, help="cells per fit, K (default 24)")
    p.add_argument("--repeats", type=int, default=20, help="T (default 20)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--predictors",
        nargs="+",
        default=list(DEFAULT_PREDICTORS),
        metavar="P",
        help=f"predictor families of {', '.join(PREDICTORS)} (default: {' '.join(DEFAULT_PREDICTORS)}); "
        "'mean' averages them",
    )
    p.add_argument("--out", required=True, type=output_file, help="quality Parquet to write")
    p.set_defaults(func=run_quality, paths=lambda a: Paths(reads=[a.table, a.settings], writes=[a.out]))


STRATEGIES_FILE = "strategies.csv"
FIGURE_STEM = "simulation"


def _simulate_paths(args: argparse.Namespace) -> Paths:
    """The table and settings simulate reads, the table and figure files it writes."""
    from pnas_core.figures.style import figure_paths

    return Paths(
        reads=[args.table, args.settings, args.selection],
        writes=[args.out_dir / STRATEGIES_FILE, *figure_paths(args.out_dir, FIGURE_STEM)],
    )


def run_cells(args: argparse.Namespace) -> int:
    """Write every distinct cell of the space, smallest first (columns cell, cell_id, num_blocks, rank)."""
    import numpy as np
    import pyarrow as pa

    from pnas_core.search import beam
    from pnas_core.search.benchmark import enumerate_cells
    from pnas_core.space.cells import Space, cell_id, num_blocks_of

    texts = enumerate_cells(Space.from_names(args.ops, args.max_blocks))
    table = pa.table(
        {
            "cell": pa.array(texts, pa.string()),
            "cell_id": pa.array([cell_id(t) for t in texts], pa.string()),
            "num_blocks": pa.array([num_blocks_of(t) for t in texts], pa.int32()),
            "rank": pa.array(np.arange(len(texts), dtype=np.int32)),
        }
    )
    beam.write_table(table, args.out)
    print(f"{len(texts)} distinct cells of 1..{args.max_blocks} blocks -> {args.out}")
    return 0


def run_table(args: argparse.Namespace) -> int:
    """Assemble the table from records files (settings from their metadata) or from a cache."""
    from pnas_core import __version__
    from pnas_core.devices import cpu_fingerprint
    from pnas_core.search.benchmark import assemble, write_table
    from pnas_core.space.cells import Space

    space = Space.from_names(args.ops, args.max_blocks)
    if args.trained:
        records, settings, seeds = _records_files(args.trained)
    else:
        records, settings, seeds = _records_cache(args.cache_dir, args.settings, space)
    table = assemble(
        records,
        space,
        seeds,
        settings,
        __version__,
        partial=args.partial,
        build_cpu=cpu_fingerprint(),
        threads=args.threads,
    )
    write_table(table, args.out)
    print(
        f"benchmark table: {table.num_rows} rows, seeds {seeds} -> {args.out} "
        f"({args.out.stat().st_size:,} bytes)"
    )
    return 0


def _records_files(paths: list[Path]):
    """Records of merged records files, their shared settings (without the seed) and their seeds."""
    import json

    import pandas as pd

    from pnas_core.errors import PnasError
    from pnas_core.io.records import read_metadata, read_records

    settings, seeds = None, []
    for path in paths:
        meta = read_metadata(path)
        if "settings" not in meta:
            raise PnasError(f"records file {path} has no settings metadata")
        try:
            this = json.loads(meta["settings"])
            seeds.append(int(this.pop("seed")))
        except (ValueError, TypeError, KeyError, AttributeError) as exc:
            raise PnasError(f"records file {path} has unreadable settings metadata: {exc!r}") from exc
        if settings is not None and this != settings:
            raise PnasError(f"records file {path} was trained with other settings than {paths[0]}")
        settings = this
    return pd.concat([read_records(p) for p in paths], ignore_index=True), settings, seeds


def _records_cache(cache_dir: Path, settings_files: list[Path] | None, space):
    """Records of every cell of ``space`` found in the cache under each settings file."""
    import pandas as pd

    from pnas_core.errors import PnasError
    from pnas_core.io.records import RECORD_COLUMNS
    from pnas_core.search.benchmark import enumerate_cells
    from pnas_core.space.cells import cell_id
    from pnas_core.training.cache import ResultCache
    from pnas_core.training.train import load_settings

    if not settings_files:
        raise PnasError("--cache-dir needs --settings (the train settings files, one per seed)")
    cache, ids = ResultCache(cache_dir), [cell_id(t) for t in enumerate_cells(space)]
    rows, dicts, seeds = [], [], []
    for path in settings_files:
        settings = load_settings(path)
        fingerprint = settings.load_data().fingerprint
        rows += [
            r
            for i in ids
            if (r := cache.get(i, settings.settings_hash(), fingerprint, settings.seed)) is not None
        ]
        dicts.append({k: v for k, v in settings.to_dict().items() if k != "seed"})
        seeds.append(settings.seed)
    if any(d != dicts[0] for d in dicts):
        raise PnasError("the --settings files differ in more than the seed")
    return pd.DataFrame(rows, columns=list(RECORD_COLUMNS)), dicts[0], seeds


def _surrogate(path: str | None):
    from pnas_core.search.simulate import SIMULATION_SURROGATE
    from pnas_core.surrogate import SurrogateSettings

    return SIMULATION_SURROGATE if path is None else SurrogateSettings.from_file(path)


def run_simulate(args: argparse.Namespace) -> int:
    """Simulate, print the strategy table, write strategies.csv and the figure."""
    import time

    import pandas as pd

    from pnas_core.errors import PnasError
    from pnas_core.figures.simulation import simulation_figure
    from pnas_core.figures.style import figure_style, save_figure
    from pnas_core.io.atomic import atomic_path
    from pnas_core.search import comparison
    from pnas_core.search.benchmark import load_table
    from pnas_core.search.progress import TerminalBar
    from pnas_core.search.selection import load_selection
    from pnas_core.search.simulate import TOP_K, check_strategies, curves, default_budget, simulate, summarize
    from pnas_core.search.strategies import strategy_kind

    if args.seeds < 1:
        raise PnasError(f"--seeds must be at least 1, got {args.seeds}")
    selection = None if args.selection is None else load_selection(args.selection)
    check_strategies(args.strategies, selection)
    table = load_table(args.table)
    surrogate = _surrogate(args.settings)
    budget = default_budget(table, args.beam_size) if args.budget is None else args.budget
    runs_planned = args.seeds * len(args.strategies)
    print(
        f"pnas simulate: table {args.table} ({len(table.cells)} cells), K = {args.beam_size}, "
        f"{len(args.strategies)} strategies x {args.seeds} seeds = {runs_planned} runs of {budget} models each",
        file=sys.stderr,
        flush=True,
    )
    start = time.perf_counter()
    with TerminalBar(runs_planned, "simulate", "run") as bar:
        sim = simulate(
            table,
            args.strategies,
            range(args.seeds),
            args.beam_size,
            args.budget,
            surrogate,
            progress=bar,
            selection=selection,
        )
    wall = time.perf_counter() - start
    summary = summarize(sim, table)
    curve = curves(sim)
    runs = sim.runs()
    against = [s for s in args.strategies if strategy_kind(s) in BASELINE_KINDS]
    compute = comparison.strategy_summary(runs)
    paired = comparison.paired_differences(runs, against) if len(against) < len(args.strategies) else None
    reach = comparison.reach_baseline(runs, against)
    extra = [
        c for c in compute.columns if c.startswith(("best_ec", "topk_ec", "models_ec", "cost_", "seconds_"))
    ]
    summary = summary.merge(compute[["strategy", *extra]], on="strategy")
    with atomic_path(args.out_dir / STRATEGIES_FILE) as tmp:
        summary.to_csv(tmp, index=False, float_format="%.6g", lineterminator="\n")
    for name, frame in (("paired", paired), ("reach", reach)):
        if frame is not None:
            with atomic_path(args.out_dir / f"{name}.csv") as tmp:
                frame.to_csv(tmp, index=False, float_format="%.6g", lineterminator="\n")
    title = f"{Path(str(args.table)).stem}, K = {args.beam_size}"
    with figure_style():
        n1 = int((table.cells["num_blocks"] == 1).sum())
        starts = [n1 + 1 + j * args.beam_size for j in range(table.max_blocks - 1)]
        figure = simulation_figure(curve, args.seeds, TOP_K, title, starts)
        save_figure(figure, args.out_dir, FIGURE_STEM, curve)
    print(
        f"table {args.table}: {len(table.cells)} cells, training seeds {list(table.seeds)}"
        + ("" if table.complete else " (PARTIAL table)")
    )
    print(
        f"{args.seeds} seeds, beam K = {args.beam_size}, {int(summary['models'].iloc[0])} models each "
        f"(full: trained to all {table.settings['epochs']} epochs; epochs: spent in all); "
        f"mean [95% interval] over seeds"
    )
    print(format_summary(summary))
    print()
    empty = paired if paired is not None else pd.DataFrame()
    print(comparison.format_comparison(compute, empty, reach, args.seeds))
    fits = ", ".join(f"{n} {sim.fit_count[n]} fits {s:.1f} s" for n, s in sim.fit_seconds.items())
    per = ", ".join(f"{n} {s:.1f} s" for n, s in sim.seconds.items())
    print(f"CPU time per strategy: {per}; predictor fitting: {fits or 'none'}; wall {wall:.1f} s")
    print(f"-> {args.out_dir / STRATEGIES_FILE}, {args.out_dir / FIGURE_STEM}.png", file=sys.stderr)
    return 0


def format_summary(summary) -> str:
    """The strategy table as aligned text."""
    header = (
        "strategy",
        "epochs",
        "full",
        "best after M",
        "top-5 after M",
        "models to baseline's best",
        "to its top-5",
        "found best",
        "params trained / best",
        "mult-adds trained / best",
        "baseline",
    )
    rows = [header]
    for r in summary.itertuples():
        rows.append(
            (
                r.strategy,
                f"{r.epochs_mean:.0f} [{r.epochs_lo:.0f}, {r.epochs_hi:.0f}]",
                f"{r.full_models:.0f}",
                f"{r.best_mean:.4f} [{r.best_lo:.4f}, {r.best_hi:.4f}]",
                f"{r.topk_mean:.4f} [{r.topk_lo:.4f}, {r.topk_hi:.4f}]",
                _models(r.models_to_baseline_best, r.ratio_best),
                _models(r.models_to_baseline_topk, r.ratio_topk),
                f"{r.found_best:.0%}",
                f"{r.params_trained / 1e3:.1f}k / {r.params_best / 1e3:.1f}k",
                f"{r.mult_adds_trained / 1e6:.3f}M / {r.mult_adds_best / 1e6:.3f}M",
                r.baseline or "none",
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) for row in rows)


def _models(models: float, ratio: float) -> str:
    if models != models:  # NaN: never reached
        return "not reached"
    return f"{int(models)} (×{ratio:.2f})"


def run_quality(args: argparse.Namespace) -> int:
    """Algorithm 2 on the table's cells (val_acc averaged over its training seeds)."""
    import pyarrow as pa

    from pnas_core.search import quality
    from pnas_core.search.beam import write_table
    from pnas_core.search.benchmark import load_table

    table = load_table(args.table)
    settings = _surrogate(args.settings)
    settings = type(settings).from_dict({**settings.to_dict(), "max_blocks": table.max_blocks})
    df = quality.algorithm2(
        table.rows, args.blocks, args.predictors, settings, args.train_size, args.repeats, args.seed
    )
    write_table(pa.Table.from_pandas(df, schema=quality.QUALITY_SCHEMA, preserve_index=False), args.out)
    stats = df.groupby(["split", "predictor"], sort=False)["rho"].agg(["mean", "std", "count"])
    print(
        f"Algorithm 2 on {args.table}: fit on {args.train_size} random {args.blocks}-block cells, "
        f"{args.repeats} repeats (rho mean, sd)"
    )
    print(stats.round(3).to_string())
    return 0
