"""Predictor quality (SPEC §4, §5): Spearman rho on held-out b-block cells and on (b+1)-block cells,
and the paper's Algorithm 2 (fit on K random b-block cells, T times)."""

from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Sequence

import numpy as np
import pandas as pd
import pyarrow as pa

from pnas_core.errors import PnasError
from pnas_core.surrogate import SurrogateSettings, fit_data, make_predictor

QUALITY_SCHEMA = pa.schema(
    [
        pa.field("predictor", pa.string(), nullable=False),
        pa.field("blocks", pa.int32(), nullable=False),
        pa.field("repeat", pa.int32(), nullable=False),
        pa.field("split", pa.string(), nullable=False),
        pa.field("rho", pa.float64()),
        pa.field("n_train", pa.int32(), nullable=False),
        pa.field("n_eval", pa.int32(), nullable=False),
    ]
)
"""One row per (predictor or "mean", repeat, split); split is "heldout" or "train" (cells of size b)
or "next" (cells of size b+1). ``rho`` is NaN where fewer than 2 cells or constant predictions."""


class UnfinishedCells(UserWarning):
    """Some cells of the quality experiment diverged or failed; the fit uses those that finished."""


def spearman(pred: np.ndarray, truth: np.ndarray) -> float:
    """Spearman rank correlation; NaN when undefined."""
    from scipy.stats import spearmanr

    if len(pred) < 2 or np.ptp(pred) == 0 or np.ptp(truth) == 0:
        return float("nan")
    return float(spearmanr(pred, truth).statistic)


def _fit_and_rank(
    train: pd.DataFrame,
    evals: dict[str, pd.DataFrame],
    predictors: Sequence[str],
    settings: SurrogateSettings,
    b: int,
    repeat: int,
) -> list[dict]:
    """Fit each predictor on ``train`` and rank every eval set; the "mean" row averages predictors."""
    preds: dict[str, dict[str, np.ndarray]] = {split: {} for split in evals}
    for name in predictors:
        model = make_predictor(name, settings).fit(train["cell"].tolist(), train["val_acc"].to_numpy())
        for split, df in evals.items():
            if len(df):
                preds[split][name] = model.predict(df["cell"].tolist())[0]
    names = [*predictors, "mean"] if len(predictors) > 1 else list(predictors)
    rows = []
    for split, df in evals.items():
        truth = df["val_acc"].to_numpy()
        for name in names:
            if not len(df):
                rho = float("nan")
            elif name == "mean":
                rho = spearman(np.mean([preds[split][p] for p in predictors], axis=0), truth)
            else:
                rho = spearman(preds[split][name], truth)
            rows.append(
                dict(
                    predictor=name,
                    blocks=b,
                    repeat=repeat,
                    split=split,
                    rho=rho,
                    n_train=len(train),
                    n_eval=len(df),
                )
            )
    return rows


def _by_size(records: pd.DataFrame, b: int, min_cells: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    data = fit_data(records)
    now, nxt = data[data["num_blocks"] == b], data[data["num_blocks"] == b + 1]
    if len(now) < min_cells:
        raise PnasError(f"need at least {min_cells} ok records with {b} blocks, got {len(now)}")
    return now.reset_index(drop=True), nxt.reset_index(drop=True)


def evaluate(
    records: pd.DataFrame,
    b: int,
    predictors: Sequence[str],
    settings: SurrogateSettings,
    train_size: int | None = None,
    seed: int = 0,
    holdout: float = 0.2,
) -> pd.DataFrame:
    """Fit on a random (1 - holdout) share of the b-block cells (at most ``train_size``); report rho on
    the held-out b-block cells ("heldout") and on all (b+1)-block cells ("next")."""
    if not 0 < holdout < 1:
        raise PnasError(f"holdout must be in (0, 1), got {holdout}")
    now, nxt = _by_size(records, b, 5)
    perm = np.random.default_rng(seed).permutation(len(now))
    n_test = max(2, round(holdout * len(now)))
    test, train = now.iloc[perm[:n_test]], now.iloc[perm[n_test:]]
    if train_size is not None:
        train = train.iloc[: _check_size(train_size, len(train))]
    rows = _fit_and_rank(train, {"heldout": test, "next": nxt}, predictors, settings, b, 0)
    return _frame(rows)


def algorithm2(
    records: pd.DataFrame,
    b: int,
    predictors: Sequence[str],
    settings: SurrogateSettings,
    train_size: int,
    repeats: int,
    seed: int = 0,
) -> pd.DataFrame:
    """Paper's Algorithm 2: T times, fit on K random b-block cells (seed + t for the predictors too),
    rho on those fitted cells ("train") and on the (b+1)-block cells ("next")."""
    if repeats < 1:
        raise PnasError(f"--repeats must be at least 1, got {repeats}")
    now, nxt = _by_size(records, b, 2)
    drawn = records.loc[records["num_blocks"] == b, "cell"].nunique()
    _check_size(train_size, drawn)  # more than were drawn: a wrong --train-size
    k, unfinished = min(train_size, len(now)), drawn - len(now)
    if unfinished:
        warnings.warn(
            f"{unfinished} {b}-block cell(s) did not finish (diverged or failed): fitting on {k} of the "
            f"{len(now)} that did (train size {train_size})",
            UnfinishedCells,
            stacklevel=2,
        )
    rng = np.random.default_rng(seed)
    rows = []
    for t in range(repeats):
        train = now.iloc[np.sort(rng.choice(len(now), size=k, replace=False))]
        s = dataclasses.replace(settings, seed=settings.seed + t)
        rows += _fit_and_rank(train, {"train": train, "next": nxt}, predictors, s, b, t)
    return _frame(rows)


def _check_size(train_size: int, available: int) -> int:
    if not 2 <= train_size <= available:
        raise PnasError(f"--train-size must be in 2..{available} (cells available), got {train_size}")
    return train_size


def _frame(rows: list[dict]) -> pd.DataFrame:
    return pa.Table.from_pylist(rows, schema=QUALITY_SCHEMA).to_pandas()
