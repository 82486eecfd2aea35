"""Argument types of the ``pnas`` command line: numbers in range and output paths, checked when the
arguments are parsed, so a bad value fails at once with one line naming the option."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path

from pnas_core.limits import MAX_COUNT, MAX_DERIVED_SEED, MAX_THREADS


def int_range(low: int, high: int | None = None) -> Callable[[str], int]:
    """An argparse type: an integer in ``low..high`` (no upper bound when ``high`` is None)."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
        if value < low or (high is not None and value > high):
            bound = f"in {low}..{high:,}" if high is not None else f"at least {low}"
            raise argparse.ArgumentTypeError(f"must be {bound}, got {value}")
        return value

    parse.__name__ = "integer"
    return parse


seed = int_range(0, MAX_DERIVED_SEED)
"""A seed: 0 to :data:`pnas_core.limits.MAX_DERIVED_SEED` (numpy's generators refuse negative ones)."""
count = int_range(1, MAX_COUNT)
"""A number of cells, repeats, epochs or threads: 1 to :data:`pnas_core.limits.MAX_COUNT`."""
threads = int_range(1, MAX_THREADS)
"""A number of threads or worker processes: 1 to :data:`pnas_core.limits.MAX_THREADS`."""


def share(text: str) -> float:
    """An argparse type: a number strictly between 0 and 1."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not 0 < value < 1:
        raise argparse.ArgumentTypeError(f"must be in (0, 1), got {text}")
    return value


def folder_path(text: str) -> Path:
    """An argparse type: a folder to read or make; refuses an empty path (which would mean the current
    folder)."""
    if not text:
        raise argparse.ArgumentTypeError("an empty path; give a folder")
    return Path(text)


def output_file(text: str) -> Path:
    """An argparse type: a file to write; refuses a path that is an existing folder."""
    path = Path(text)
    if path.is_dir():
        raise argparse.ArgumentTypeError(f"{path} is a folder; give a file path")
    return path


def output_dir(text: str) -> Path:
    """An argparse type: a folder to write into; refuses a path that is an existing file."""
    path = Path(text)
    if path.exists() and not path.is_dir():
        raise argparse.ArgumentTypeError(f"{path} is a file; give a folder")
    return path


class OneLineParser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one line (``pnas train: error: ...``), exit code 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        """Print ``message`` on one line and exit 2."""
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")
