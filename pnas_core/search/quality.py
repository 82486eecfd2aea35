"""Predictor quality (docs/method.md, "Predictor quality and Algorithm 2"): Spearman rho on held-out
b-block cells and on (b+1)-block cells, and the paper's Algorithm 2 (T times, fit on K random cells of
each size 1..b, as the search's predictor at level b has seen every size up to b)."""

from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Sequence

import numpy as np
import pandas as pd
import pyarrow as pa

from pnas_core.errors import PnasError
from pnas_core.stats import spearman
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
"""One row per (predictor or "mean", repeat, split); split is "train" (the fitted b-block cells),
"heldout" (b-block cells not fitted) or "next" (cells of size b+1). ``n_train`` counts the fitted
cells of every size 1..b. ``rho`` is NaN where :func:`pnas_core.stats.spearman` is (fewer than 3
cells, or constant)."""


class UnfinishedCells(UserWarning):
    """Some cells of the quality experiment diverged or failed; the fit uses those that finished."""


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


def _by_size(records: pd.DataFrame, b: int, min_cells: int) -> dict[int, pd.DataFrame]:
    """The ok cells of each size 1..b+1 (one row per cell), checked to hold ``min_cells`` of size b."""
    data = fit_data(records)
    sizes = {j: data[data["num_blocks"] == j].reset_index(drop=True) for j in range(1, b + 2)}
    if len(sizes[b]) < min_cells:
        raise PnasError(f"need at least {min_cells} ok records with {b} blocks, got {len(sizes[b])}")
    return sizes


def heldout_quality(
    records: pd.DataFrame,
    b: int,
    predictors: Sequence[str],
    settings: SurrogateSettings,
    train_size: int | None = None,
    seed: int = 0,
    holdout: float = 0.2,
) -> pd.DataFrame:
    """Fit on a random (1 - holdout) share of the b-block cells (at most ``train_size``) and every
    smaller cell; report rho on the held-out b-block cells ("heldout") and on all (b+1)-block cells
    ("next")."""
    if not 0 < holdout < 1:
        raise PnasError(f"holdout must be in (0, 1), got {holdout}")
    sizes = _by_size(records, b, 5)
    now = sizes[b]
    perm = np.random.default_rng(seed).permutation(len(now))
    n_test = max(2, round(holdout * len(now)))
    test, train = now.iloc[perm[:n_test]], now.iloc[perm[n_test:]]
    if train_size is not None:
        train = train.iloc[: _check_size(train_size, len(train))]
    fitted = pd.concat([*(sizes[j] for j in range(1, b)), train])
    rows = _fit_and_rank(fitted, {"heldout": test, "next": sizes[b + 1]}, predictors, settings, b, 0)
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
    """The paper's Algorithm 2: T times, fit on K random cells of each size 1..b (all of a size with
    fewer than K, the b-block ones included; seed + t for the predictors too), then rho on the fitted b-block cells ("train"),
    on the b-block cells not fitted ("heldout") and on the (b+1)-block cells ("next")."""
    if repeats < 1:
        raise PnasError(f"--repeats must be at least 1, got {repeats}")
    sizes = _by_size(records, b, 2)
    drawn = records.loc[records["num_blocks"] == b, "cell"].nunique()
    _check_size(train_size, drawn)  # more than were drawn: a wrong --train-size
    k, unfinished = min(train_size, len(sizes[b])), drawn - len(sizes[b])
    if unfinished:
        warnings.warn(
            f"{unfinished} {b}-block cell(s) did not finish (diverged or failed): fitting on {k} of the "
            f"{len(sizes[b])} that did (train size {train_size})",
            UnfinishedCells,
            stacklevel=2,
        )
    rng = np.random.default_rng(seed)
    rows = []
    for t in range(repeats):
        picks = {
            j: rng.choice(len(sizes[j]), size=min(k, len(sizes[j])), replace=False) for j in range(1, b + 1)
        }
        fitted = pd.concat([sizes[j].iloc[np.sort(picks[j])] for j in range(1, b + 1)])
        now = sizes[b].iloc[np.sort(picks[b])]
        heldout = sizes[b].drop(index=picks[b])
        s = dataclasses.replace(settings, seed=settings.seed + t)
        evals = {"train": now, "heldout": heldout, "next": sizes[b + 1]}
        rows += _fit_and_rank(fitted, evals, predictors, s, b, t)
    return _frame(rows)


def _check_size(train_size: int, available: int) -> int:
    """K: ``train_size``, or every available cell when there are fewer."""
    if train_size < 2:
        raise PnasError(f"--train-size must be at least 2, got {train_size}")
    return min(train_size, available)


def _frame(rows: list[dict]) -> pd.DataFrame:
    return pa.Table.from_pylist(rows, schema=QUALITY_SCHEMA).to_pandas()
