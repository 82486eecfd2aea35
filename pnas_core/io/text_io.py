"""Checked reading of the small text and JSON files a user may hand over (settings, cell files,
saved predictors): a missing, unreadable, binary or malformed file is a :class:`PnasError` naming
the file, and JSON's NaN and Infinity are refused."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from pnas_core.errors import PnasError


def read_text(path: str | os.PathLike[str], what: str, max_bytes: int | None = None) -> str:
    """The UTF-8 text of ``path`` (described as ``what`` in errors); with ``max_bytes``, a longer file
    (or pipe) is refused without reading it whole."""
    p = Path(path)
    if not p.exists():
        raise PnasError(f"{what} {p} not found")
    if p.is_dir():
        raise PnasError(f"{what} {p} is a folder, not a file")
    try:
        with p.open(encoding="utf-8") as fh:  # max_bytes + 1 characters are at least as many bytes
            text = fh.read(-1 if max_bytes is None else max_bytes + 1)
    except UnicodeDecodeError as exc:
        raise PnasError(f"{what} {p} is not UTF-8 text ({exc.reason} at byte {exc.start})") from exc
    except OSError as exc:
        raise PnasError(f"{what} {p} cannot be read: {exc.strerror or exc}") from exc
    if max_bytes is not None and len(text) > max_bytes:
        raise PnasError(f"{what} {p} is larger than {max_bytes:,} bytes; is it the right file?")
    return text


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a finite number")


def loads_json(text: str) -> Any:
    """``json.loads`` refusing NaN and Infinity (ValueError)."""
    return json.loads(text, parse_constant=_no_constant)


def read_json(path: str | os.PathLike[str], what: str) -> Any:
    """The JSON content of ``path`` (NaN and Infinity refused)."""
    try:
        return loads_json(read_text(path, what))
    except ValueError as exc:  # json.JSONDecodeError and the refused constants
        raise PnasError(f"{what} {path} is not valid JSON: {exc}") from exc
