"""Independent pieces of predictor work, run on one thread or spread over a few.

A predictor splits a fit or a scoring call into :class:`Jobs`: parts that share nothing while they
run (an ensemble's members), and a ``combine`` step. :func:`run_jobs` runs the parts of several
predictors on a pool of threads, each part on one torch thread, so the result is bitwise the same for
any number of workers; PyTorch and XGBoost release the GIL while they compute, so two workers on two
cores fit and score about twice as fast (bench/score.py).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import torch

from pnas_core.errors import PnasError

R = TypeVar("R")


@contextmanager
def one_thread() -> Iterator[None]:
    """Run torch on one CPU thread for fitting and scoring: the members are too small to gain much
    from more, on a loaded 2-core machine two threads made fitting 6-10x and RNN scoring 4-8x slower
    (bench/score.py), and results then do not depend on the core count. More cores are used by
    running members side by side (:func:`run_jobs`)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


@dataclass(frozen=True)
class Jobs(Generic[R]):
    """``parts`` to run in any order or concurrently, then ``combine`` of their results in order;
    ``alone``: the parts run threads of their own (XGBoost's fit with ``n_jobs`` > 1), so they run
    by themselves, after the others (beside a busy thread, XGBoost's thread team ran 10x slower)."""

    parts: Sequence[Callable[[], Any]]
    combine: Callable[[list[Any]], R]
    alone: bool = False

    def run(self) -> R:
        """Run the parts one after another on this thread, then combine."""
        return self.combine([part() for part in self.parts])


def one_job(call: Callable[[], R], alone: bool = False) -> Jobs[R]:
    """Work that does not split: a single part whose result is the result."""
    return Jobs([call], lambda results: results[0], alone)


def run_jobs(jobs: Sequence[Jobs[Any]], workers: int = 1) -> list[Any]:
    """Each of ``jobs`` run, its parts on ``workers`` threads; the combined results in the order of
    ``jobs``. Jobs that do not split start first, then the split ones' parts in the order given, so
    the many small parts fill in around the big indivisible ones; ``alone`` jobs run after, one
    part at a time. The first failing part's exception is raised after the parts already started
    have finished; parts not started are dropped."""
    if workers < 1:
        raise PnasError(f"workers must be >= 1, got {workers}")
    if workers == 1:
        return [job.run() for job in jobs]
    pooled = sorted((i for i, job in enumerate(jobs) if not job.alone), key=lambda i: len(jobs[i].parts) > 1)
    results: dict[int, Any] = {}
    with one_thread():  # worker threads take torch's thread count from here, on their first op
        pool = ThreadPoolExecutor(workers, thread_name_prefix="pnas-surrogate")
        try:
            futures = {i: [pool.submit(part) for part in jobs[i].parts] for i in pooled}
            for i, parts in futures.items():
                results[i] = jobs[i].combine([f.result() for f in parts])
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
    for i, job in enumerate(jobs):
        if job.alone:
            results[i] = job.run()
    return [results[i] for i in range(len(jobs))]
