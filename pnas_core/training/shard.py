"""Training one shard of candidates through the result cache, one at a time or W at once.

With ``workers`` W > 1 the shard's candidates are trained by W worker processes (spawned, so CUDA
works in them) on the same device: W networks share one GPU, or the CPU threads are split among them
(``threads // W`` each). Each worker loads the dataset once (an image folder is memory-mapped, so W
workers share its pages). Which worker trains which candidate does not matter: a candidate's seed
comes from its cell id, so with the same threads per candidate the records equal those of W = 1
(bitwise on CPU). Records come back in shard order.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import signal
import threading
import warnings
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from typing import Any

from pnas_core.devices import set_threads
from pnas_core.errors import PnasError
from pnas_core.space.cells import parse
from pnas_core.training.cache import ResultCache
from pnas_core.training.data import DataSplits
from pnas_core.training.train import EpochCallback, Rung, TrainSettings, check_stop, train_candidate

Stop = tuple[int, int | None] | None
"""An early-stopping rung: (epoch to stop at, epoch whose checkpoint to resume from or None)."""

ResultCallback = Callable[[int, str, dict[str, Any], str, list[str]], None]
"""``(index in the shard, cell text, record, "trained" or "cached", warning messages)``."""


def _lookup(
    cache: ResultCache, key: tuple[str, str, str, int], rung: int | None = None
) -> tuple[dict[str, Any] | None, list[str]]:
    """The cached record of ``key`` (stopped at ``rung``, when given; or None) and the messages of
    any cache warnings."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        record = cache.get(*key, rung=rung)
    return record, [str(w.message) for w in caught]


def train_or_get(
    text: str,
    settings: TrainSettings,
    data: DataSplits,
    cache: ResultCache,
    on_epoch: EpochCallback | None = None,
    stop: Stop = None,
) -> tuple[dict[str, Any], str, list[str]]:
    """The cached record of ``text`` (any block order: the key is the canonical cell's id) or, when
    none, a freshly trained and cached one, under the run's cache lock. Reading takes no lock, so a
    read-only cache serves its records. Returns (record, "cached" or "trained", cache warnings).

    ``stop`` = (stop_at, resume_from) trains an early-stopping rung (:class:`pnas_core.training.train.Rung`):
    up to epoch stop_at, continuing from the checkpoint the cache holds for epoch resume_from (None:
    from epoch 0); before the last epoch the rung's record and checkpoint go to the cache beside the
    run's entry, at the last epoch the record is the run's ordinary entry."""
    key = (parse(text).id, settings.settings_hash(), data.fingerprint, settings.seed)
    rung, at = None, None
    if stop is not None:
        check_stop(settings, stop[0])
        if stop[1] is not None and not 1 <= stop[1] < stop[0]:
            raise PnasError(f"a rung resumes from an earlier epoch: got {stop[1]} for a stop at {stop[0]}")
        at = None if stop[0] == settings.epochs else stop[0]
        rung = Rung(
            stop[0],
            resume=None if stop[1] is None else cache.checkpoint_path(*key, stop[1]),
            save=None if at is None else cache.checkpoint_path(*key, at),
        )
    record, messages = _lookup(cache, key, at)
    if record is not None:
        return record, "cached", messages
    with cache.lock(*key):
        record, more = _lookup(cache, key, at)  # another job may have trained it while this one waited
        messages += [m for m in more if m not in messages]  # the same bad entry, read twice
        if record is not None:
            return record, "cached", messages
        record = train_candidate(text, settings, data, on_epoch=on_epoch, rung=rung)
        if record["status"] != "failed":  # an OOM failure may pass on another GPU: not cached
            cache.put(record, at)
        return record, "trained", messages


def train_shard(
    cells: list[str],
    settings: TrainSettings,
    data: DataSplits,
    cache: ResultCache,
    workers: int = 1,
    threads: int = 1,
    on_result: ResultCallback | None = None,
    on_epoch: EpochCallback | None = None,
    stop: Stop = None,
) -> list[dict[str, Any]]:
    """Records of ``cells`` in order; W = ``workers`` processes train at once with ``threads // W``
    torch threads each (W = 1: in this process, ``on_epoch`` reports its epochs); ``stop``: an
    early-stopping rung, see :func:`train_or_get`."""
    if workers < 1:
        raise PnasError(f"workers must be a positive integer, got {workers}")
    records: list[dict[str, Any] | None] = [None] * len(cells)
    if workers == 1 or len(cells) <= 1:
        for k, text in enumerate(cells):
            record, how, messages = train_or_get(text, settings, data, cache, on_epoch, stop)
            records[k] = record
            if on_result is not None:
                on_result(k, text, record, how, messages)
        return [r for r in records if r is not None]
    per_worker = max(1, threads // workers)
    context = multiprocessing.get_context("spawn")
    pool = ProcessPoolExecutor(
        max_workers=min(workers, len(cells)),
        mp_context=context,
        initializer=_start_worker,
        initargs=(settings.to_dict(), str(cache.root), per_worker, stop),
    )
    with _stop_workers_on_exit(pool), _signals_as_flag() as interrupted:
        with _ignoring_ctrl_c():  # the workers start ignoring it: this process stops them
            futures = {pool.submit(_train_in_worker, text): k for k, text in enumerate(cells)}
        pending = set(futures)
        while pending:
            # a timeout, so that a signal (Ctrl-C, SIGTERM) is seen within a second
            done, pending = wait(pending, timeout=1.0, return_when=FIRST_COMPLETED)
            for future in sorted(done, key=futures.__getitem__):
                k = futures[future]
                record, how, messages = future.result()
                records[k] = record
                if on_result is not None:
                    on_result(k, cells[k], record, how, messages)
            if interrupted.is_set():
                raise KeyboardInterrupt
    return [r for r in records if r is not None]


@contextlib.contextmanager
def _ignoring_ctrl_c() -> Iterator[None]:
    """Ignore SIGINT while the body starts worker processes, which inherit that (in the main thread
    only; elsewhere the body just runs)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


_STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)
"""Ctrl-C (the terminal's whole process group) and a scheduler's stop (the job alone)."""


@contextlib.contextmanager
def _signals_as_flag() -> Iterator[threading.Event]:
    """While the body runs, SIGINT and SIGTERM set the yielded flag instead of raising
    KeyboardInterrupt wherever this thread happens to be: raised inside ``concurrent.futures.wait``,
    it can leave a future's lock held, and the executor's exit hook then waits forever. Outside the
    main thread no handler can be set; the flag stays clear there."""
    flag = threading.Event()
    if threading.current_thread() is not threading.main_thread():
        yield flag
        return
    previous = {number: signal.signal(number, lambda *_: flag.set()) for number in _STOP_SIGNALS}
    try:
        yield flag
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)


@contextlib.contextmanager
def _stop_workers_on_exit(pool: ProcessPoolExecutor) -> Iterator[None]:
    """Run the body, then shut ``pool`` down; on an interrupt or an error, cancel the queued
    candidates and end the workers at once, instead of waiting for every queued candidate to train
    (what leaving the executor's ``with`` block does). A killed worker loses only its candidate in
    training: cache entries are written atomically."""
    try:
        yield
    except BaseException:
        workers = list((getattr(pool, "_processes", None) or {}).values())  # public from Python 3.14 on
        pool.shutdown(wait=False, cancel_futures=True)
        for process in workers:
            process.terminate()
        for process in workers:
            process.join(timeout=30)
        raise
    else:
        pool.shutdown()


_WORKER: dict[str, Any] = {}


def _start_worker(settings: dict[str, Any], cache_root: str, threads: int, stop: Stop) -> None:
    """Worker process set-up: torch threads, the settings, the dataset (loaded once), the cache."""
    set_threads(threads)
    _WORKER["settings"] = TrainSettings.from_dict(settings)
    _WORKER["data"] = _WORKER["settings"].load_data()
    _WORKER["cache"] = ResultCache(cache_root)
    _WORKER["stop"] = stop


def _train_in_worker(text: str) -> tuple[dict[str, Any], str, list[str]]:
    return train_or_get(text, _WORKER["settings"], _WORKER["data"], _WORKER["cache"], stop=_WORKER["stop"])
