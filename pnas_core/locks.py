"""The package's one file lock: an advisory, exclusive lock on a lock file, shared by processes on
one machine or one cluster file system (the ``filelock`` library: ``flock`` on POSIX, which Linux
NFS clients carry as a POSIX lock, ``msvcrt`` on Windows), so the package imports on every platform.
Used by the result cache, the image-folder cache and the GPU claims."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

from filelock import FileLock, Timeout


@contextlib.contextmanager
def locked(path: Path) -> Iterator[None]:
    """Hold the lock of ``path`` (a lock file, made when missing) while the block runs; waits for it."""
    with FileLock(path):
        yield


def try_lock(path: Path) -> FileLock | None:
    """The lock of ``path``, now held by this process until it is released or the process exits;
    None when another holder has it (never waits)."""
    lock = FileLock(path, timeout=0)
    try:
        lock.acquire()
    except Timeout:
        return None
    return lock
