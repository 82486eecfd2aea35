"""The ``pnas`` command line: one subcommand group per module, heavy imports deferred to run time.

Each module in :data:`COMMAND_MODULES` has ``register(subparsers)``, which adds its subcommands and
sets ``func`` on each; module top levels import only the standard library and ``pnas_core.space.cells``,
so ``pnas --help`` and every workflow job start fast.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import os
import sys
from collections.abc import Sequence

from pnas_core import __version__
from pnas_core.cli.arg_types import OneLineParser
from pnas_core.cli.overwrite import check_paths
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
    "run_cmds",
    "track_cmds",
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
    """Entry point: run a subcommand; user errors print one line and exit 2 (the last line of the
    output: stdout is flushed first); a closed stdout (``pnas ... | head -1``) ends quietly."""
    try:
        try:
            args = build_parser().parse_args(argv)
        except SystemExit:  # --help, --version or a usage error: what it printed meets a closed pipe here
            sys.stdout.flush()
            raise
        if getattr(args, "paths", None) is not None:
            check_paths(args.paths(args))  # before any work: no command writes over its inputs
        code = int(args.func(args) or 0)
        sys.stdout.flush()  # a closed pipe shows here, not at exit
        return code
    except BrokenPipeError:
        return closed_stdout()
    except PnasError as exc:
        return fail(str(exc))
    except FileNotFoundError as exc:
        return fail(f"file not found: {exc.filename or exc}")
    except OSError as exc:  # a folder where a file belongs, no permission, a full disk ...
        where = f"{exc.filename}: " if exc.filename else ""
        return fail(f"{where}{exc.strerror or exc}")
    except UnicodeDecodeError as exc:
        return fail(f"an input file is not UTF-8 text ({exc.reason})")
    except KeyboardInterrupt:
        print("pnas: interrupted", file=sys.stderr)
        return 130


def fail(message: str) -> int:
    """Print ``pnas: error: message`` after whatever stdout still buffers, so that it is the last
    line of a log holding both streams; the exit code 2."""
    try:
        sys.stdout.flush()
    except (OSError, ValueError):  # stdout itself is gone (a full disk, a closed pipe): drop it
        with contextlib.suppress(OSError, ValueError):
            closed_stdout()
    print(f"pnas: error: {message}", file=sys.stderr, flush=True)
    return 2


SIGPIPE_EXIT = 141
"""Exit code after a closed stdout: 128 + SIGPIPE, as a command that the closed pipe ended."""


def closed_stdout() -> int:
    """Point stdout at /dev/null (Python's recipe: the exit-time flush then has nowhere to fail) and
    return :data:`SIGPIPE_EXIT`."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)
    return SIGPIPE_EXIT


if __name__ == "__main__":
    sys.exit(main())
