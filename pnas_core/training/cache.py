"""Content-addressed cache of training records, one small JSON file per training run.

The key is the SHA-256 of (cell id, settings hash, dataset fingerprint, seed); the entry lives at
``<dir>/<first 2 hex of key>/<key>.json`` and is written atomically the moment a candidate finishes,
so a killed shard loses at most the candidate in flight. Two jobs that want the same run at once
(a level and a baseline sharing a cell) serialise on a per-key lock (:meth:`ResultCache.lock`):
the second waits, then finds the first one's record, so a run is never trained twice. Only a run
that is missing takes the lock, so a read-only cache serves every record it holds. An entry that cannot be parsed, is not a
valid record (:func:`pnas_core.io.records.check_record`: its cell text must parse to its ``cell_id``, its
accuracy lie in [0, 1] ...) or belongs to another key is reported (``warnings.warn``, naming the
entry and why), treated as missing and overwritten by the retrained record, so it is never served.

An early-stopping rung that stops a run after epoch r of the full budget keeps its record beside the
run's entry, at ``<key>.e<r>.json``, and the state to resume from at ``<key>.e<r>.pt``
(:meth:`ResultCache.checkpoint_path`); the run's full-budget record is the ordinary entry, the same
one training without early stopping writes. A rung shares the run's lock.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import warnings
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from pnas_core.errors import PnasError
from pnas_core.io.atomic import write_json
from pnas_core.io.records import RECORD_KEY, check_record
from pnas_core.io.text_io import loads_json
from pnas_core.locks import locked
from pnas_core.names import DEFAULT_CACHE_DIR


class CorruptCacheEntry(UserWarning):
    """A cache entry that could not be used; it is ignored and retrained."""


def cache_key(cell_id: str, settings_hash: str, dataset: str, seed: int) -> str:
    """The 64-hex key of one training run."""
    text = json.dumps([cell_id, settings_hash, dataset, int(seed)])
    return hashlib.sha256(text.encode()).hexdigest()


def entry_name(key: str, rung: int | None) -> str:
    """File stem of a run's entry: the key, or ``<key>.e<rung>`` for its record stopped at a rung."""
    return key if rung is None else f"{key}.e{rung}"


class ResultCache:
    """Training records on disk under ``root``, addressed by :func:`cache_key`."""

    def __init__(self, root: str | os.PathLike[str] = DEFAULT_CACHE_DIR) -> None:
        self.root = Path(root)
        if self.root.exists() and not self.root.is_dir():
            raise PnasError(f"cache dir {self.root} exists and is not a folder")

    def path(self, key: str) -> Path:
        """File of ``key`` (an :func:`entry_name`)."""
        return self.root / key[:2] / f"{key}.json"

    def checkpoint_path(self, cell_id: str, settings_hash: str, dataset: str, seed: int, rung: int) -> Path:
        """The training state of a run stopped at epoch ``rung`` (see :class:`pnas_core.training.train.Rung`)."""
        key = cache_key(cell_id, settings_hash, dataset, seed)
        return self.root / key[:2] / f"{entry_name(key, rung)}.pt"

    def remove_checkpoints(self, cell_id: str, settings_hash: str, dataset: str, seed: int) -> int:
        """Delete every rung checkpoint of one run; how many there were."""
        key = cache_key(cell_id, settings_hash, dataset, seed)
        found = list((self.root / key[:2]).glob(f"{key}.e*.pt"))
        for path in found:
            path.unlink(missing_ok=True)
        return len(found)

    @contextlib.contextmanager
    def lock(self, cell_id: str, settings_hash: str, dataset: str, seed: int) -> Iterator[None]:
        """Hold the exclusive lock of one run (:func:`pnas_core.locks.locked`)."""
        key = cache_key(cell_id, settings_hash, dataset, seed)
        path = self.root / "locks" / key[:2] / f"{key}.lock"
        path.parent.mkdir(parents=True, exist_ok=True)
        with locked(path):
            yield

    def get(
        self, cell_id: str, settings_hash: str, dataset: str, seed: int, rung: int | None = None
    ) -> dict[str, Any] | None:
        """The cached record of this run (stopped at epoch ``rung``, when given), or None (missing or
        corrupt; corrupt entries warn)."""
        key = entry_name(cache_key(cell_id, settings_hash, dataset, seed), rung)
        path = self.path(key)
        if path.exists() and not path.is_file():
            raise PnasError(
                f"cache entry {path} is not a file; move it away (the cache writes the entry there)"
            )
        if not path.is_file():
            return None
        try:
            entry = loads_json(path.read_text())
            record = entry["record"]
            check_record(record)
            if entry.get("key") != key:
                raise PnasError(f"entry key {entry.get('key')!r} does not match its file name")
            want = dict(zip(RECORD_KEY, (cell_id, settings_hash, dataset, int(seed)), strict=True))
            got = {k: record[k] for k in RECORD_KEY}
            if got != want:
                raise PnasError(f"entry is for {got}, not {want}")
        except (OSError, ValueError, KeyError, TypeError, PnasError) as exc:
            warnings.warn(
                f"ignoring corrupt cache entry {path} ({type(exc).__name__}: {exc}); retraining",
                CorruptCacheEntry,
                stacklevel=2,
            )
            return None
        return record

    def full_records(self) -> Iterator[dict[str, Any]]:
        """Every full-budget record the cache holds (rung entries left out), as stored, unchecked;
        an unreadable entry is skipped silently (:meth:`get` reports it when a run asks for it)."""
        for path in self.root.glob("*/*.json"):
            if ".e" in path.stem:  # <key>.e<rung>: a record stopped at a rung (entry_name)
                continue
            try:
                record = loads_json(path.read_text())["record"]
            except (OSError, ValueError, KeyError, TypeError):
                continue
            if isinstance(record, dict):
                yield record

    def put(self, record: Mapping[str, Any], rung: int | None = None) -> Path:
        """Store ``record`` atomically under its key (as stopped at epoch ``rung``, when given);
        returns the file written."""
        check_record(record)
        key = entry_name(cache_key(*(record[k] for k in RECORD_KEY)), rung)
        path = self.path(key)
        write_json(path, {"key": key, "record": dict(record)})
        return path
