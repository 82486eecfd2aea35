"""``pnas space count``: the size of the search space (docs/method.md, "Counts"), as block sequences and
as distinct cells up to block order."""

from __future__ import annotations

import argparse

from pnas_core.cli.arg_types import int_range
from pnas_core.errors import PnasError
from pnas_core.space.cells import MAX_BLOCKS, OPS, Space

DEFAULT_SAMPLES = 50_000


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``space count``."""
    space = sub.add_parser("space", help="facts about the search space")
    space_sub = space.add_subparsers(dest="space_command", required=True, metavar="SUBCOMMAND")
    count = space_sub.add_parser("count", help="print the number of blocks and cells per size")
    count.add_argument(
        "--blocks",
        type=int_range(1, MAX_BLOCKS),
        default=MAX_BLOCKS,
        help=f"largest cell size (1..{MAX_BLOCKS})",
    )
    count.add_argument(
        "--ops", nargs="+", default=None, metavar="OP", help=f"op subset (default all: {' '.join(OPS)})"
    )
    count.add_argument(
        "--samples",
        type=int,
        default=DEFAULT_SAMPLES,
        help=f"sequences drawn per size where the distinct count is estimated (default {DEFAULT_SAMPLES:,})",
    )
    count.add_argument("--seed", type=int, default=0, help="seed of those draws (default 0)")
    count.set_defaults(func=run_count)


def distinct_column(space: Space, b: int, samples: int, seed: int) -> str:
    """The exact distinct count, or ``≈ estimate ± standard error (estimate)`` where counting exactly
    would take too long."""
    try:
        return f"{space.count_distinct(b):,}"
    except PnasError:
        estimate, stderr = space.estimate_distinct(b, samples, seed)
        return f"≈ {estimate:.4g} ± {stderr:.2g} (estimate)"


def count_table(space: Space, blocks: int, samples: int, seed: int) -> list[tuple[int, int, int, int, str]]:
    """Rows (b, halves per block n, distinct blocks, sequences, distinct cells up to block order)."""
    return [
        (
            b,
            space.halves_per_block(b),
            space.blocks_per_position(b),
            space.count_sequences(b),
            distinct_column(space, b, samples, seed),
        )
        for b in range(1, blocks + 1)
    ]


def run_count(args: argparse.Namespace) -> int:
    """Print the counts table."""
    if not 1 <= args.blocks <= MAX_BLOCKS:
        raise PnasError(f"--blocks must be in 1..{MAX_BLOCKS}, got {args.blocks}")
    if args.samples < 2:
        raise PnasError(f"--samples must be at least 2, got {args.samples}")
    space = Space.from_names(args.ops)
    print(f"ops ({len(space.ops)}): {', '.join(space.op_names)}")
    header = (
        "b",
        "choices per half n",
        "distinct blocks n(n+1)/2",
        "block sequences (halves in order)",
        "distinct cells up to block order",
    )
    rows = [header] + [
        (str(b), f"{n:,}", f"{m:,}", f"{c:,}", d)
        for b, n, m, c, d in count_table(space, args.blocks, args.samples, args.seed)
    ]
    widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
    for i, row in enumerate(rows):
        print("  ".join(cell.rjust(w) for cell, w in zip(row, widths, strict=True)))
        if i == 0:
            print("  ".join("-" * w for w in widths))
    if any("estimate" in r[-1] for r in rows[1:]):
        print(
            f"estimates: {args.samples:,} sequences drawn uniformly (seed {args.seed}), "
            "#distinct = #sequences x mean(1 / number of sequences spelling the drawn cell)"
        )
    return 0
