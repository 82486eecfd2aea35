"""The ``pnas`` command line: one subcommand group per module, heavy imports deferred to run time.

Each module in :data:`COMMAND_MODULES` has ``register(subparsers)``, which adds its subcommands and
sets ``func`` on each; module top levels import only the standard library and ``pnas_core.space``,
so ``pnas --help`` and every workflow job start fast.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from pnas_core import __version__
from pnas_core.cli.arg_types import OneLineParser
from pnas_core.errors import PnasError

COMMAND_MODULES = (
    "space_cmds",
    "cell_cmds",
    "train_cmds",
    "surrogate_cmds",
    "summary_cmds",
    "figure_cmds",
    "final_cmds",
    "schema_cmds",
    "bench_cmds",
    "replicate_cmds",
)


def build_parser() -> argparse.ArgumentParser:
    """The full argument parser."""
    parser = OneLineParser(prog="pnas", description="Progressive Neural Architecture Search")
    parser.add_argument("--version", action="version", version=f"pnas {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(f"pnas_core.cli.{name}").register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point: run a subcommand; user errors print one line and exit 2."""
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except PnasError as exc:
        print(f"pnas: error: {exc}", file=sys.stderr)
        return 2
    except FileNotFoundError as exc:
        print(f"pnas: error: file not found: {exc.filename or exc}", file=sys.stderr)
        return 2
    except OSError as exc:  # a folder where a file belongs, no permission, a full disk ...
        where = f"{exc.filename}: " if exc.filename else ""
        print(f"pnas: error: {where}{exc.strerror or exc}", file=sys.stderr)
        return 2
    except UnicodeDecodeError as exc:
        print(f"pnas: error: an input file is not UTF-8 text ({exc.reason})", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("pnas: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
