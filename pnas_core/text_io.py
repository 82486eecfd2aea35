"""Checked reading of the small text and JSON files a user may hand over (settings, cell files,
saved predictors): a missing, unreadable, binary or malformed file is a :class:`PnasError` naming
the file, and JSON's NaN and Infinity are refused."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from pnas_core.errors import PnasError


def read_text(path: str | os.PathLike[str], what: str) -> str:
    """The UTF-8 text of ``path`` (described as ``what`` in errors)."""
    p = Path(path)
    if not p.exists():
        raise PnasError(f"{what} {p} not found")
    if p.is_dir():
        raise PnasError(f"{what} {p} is a folder, not a file")
    try:
        return p.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise PnasError(f"{what} {p} is not UTF-8 text ({exc.reason} at byte {exc.start})") from exc
    except OSError as exc:
        raise PnasError(f"{what} {p} cannot be read: {exc.strerror or exc}") from exc


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
