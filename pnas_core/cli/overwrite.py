"""No command writes over what it reads.

Each ``pnas`` command that reads files and writes others declares them with ``set_defaults(paths=fn)``,
``fn(args)`` giving its :class:`Paths`; :func:`pnas_core.cli.main` calls :func:`check_paths` on them
before the command does anything. An output that is one of the inputs (the same path, a symbolic link
to it, or a hard link of it), lies inside a folder the command reads as a whole (a fitted surrogate),
or replaces a folder holding an input, is refused with one line naming both. So is one output path
given twice. The result cache is read and written by design and is not an input here.

Standard library only: the check runs before any heavy import.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from pnas_core.errors import PnasError


@dataclass(frozen=True)
class Paths:
    """What one command run reads and writes (None entries, options not given, are ignored)."""

    reads: Iterable[Path | str | None] = ()
    """Files read."""
    read_dirs: Iterable[Path | str | None] = ()
    """Folders read as a whole (every file under them)."""
    writes: Iterable[Path | str | None] = ()
    """Files written."""
    replaces: Iterable[Path | str | None] = ()
    """Folders replaced as a whole (everything under them goes)."""


def _given(paths: Iterable[Path | str | None]) -> list[Path]:
    return [Path(p) for p in paths if p is not None]


def same_file(a: Path, b: Path) -> bool:
    """Whether ``a`` and ``b`` name one file: the same path once symbolic links are resolved, or (both
    existing) one inode, as hard links are."""
    if a.resolve() == b.resolve():
        return True
    try:
        return os.path.samefile(a, b)
    except OSError:  # one of them does not exist (yet)
        return False


def inside(path: Path, folder: Path) -> bool:
    """Whether ``path`` lies inside ``folder`` (or is it), symbolic links resolved."""
    return path.resolve().is_relative_to(folder.resolve())


def check_paths(paths: Paths) -> None:
    """Raise :class:`PnasError` when an output of ``paths`` would overwrite or replace an input, or is
    given twice (see the module docstring)."""
    reads, read_dirs = _given(paths.reads), _given(paths.read_dirs)
    writes, replaces = _given(paths.writes), _given(paths.replaces)
    for i, out in enumerate(writes):
        for src in reads:
            if same_file(out, src):
                raise PnasError(
                    f"output {out} is the input {src}: writing it would destroy what the command reads"
                )
        for folder in read_dirs:
            if inside(out, folder):
                raise PnasError(
                    f"output {out} lies inside the input folder {folder}, which the command reads"
                )
        for other in writes[:i]:
            if same_file(out, other):
                raise PnasError(f"output {out} is given twice (also as {other})")
    for out in replaces:
        for src in [*reads, *read_dirs]:
            if inside(src, out) or inside(out, src):
                raise PnasError(
                    f"output folder {out} and the input {src} overlap: writing it would replace what the "
                    "command reads"
                )
