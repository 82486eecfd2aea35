"""``pnas space count``: the size of the search space (SPEC §1 table)."""

from __future__ import annotations

import argparse

from pnas_core.cli.arg_types import int_range
from pnas_core.space import MAX_BLOCKS, OPS, Space


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
    count.set_defaults(func=run_count)


def count_table(space: Space, blocks: int) -> list[tuple[int, int, int, int]]:
    """Rows (b, halves per block n, distinct blocks, distinct b-block cells)."""
    return [
        (b, space.halves_per_block(b), space.blocks_per_position(b), space.count_cells(b))
        for b in range(1, blocks + 1)
    ]


def run_count(args: argparse.Namespace) -> int:
    """Print the counts table."""
    from pnas_core.errors import PnasError

    if not 1 <= args.blocks <= MAX_BLOCKS:
        raise PnasError(f"--blocks must be in 1..{MAX_BLOCKS}, got {args.blocks}")
    space = Space.from_names(args.ops)
    print(f"ops ({len(space.ops)}): {', '.join(space.op_names)}")
    header = ("b", "choices per half n", "distinct blocks n(n+1)/2", "distinct cells with b blocks")
    rows = [header] + [
        (str(b), f"{n:,}", f"{m:,}", f"{c:,}") for b, n, m, c in count_table(space, args.blocks)
    ]
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    for i, row in enumerate(rows):
        print("  ".join(cell.rjust(w) for cell, w in zip(row, widths, strict=True)))
        if i == 0:
            print("  ".join("-" * w for w in widths))
    return 0
