"""Argument types of the ``pnas`` command line: numbers in range and output paths, checked when the
arguments are parsed, so a bad value fails at once with one line naming the option."""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable
from pathlib import Path

MAX_COUNT = 10**6
"""Largest count an option such as ``--n`` takes: more cells than any experiment trains."""


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


seed = int_range(0, 2**63 - 1)
"""A seed: a non-negative integer (numpy's generators refuse negative ones)."""
count = int_range(1, MAX_COUNT)
"""A number of cells, repeats or threads: 1 to :data:`MAX_COUNT`."""


def non_negative_float(text: str) -> float:
    """An argparse type: a finite number >= 0."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not math.isfinite(value) or value < 0:
        raise argparse.ArgumentTypeError(f"must be a finite number >= 0, got {text}")
    return value


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
