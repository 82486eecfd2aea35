"""Gradient-boosted baseline (docs/method.md, "Surrogate predictors"; not in the paper): XGBoost on a fixed-length cell encoding."""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial
from pathlib import Path

import numpy as np
from xgboost import XGBRegressor

from pnas_core.errors import PnasError
from pnas_core.space.cells import MAX_BLOCKS, OPS, insert_blocks
from pnas_core.surrogate.base import CellsLike, Predictor, check_targets, group_by_size, register
from pnas_core.surrogate.cost_features import NAMES, cost_features
from pnas_core.surrogate.jobs import Jobs, one_job

MODEL_FILE = "model.json"
N_INPUTS = MAX_BLOCKS + 1
BLOCK_WIDTH = 2 * N_INPUTS + 2 * len(OPS)
"""Per block position: one-hot in1, in2 (inputs 0..MAX_BLOCKS), op1, op2."""


def encode(tokens: np.ndarray, max_blocks: int) -> np.ndarray:
    """Fixed-length float32 features of equal-size token rows (n, 4·b), padded with zeros to
    ``max_blocks`` blocks: per position one-hot (in1, in2, op1, op2), then op counts, then b."""
    n, length = tokens.shape
    b = length // 4
    if b > max_blocks:
        raise PnasError(f"the xgb predictor encodes cells of at most {max_blocks} blocks, got {b}")
    width = max_blocks * BLOCK_WIDTH + len(OPS) + 1
    out = np.zeros((n, width), np.float32)
    flat = out.reshape(-1)
    row_start = np.arange(n, dtype=np.int64) * width
    offsets = (0, N_INPUTS, 2 * N_INPUTS, 2 * N_INPUTS + len(OPS))
    t = tokens.astype(np.int64)
    for j in range(b):
        for k, off in enumerate(offsets):
            flat[row_start + (j * BLOCK_WIDTH + off) + t[:, 4 * j + k]] = 1.0
    ops = np.concatenate([t[:, 2::4], t[:, 3::4]], axis=1)  # (n, 2b)
    row_of = np.repeat(np.arange(n, dtype=np.int64), 2 * b)
    counts = np.bincount(row_of * len(OPS) + ops.ravel(), minlength=n * len(OPS)).reshape(n, len(OPS))
    out[:, max_blocks * BLOCK_WIDTH : -1] = counts
    out[:, -1] = b
    return out


@register("xgb")
class XGBPredictor(Predictor):
    """One XGBRegressor (std is 0); fixed thread count and seed make it repeatable. With
    ``cost_features`` the encoding ends with the cell's cost features."""

    def __init__(self, settings=None) -> None:
        super().__init__(settings)
        self.model = None

    def _regressor(self, base_score: float | None = None) -> XGBRegressor:
        params = dict(self.settings.xgb)
        return XGBRegressor(
            **params,
            tree_method="hist",
            random_state=self.settings.seed,
            base_score=base_score,
            objective="reg:absoluteerror" if self.settings.loss == "l1" else "reg:squarederror",
        )

    @property
    def own_threads(self) -> bool:
        return self.settings.xgb["n_jobs"] != 1

    def fit(self, cells: CellsLike, accuracies: Sequence[float]) -> XGBPredictor:
        """Fit the regressor, its base score set to the mean accuracy."""
        groups = group_by_size(cells)
        y = check_targets(groups, accuracies)
        x = np.empty((len(y), self._width()), np.float32)
        for idx, tokens in groups:
            x[idx] = self._features(tokens)
        self.model = self._regressor(float(y.mean()))
        self.model.fit(x, y)
        max_b = max(t.shape[1] // 4 for _, t in groups)
        self.meta = {"n_fit": len(y), "max_blocks_fit": max_b, "mean_acc": float(y.mean()), "members": 1}
        return self

    def _width(self) -> int:
        cost = len(NAMES) if self.settings.cost_features else 0
        return self.settings.max_blocks * BLOCK_WIDTH + len(OPS) + 1 + cost

    def _features(self, tokens: np.ndarray) -> np.ndarray:
        x = encode(tokens, self.settings.max_blocks)
        return np.concatenate([x, cost_features(tokens)], axis=1) if self.settings.cost_features else x

    def _predict_tokens(self, tokens: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return _scores(self.model.predict(self._features(tokens)))

    def insertion_jobs(
        self, parents: np.ndarray, blocks: np.ndarray, positions: np.ndarray, parent_index: np.ndarray
    ) -> Jobs[tuple[np.ndarray, np.ndarray]]:
        """One part that scores on a single XGBoost thread, so it can share the pool with the
        ensembles' members: each row's prediction sums the same trees in the same order on any
        thread count, so the scores equal :meth:`predict_insertions`'."""
        self._require_fitted()
        return one_job(partial(self._insertions_on_one_thread, parents, blocks, positions, parent_index))

    def _insertions_on_one_thread(
        self, parents: np.ndarray, blocks: np.ndarray, positions: np.ndarray, parent_index: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        tokens = insert_blocks(parents[parent_index], blocks, positions)
        booster = self.model.get_booster().copy()
        booster.set_param({"nthread": 1})
        return _scores(booster.inplace_predict(self._features(tokens)))

    def _save_state(self, folder: Path) -> None:
        self.model.save_model(folder / MODEL_FILE)

    def _load_state(self, folder: Path) -> None:
        self.model = self._regressor()
        self.model.load_model(folder / MODEL_FILE)


def _scores(pred: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """XGBoost's raw predictions as (mean clipped to [0, 1], spread 0), float32."""
    pred = np.asarray(pred, np.float32)
    return np.clip(pred, 0.0, 1.0), np.zeros(len(pred), np.float32)
