"""Atomic writes of files and folders: write to a temporary one beside the target, then rename it.

A crashed job therefore leaves either the old file or none, never a half-written file that a
rerun would trust. A write that fails because the disk is full (whatever the writing library makes
of it) raises :class:`~pnas_core.errors.PnasError` saying "no space left on device" and naming the
file, after the temporary file is removed.
"""

from __future__ import annotations

import contextlib
import errno
import io
import json
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any

from pnas_core.errors import PnasError

FULL_DISK_ERRNOS = (errno.ENOSPC, errno.EDQUOT)


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; on success rename it onto ``path``.

    The parent folder is created. On an exception the temporary file is removed and the target
    is untouched.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.fchmod(fd, 0o666 & ~current_umask())  # mkstemp makes 0600; give the mode a plain open() would
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        with naming_a_full_disk(target):
            yield tmp_path
            with open(tmp_path, "rb+") as fh:
                os.fsync(fh.fileno())
            os.replace(tmp_path, target)
    finally:
        tmp_path.unlink(missing_ok=True)


@contextlib.contextmanager
def atomic_dir(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary folder beside ``path``; on success it replaces ``path``.

    On an exception the temporary folder is removed and ``path`` is untouched. An existing ``path``
    is moved aside before the rename and deleted after, so readers see the old or the new folder.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent))
    os.chmod(tmp, 0o777 & ~current_umask())  # mkdtemp makes 0700; give the mode a plain mkdir would
    try:
        with naming_a_full_disk(target):
            yield tmp
            old = None
            if target.exists():
                old = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".old", dir=target.parent))
                os.replace(target, old / "x")
            os.replace(tmp, target)
            if old is not None:
                shutil.rmtree(old)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


@contextlib.contextmanager
def naming_a_full_disk(target: Path) -> Iterator[None]:
    """Re-raise an error of the body that a full file system caused as :func:`disk_full_error`'s
    one line naming ``target``; any other error as it is."""
    try:
        yield
    except Exception as exc:
        full = disk_full_error(exc, target)
        if full is None:
            raise
        raise full from exc


def disk_full_error(exc: BaseException, target: Path) -> PnasError | None:
    """A one-line error for a write of ``target`` that ``exc`` ended because its file system is full,
    else None. Libraries report a full disk in their own ways (numpy and pyarrow without an errno), so
    any error while the file system has no block left counts."""
    if isinstance(exc, PnasError):
        return None
    full = isinstance(exc, OSError) and exc.errno in FULL_DISK_ERRNOS
    if not full:
        try:
            st = os.statvfs(target.parent)
        except OSError:
            return None
        full = (st.f_bfree if os.geteuid() == 0 else st.f_bavail) == 0  # root may use the reserved blocks
    return (
        PnasError(f"no space left on device: cannot write {target}; free space there and run again")
        if full
        else None
    )


def write_serialized(path: str | os.PathLike[str], serialize: Callable[[IO[bytes]], None]) -> None:
    """Write atomically what ``serialize(file)`` writes, serialised in memory first: torch's own file
    writer reports a full disk as "unexpected pos" (``torch.save``) or aborts the process
    (``torch.jit.save``), Python's as the OSError it is."""
    buffer = io.BytesIO()
    serialize(buffer)
    write_bytes(path, buffer.getbuffer())


def current_umask() -> int:
    """The process's umask (read without changing it for good)."""
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_text(path: str | os.PathLike[str], text: str) -> None:
    """Write text atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def write_bytes(path: str | os.PathLike[str], data: bytes | memoryview) -> None:
    """Write bytes atomically."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def write_json(path: str | os.PathLike[str], obj: Any) -> None:
    """Write JSON (sorted keys, indented) atomically."""
    write_text(path, json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n")
