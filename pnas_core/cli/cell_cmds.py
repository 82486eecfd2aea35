"""``pnas cell show``: a cell's canonical text, its blocks in words, and its network's size."""

from __future__ import annotations

import argparse

from pnas_core.space.cells import OPS, Block, Cell, parse

MIN_IMAGE_SIZE = 8


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``cell show``."""
    cell = sub.add_parser("cell", help="inspect a cell")
    cell_sub = cell.add_subparsers(dest="cell_command", required=True, metavar="SUBCOMMAND")
    show = cell_sub.add_parser(
        "show", help="print the canonical text, the blocks and the network's parameters and multiply-adds"
    )
    show.add_argument("cell", help="cell text, e.g. '0:sep3x3,1:identity;2:max3x3,0:sep5x5'")
    show.add_argument("--N", dest="cells_per_stack", type=int, default=2, help="cells per stack (default 2)")
    show.add_argument(
        "--F", dest="filters", type=int, default=24, help="filters of the first stack (default 24)"
    )
    show.add_argument("--classes", type=int, default=10, help="number of classes (default 10)")
    show.add_argument("--image-size", type=int, default=32, help="image side in pixels (default 32)")
    show.add_argument("--in-channels", type=int, default=3, help="image channels (default 3)")
    show.add_argument("--stem", choices=("cifar", "imagenet"), default="cifar", help="stem (default cifar)")
    show.add_argument("--reductions", type=int, default=2, help="number of reduction cells (default 2)")
    show.add_argument(
        "--stem-filters",
        type=int,
        default=None,
        help="stem conv filters (default 3F for cifar, 96 for imagenet)",
    )
    show.add_argument(
        "--reduction-in-stack",
        action="store_true",
        help="the first cell of each later stack reduces (released PNASNet-5 layout, 3N cells) "
        "instead of an extra reduction cell between stacks (3N+2 cells)",
    )
    show.set_defaults(func=run_show)


def input_name(index: int) -> str:
    """Words for a block input index: ``H[c-2]``, ``H[c-1]`` or ``block j``."""
    return ("H[c-2]", "H[c-1]")[index] if index < 2 else f"block {index - 1}"


def describe_block(block: Block, b: int) -> str:
    """E.g. ``block 4: max3x3(H[c-1]) + sep3x3(block 3)``."""
    return f"block {b}: {OPS[block.op1]}({input_name(block.in1)}) + {OPS[block.op2]}({input_name(block.in2)})"


def describe_cell(cell: Cell) -> list[str]:
    """One line per block."""
    return [describe_block(block, b) for b, block in enumerate(cell.blocks, start=1)]


def run_show(args: argparse.Namespace) -> int:
    """Print the cell and its network's size (built on the meta device: no memory, no weights)."""
    cell = parse(args.cell)
    import torch

    from pnas_core.errors import PnasError
    from pnas_core.training.complexity import count_mult_adds, count_params
    from pnas_core.training.network import NetworkSettings, build_network

    if args.image_size < MIN_IMAGE_SIZE:
        raise PnasError(f"--image-size must be at least {MIN_IMAGE_SIZE}, got {args.image_size}")
    settings = NetworkSettings(
        num_classes=args.classes,
        in_channels=args.in_channels,
        cells_per_stack=args.cells_per_stack,
        filters=args.filters,
        stem=args.stem,
        num_reductions=args.reductions,
        stem_filters=args.stem_filters,
        reduction_in_stack=args.reduction_in_stack,
    )
    with torch.device("meta"):
        net = build_network(cell, settings)
        mult_adds = count_mult_adds(net, (args.in_channels, args.image_size, args.image_size))
    print(f"cell: {cell.text}")
    print(f"id: {cell.id}")
    for line in describe_cell(cell):
        print(f"  {line}")
    print(
        f"network: {args.stem} stem, N={args.cells_per_stack}, F={args.filters}, {len(net.cells)} cells "
        f"({args.reductions} reductions{' in stack' if args.reduction_in_stack else ''}), "
        f"{args.classes} classes, input {args.in_channels}x{args.image_size}x{args.image_size}"
    )
    print(f"parameters: {count_params(net):,}")
    print(f"multiply-adds: {mult_adds:,} per image")
    return 0
