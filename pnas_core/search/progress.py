"""Progress of long in-process work (a search, a simulation): a callback, and a tqdm bar for a terminal.

A :data:`Progress` callback gets ``(done, total, what)`` after each unit of work (a model evaluated, a
seed simulated). :class:`TerminalBar` is the one the API uses when none is given: a tqdm bar on stderr
when stderr is a terminal, nothing otherwise, so logs and pipes never get carriage returns.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import TextIO

from tqdm import tqdm

Progress = Callable[[int, int, str], None]
"""``(done, total, what)``: units done of ``total``, and a short note (the level, the best so far)."""


class TerminalBar:
    """A tqdm bar on ``file`` (stderr) when it is a terminal; a no-op otherwise. Use as a context manager."""

    def __init__(
        self, total: int, desc: str, unit: str, file: TextIO | None = None, enabled: bool = True
    ) -> None:
        self.file = sys.stderr if file is None else file
        self.active = enabled and self.file.isatty()
        self.bar = tqdm(total=total, desc=desc, unit=unit, file=self.file, disable=not self.active)

    def say(self, line: str) -> None:
        """Print a line above the bar (only on a terminal, as the bar)."""
        if self.active:
            self.bar.write(line, file=self.file)

    def __call__(self, done: int, total: int, what: str) -> None:
        if not self.active:
            return
        self.bar.total = total
        self.bar.n = done
        self.bar.set_postfix_str(what, refresh=False)
        self.bar.refresh()

    def __enter__(self) -> TerminalBar:
        return self

    def __exit__(self, *exc: object) -> None:
        self.bar.close()
