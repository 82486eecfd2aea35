"""The one exception type for bad user input; the CLI prints its message on one line
(:func:`one_line`), and values a user handed over are shown with :func:`shown`, whatever their size."""

from __future__ import annotations

import reprlib
from typing import Any

from pnas_core.limits import MAX_MESSAGE


class PnasError(Exception):
    """A problem with the user's input (a config key, a file, a cell text) with a message naming it;
    ``str()`` is that message as one readable line (:func:`one_line`)."""

    def __str__(self) -> str:
        return one_line(super().__str__())


_REPR = reprlib.Repr()
_REPR.maxstring = _REPR.maxother = 80
_REPR.maxlist = _REPR.maxtuple = _REPR.maxdict = _REPR.maxset = 4
_REPR.maxlevel = 2


def shown(value: Any) -> str:
    """``repr(value)`` cut short (long strings, long or deeply nested lists and mappings) to at most
    200 characters, in bounded time whatever ``value`` holds (a YAML alias bomb included)."""
    text = _REPR.repr(value)
    return text if len(text) <= 200 else text[:197] + "..."


def one_line(text: str, limit: int = MAX_MESSAGE) -> str:
    """``text`` as one readable line: control characters (newlines included) written as escapes,
    cut to ``limit`` characters."""
    line = "".join(c if c.isprintable() else ascii(c)[1:-1] for c in text[: limit * 2])
    return line if len(line) <= limit else line[: limit - 3] + "..."
