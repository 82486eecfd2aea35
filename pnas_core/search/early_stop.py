"""Successive halving inside a search level: train every candidate a few epochs, keep the best.

With early stopping (:class:`EarlyStop`, the config's ``search.early_stop``) a level trains in rungs
r_1 < r_2 < ... < r_m < E (epochs of the full budget E): every candidate of the level trains to
epoch r_1; the best ``keep`` share of them by validation accuracy at r_1 (:func:`promote`) resumes
from its rung checkpoint and trains to r_2, and so on; the last promoted ones train to E. Each rung
is an ordinary cached training run stopped early (:class:`pnas_core.training.train.Rung`), with the learning
rate schedule of E epochs, so a promoted candidate ends exactly as an uninterrupted training would.

A level's records hold each candidate's last record (:func:`last_records`): ``status`` ``ok`` for
those trained to E, ``stopped`` (with ``epochs`` and ``val_acc`` of its last rung) for the others.
``fit_on`` says what the predictors fit on: ``full`` (only records trained to E) or ``all`` (stopped
records too, with their accuracy at their last rung).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd

from pnas_core.errors import PnasError
from pnas_core.names import DEFAULT_FIT_ON, FIT_ON
from pnas_core.rungs import rungs_problem

RUNG_STATUSES = ("ok", "stopped")
"""Statuses of a rung's records that can be promoted (``ok`` when a rung is the full budget)."""


@dataclass(frozen=True)
class EarlyStop:
    """Rungs (epochs, increasing, below the full budget), the share ``keep`` promoted at each rung,
    and what the predictors fit on (:data:`pnas_core.names.FIT_ON`)."""

    rungs: tuple[int, ...]
    keep: float
    fit_on: str = DEFAULT_FIT_ON

    def __post_init__(self) -> None:
        rungs = tuple(self.rungs)
        problem = rungs_problem(rungs)
        if problem:
            raise PnasError(f"early_stop.rungs {problem}")
        if not 0 < self.keep < 1:
            raise PnasError(f"early_stop.keep must be in (0, 1), got {self.keep}")
        if self.fit_on not in FIT_ON:
            raise PnasError(f"early_stop.fit_on must be one of {', '.join(FIT_ON)}, got {self.fit_on!r}")
        object.__setattr__(self, "rungs", rungs)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any] | None) -> EarlyStop | None:
        """From the config's ``search.early_stop`` mapping (None: early stopping off)."""
        if d is None:
            return None
        return cls(tuple(int(r) for r in d["rungs"]), float(d["keep"]), str(d.get("fit_on", DEFAULT_FIT_ON)))

    def budgets(self, epochs: int, eval_every: int = 1) -> list[int]:
        """Epochs each rung trains to: the rungs, then the full budget ``epochs``. Every rung must be
        below ``epochs`` and an evaluated epoch (:func:`pnas_core.rungs.rungs_problem`)."""
        problem = rungs_problem(self.rungs, epochs, eval_every)
        if problem:
            raise PnasError(f"early_stop.rungs {problem}")
        return [*self.rungs, epochs]


def promoted_count(n: int, keep: float) -> int:
    """How many of ``n`` candidates a rung promotes: ceil(keep n), at least 1 (none of none)."""
    return min(n, max(1, math.ceil(keep * n - 1e-9)))


def promote(records: pd.DataFrame, keep: float) -> list[str]:
    """Cells of a rung's records to train on: the :func:`promoted_count` of all of them with the
    highest ``val_acc`` among those that stopped normally (ties: cell text), in record order."""
    alive = records[records["status"].isin(RUNG_STATUSES)]
    ranked = alive.sort_values(["val_acc", "cell"], ascending=[False, True], kind="mergesort")
    chosen = set(ranked["cell"].head(promoted_count(len(records), keep)))
    return [c for c in records["cell"] if c in chosen]


def last_records(rungs: Sequence[pd.DataFrame]) -> pd.DataFrame:
    """Each cell's record of the last rung that trained it, in the first rung's order."""
    if not rungs:
        raise PnasError("no rung records given")
    last = {row["cell"]: row for frame in rungs for row in frame.to_dict("records")}
    return pd.DataFrame([last[c] for c in rungs[0]["cell"]], columns=rungs[0].columns)


def records_at(rows: pd.DataFrame, epoch: int, full: int) -> pd.DataFrame:
    """Records of ``full``-epoch runs as the rung stopping them after ``epoch`` would have written
    them (their learning curves must include it): ``val_acc`` and ``val_curve`` up to it, ``epochs``,
    and, below ``full``, status ``stopped`` for the runs that were ``ok``. Rows without ``epoch`` on
    the curve (diverged before it) keep their status and end at their last evaluated epoch."""
    out = rows.copy()
    at = [list(e).index(epoch) if epoch in list(e) else None for e in out["curve_epochs"]]
    out["val_curve"] = [
        list(c)[: i + 1] if i is not None else list(c) for c, i in zip(out["val_curve"], at, strict=True)
    ]
    out["curve_epochs"] = [
        list(e)[: i + 1] if i is not None else list(e) for e, i in zip(out["curve_epochs"], at, strict=True)
    ]
    reached = pd.Series([i is not None for i in at], index=out.index)
    out.loc[reached, "val_acc"] = [c[-1] for c, r in zip(out["val_curve"], reached, strict=True) if r]
    if epoch < full:
        out.loc[reached & (out["status"] == "ok"), "status"] = "stopped"
    out["epochs"] = [
        epoch if r else (list(e)[-1] if len(e) else 0)
        for e, r in zip(out["curve_epochs"], reached, strict=True)
    ]
    return out


EvaluateAt = Callable[[list[str], int, "int | None"], pd.DataFrame]
"""``(cells, epoch to stop at, epoch to resume from or None) -> their records``."""


def successive_halving(
    cells: list[str], evaluate: EvaluateAt, early_stop: EarlyStop, budgets: list[int]
) -> pd.DataFrame:
    """Train ``cells`` rung by rung (``budgets`` from :meth:`EarlyStop.budgets`); their last records."""
    frames, current, previous = [], list(cells), None
    for epochs in budgets:
        frames.append(evaluate(current, epochs, previous))
        current, previous = promote(frames[-1], early_stop.keep), epochs
    return last_records(frames)
