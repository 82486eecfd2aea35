"""Beam-step and predictor commands: ``enumerate``, ``sample``, ``fit-surrogate``, ``expand-score``,
``select``, ``eval-surrogate``. Heavy imports happen inside the command functions."""

from __future__ import annotations

import argparse

from pnas_core.cli.arg_types import (
    count,
    int_range,
    output_dir,
    output_file,
    seed,
    threads,
)
from pnas_core.cli.overwrite import Paths
from pnas_core.limits import MAX_COUNT
from pnas_core.names import (
    DEFAULT_FIT_ON,
    DEFAULT_PREDICTORS,
    DEFAULT_SELECT_BY,
    FIT_ON,
    PREDICTORS,
)
from pnas_core.space.cells import MAX_BLOCKS, OPS, Space


def _ops(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--ops", nargs="+", default=None, metavar="OP", help=f"op subset (default all: {' '.join(OPS)})"
    )


def _settings(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--settings", default=None, help="surrogate settings, JSON or YAML (default: built-in)"
    )


def _predictors(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--predictors",
        nargs="+",
        default=list(DEFAULT_PREDICTORS),
        choices=PREDICTORS,
        metavar="P",
        help=f"predictor families of {', '.join(PREDICTORS)} (default: {' '.join(DEFAULT_PREDICTORS)})",
    )


def _threads(parser: argparse.ArgumentParser, what: str) -> None:
    parser.add_argument(
        "--threads",
        type=threads,
        default=None,
        help=f"threads that {what} the ensembles' members side by side, each on one torch thread "
        "(default $PNAS_THREADS, else all allowed cores); the results are the same for any number",
    )


def _count_or_auto(text: str) -> int | None:
    """``--n``: a count (:data:`pnas_core.cli.arg_types.count`), or None for ``auto``."""
    return None if text == "auto" else count(text)


def register(sub: argparse._SubParsersAction) -> None:
    """Add the beam-step and predictor commands."""
    p = sub.add_parser("enumerate", help="all 1-block cells as a candidates table")
    _ops(p)
    p.add_argument("--out", required=True, type=output_file, help="candidates Parquet to write")
    p.set_defaults(func=run_enumerate)

    p = sub.add_parser("sample", help="N distinct cells drawn uniformly (random-search baseline)")
    p.add_argument(
        "--blocks", type=int_range(1, MAX_BLOCKS), required=True, help=f"cell size b (1..{MAX_BLOCKS})"
    )
    p.add_argument(
        "--n",
        type=_count_or_auto,
        required=True,
        help="number of distinct cells (all b-block cells when the space holds fewer), or 'auto': "
        "the models a progressive search with --beam-size and --max-blocks trains",
    )
    p.add_argument("--beam-size", type=count, default=None, help="K of the search whose budget 'auto' takes")
    p.add_argument(
        "--max-blocks",
        type=int_range(1, MAX_BLOCKS),
        default=None,
        help="B of the search whose budget 'auto' takes",
    )
    p.add_argument("--seed", type=seed, default=0)
    _ops(p)
    p.add_argument("--out", required=True, type=output_file, help="candidates Parquet to write")
    p.set_defaults(func=run_sample)

    p = sub.add_parser("fit-surrogate", help="fit predictors on all ok training records")
    p.add_argument("--records", nargs="+", required=True, help="training-record Parquet files")
    p.add_argument(
        "--fit-on",
        choices=FIT_ON,
        default=DEFAULT_FIT_ON,
        help="full: records trained to the full budget only (default); all: early-stopped records too, "
        "with their accuracy at their last rung",
    )
    _predictors(p)
    _settings(p)
    p.add_argument(
        "--warm-from",
        default=None,
        help="folder written by fit-surrogate (the previous level's): the neural ensembles start from "
        "its members (needs warm_start: true in the settings)",
    )
    _threads(p, "fit")
    p.add_argument("--out", required=True, type=output_dir, help="folder to write (replaced atomically)")
    p.set_defaults(
        func=run_fit,
        paths=lambda a: Paths(reads=[*a.records, a.settings], read_dirs=[a.warm_from], replaces=[a.out]),
    )

    p = sub.add_parser("expand-score", help="score every child of the parent cells")
    p.add_argument("--parents", required=True, help="candidates Parquet of the parent level")
    p.add_argument("--surrogate", required=True, help="folder written by fit-surrogate")
    _ops(p)
    p.add_argument(
        "--settings",
        default=None,
        help="training settings (JSON or YAML) of the search network: adds each child's exact params "
        "and mult_adds columns",
    )
    _threads(p, "score")
    p.add_argument("--out", required=True, type=output_file, help="scored Parquet to write")
    p.set_defaults(
        func=run_expand_score,
        paths=lambda a: Paths(reads=[a.parents, a.settings], read_dirs=[a.surrogate], writes=[a.out]),
    )

    p = sub.add_parser(
        "select", help="K children by predicted accuracy, optionally within budgets or by Pareto"
    )
    p.add_argument("--scored", required=True, help="scored Parquet from expand-score")
    p.add_argument("--k", type=count, required=True, help="beam width K")
    p.add_argument(
        "--selection",
        default=None,
        help="selection settings (JSON or YAML: select_by, ucb_kappa, max_params, max_mult_adds, pareto, "
        f"pareto_cost; the workflow's settings/selection.json); default: the top K by {DEFAULT_SELECT_BY}",
    )
    p.add_argument("--out", required=True, type=output_file, help="candidates Parquet to write")
    p.set_defaults(func=run_select, paths=lambda a: Paths(reads=[a.scored, a.selection], writes=[a.out]))

    p = sub.add_parser("eval-surrogate", help="predictor quality: Spearman rho on b and b+1 blocks")
    p.add_argument("--records", nargs="+", required=True, help="training-record Parquet files")
    p.add_argument(
        "--blocks", type=int_range(1, MAX_BLOCKS - 1), required=True, help="fit on cells of this size b"
    )
    _predictors(p)
    _settings(p)
    p.add_argument(
        "--repeats", type=count, default=None, help="Algorithm 2: repeat T times (needs --train-size)"
    )
    p.add_argument("--train-size", type=int_range(2, MAX_COUNT), default=None, help="cells to fit on (K)")
    p.add_argument("--seed", type=seed, default=0)
    p.add_argument("--out", required=True, type=output_file, help="quality Parquet to write")
    p.set_defaults(func=run_eval, paths=lambda a: Paths(reads=[*a.records, a.settings], writes=[a.out]))


def _load_settings(path: str | None):
    from pnas_core.surrogate import SurrogateSettings

    return SurrogateSettings() if path is None else SurrogateSettings.from_file(path)


def run_enumerate(args: argparse.Namespace) -> int:
    """Write all 1-block cells."""
    from pnas_core.search import beam

    table = beam.enumerate_level1(Space.from_names(args.ops))
    beam.write_table(table, args.out)
    print(f"{table.num_rows} one-block cells -> {args.out}")
    return 0


def run_sample(args: argparse.Namespace) -> int:
    """Write N distinct random cells (N from the search budget with ``--n auto``)."""
    from pnas_core.errors import PnasError
    from pnas_core.search import beam

    space = Space.from_names(args.ops)
    if not 1 <= args.blocks <= space.max_blocks:
        raise PnasError(f"--blocks must be in 1..{space.max_blocks}, got {args.blocks}")
    n = args.n
    if n is None:
        if args.beam_size is None or args.max_blocks is None:
            raise PnasError("--n auto needs --beam-size and --max-blocks (the search whose budget it takes)")
        n = beam.search_budget(space, args.max_blocks, args.beam_size)
        print(f"budget of the search with K={args.beam_size}, B={args.max_blocks}: {n} cells")
    capped = space.cap_to_distinct(args.blocks, n)
    if capped < n:
        print(
            f"{n} cells asked, the space holds {capped} distinct {args.blocks}-block cells: taking all of them"
        )
        n = capped
    table = beam.sample_cells(space, args.blocks, n, args.seed)
    beam.write_table(table, args.out)
    print(f"{table.num_rows} random {args.blocks}-block cells -> {args.out}")
    return 0


def run_fit(args: argparse.Namespace) -> int:
    """Fit and save the predictors."""
    from pnas_core.devices import resolve_threads
    from pnas_core.errors import PnasError
    from pnas_core.surrogate import fit_data, read_fit_records
    from pnas_core.surrogate.bundle import fit_predictors, load_predictors, save_predictors

    settings = _load_settings(args.settings)
    if args.warm_from is not None and not settings.warm_start:
        raise PnasError("--warm-from needs warm_start: true in the surrogate settings")
    warm = load_predictors(args.warm_from) if args.warm_from is not None else None
    data = fit_data(read_fit_records(args.records), args.fit_on)
    workers = resolve_threads(args.threads)
    save_predictors(fit_predictors(data, args.predictors, settings, warm, workers), args.out)
    started = f", warm-started from {args.warm_from}" if warm else ""
    print(f"fit {' '.join(args.predictors)} on {len(data)} cells{started}, {workers} thread(s) -> {args.out}")
    return 0


def run_expand_score(args: argparse.Namespace) -> int:
    """Expand the parents and score all children."""
    from pnas_core.devices import resolve_threads
    from pnas_core.search import beam, scoring
    from pnas_core.surrogate.bundle import load_predictors

    space = Space.from_names(args.ops)
    parents = beam.parent_tokens(beam.read_cell_table(args.parents, "parents"), space)
    costs = None
    if args.settings is not None:
        from pnas_core.training.cost import search_costs
        from pnas_core.training.train import load_settings

        costs = search_costs(load_settings(args.settings))
    workers = resolve_threads(args.threads)
    table = scoring.expand_and_score(parents, load_predictors(args.surrogate), space, costs, workers)
    beam.write_table(table, args.out)
    costed = " with params and mult_adds" if costs is not None else ""
    print(
        f"{table.num_rows} distinct children of {len(parents)} parents scored{costed}, "
        f"{workers} thread(s) -> {args.out}"
    )
    return 0


def run_select(args: argparse.Namespace) -> int:
    """Keep the top K."""
    from pnas_core.search import beam
    from pnas_core.search.selection import Selection, load_selection

    selection = Selection() if args.selection is None else load_selection(args.selection)
    scored = beam.read_cell_table(args.scored, "scored")
    table = beam.select(scored, args.k, selection)
    beam.write_table(table, args.out)
    how = selection.describe()
    if selection.pareto:
        front = table.column("front").to_numpy()
        how += f" (fronts {front.min()}..{front.max()})"
    print(f"{table.num_rows} of {scored.num_rows} children by {how} -> {args.out}")
    return 0


def run_eval(args: argparse.Namespace) -> int:
    """Measure predictor quality."""
    import sys
    import warnings

    import pyarrow as pa

    from pnas_core.errors import PnasError
    from pnas_core.search import quality
    from pnas_core.search.beam import write_table
    from pnas_core.surrogate import read_fit_records

    settings = _load_settings(args.settings)
    records = read_fit_records(args.records)
    if args.repeats is not None:
        if args.train_size is None:
            raise PnasError("--repeats needs --train-size")
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", quality.UnfinishedCells)
            df = quality.algorithm2(
                records, args.blocks, args.predictors, settings, args.train_size, args.repeats, args.seed
            )
        for w in caught:
            print(f"pnas eval-surrogate: warning: {w.message}", file=sys.stderr)
    else:
        df = quality.heldout_quality(
            records, args.blocks, args.predictors, settings, args.train_size, args.seed
        )
    write_table(pa.Table.from_pandas(df, schema=quality.QUALITY_SCHEMA, preserve_index=False), args.out)
    print(df.groupby(["predictor", "split"])["rho"].mean().round(3).to_string())
    return 0
