"""Families weighted by how well each ranked held-out cells (docs/method.md, "Surrogate predictors").

Fitting: the fit data is split into ``weighted_folds`` folds, each cell size dealt round-robin over
the folds in a seeded random order (so every fold holds every size). Each family of ``weighted_of``
is fit on all folds but one and predicts the left-out fold, giving one out-of-fold prediction per
cell. A family's held-out rho is the Spearman rho of those predictions within each cell size,
averaged over the sizes weighted by their cell counts (sizes whose rho is undefined, e.g. under 3
cells, are left out). Its weight is ``max(rho, 0)`` over the sum of those; if no family has a
positive rho (or none is defined) the weights are equal. Then every family is fit on all the data.

Prediction: ``mean = Σ_f w_f · mean_f`` and ``std`` the spread of the weighted mixture of the
families' ensembles, ``std² = Σ_f w_f · (std_f² + (mean_f − mean)²)`` (the law of total variance;
with equal weights it is ``select_by: ucb``'s pooled spread).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from pnas_core.stats import spearman
from pnas_core.surrogate.base import (
    CellsLike,
    Predictor,
    as_token_list,
    check_targets,
    group_by_size,
    make_predictor,
    register,
)


def size_folds(sizes: np.ndarray, k: int, seed: int) -> np.ndarray:
    """Fold (0..k-1) of each cell: per size, the cells in seeded random order dealt round-robin."""
    fold = np.empty(len(sizes), np.int64)
    rng = np.random.default_rng([seed, 18])
    for size in np.unique(sizes):
        idx = np.flatnonzero(sizes == size)
        fold[idx[rng.permutation(len(idx))]] = np.arange(len(idx)) % k
    return fold


def heldout_rho(pred: np.ndarray, y: np.ndarray, sizes: np.ndarray) -> float:
    """Spearman rho of ``pred`` against ``y`` within each size, averaged weighted by the sizes' cell
    counts; NaN when no size has a defined rho."""
    rhos, counts = [], []
    for size in np.unique(sizes):
        idx = sizes == size
        rho = spearman(pred[idx], y[idx])
        if np.isfinite(rho):
            rhos.append(rho)
            counts.append(int(idx.sum()))
    return float(np.average(rhos, weights=counts)) if rhos else float("nan")


def weights_from_rho(rhos: Sequence[float]) -> np.ndarray:
    """``max(rho, 0)`` normalised to sum 1 (NaN counts as 0); equal weights if none is positive."""
    r = np.nan_to_num(np.asarray(rhos, np.float64), nan=0.0).clip(min=0.0)
    return r / r.sum() if r.sum() > 0 else np.full(len(r), 1.0 / len(r))


@register("weighted")
class WeightedPredictor(Predictor):
    """The families of ``weighted_of``, combined with weights from their held-out rho."""

    def __init__(self, settings=None) -> None:
        super().__init__(settings)
        self.families = self.settings.weighted_of.split("+")  # distinct known families (SurrogateSettings)
        self.members: dict[str, Predictor] = {}
        self.weights = np.zeros(0)

    @property
    def own_threads(self) -> bool:
        return any(make_predictor(name, self.settings).own_threads for name in self.families)

    def fit(self, cells: CellsLike, accuracies: Sequence[float]) -> WeightedPredictor:
        """Measure each family's held-out rho over the folds, set the weights, fit on everything."""
        rows = as_token_list(cells)
        y = check_targets(group_by_size(rows), accuracies)
        sizes = np.array([len(r) // 4 for r in rows])
        k = min(self.settings.weighted_folds, len(y))
        fold = size_folds(sizes, k, self.settings.seed)
        rhos = []
        for name in self.families:
            pred = np.full(len(y), np.nan)
            for f in range(k):
                train, test = np.flatnonzero(fold != f), np.flatnonzero(fold == f)
                if len(test) == 0 or len(train) < 2:
                    continue
                model = make_predictor(name, self.settings).fit([rows[i] for i in train], y[train])
                pred[test] = model.predict([rows[i] for i in test])[0]
            rhos.append(heldout_rho(pred, y, sizes))
        self.weights = weights_from_rho(rhos)
        self.members = {name: make_predictor(name, self.settings).fit(rows, y) for name in self.families}
        self.meta = {
            "n_fit": len(y),
            "max_blocks_fit": int(sizes.max()),
            "mean_acc": float(y.mean()),
            "members": len(self.families),
            "heldout_rho": {
                n: r if np.isfinite(r) else None for n, r in zip(self.families, rhos, strict=True)
            },
            "weights": dict(zip(self.families, self.weights.tolist(), strict=True)),
        }
        return self

    def _combine(self, scores: list[tuple[np.ndarray, np.ndarray]]) -> tuple[np.ndarray, np.ndarray]:
        means = np.stack([m.astype(np.float64) for m, _ in scores])
        stds = np.stack([s.astype(np.float64) for _, s in scores])
        w = self.weights[:, None]
        mean = (w * means).sum(axis=0)
        var = (w * (stds**2 + (means - mean) ** 2)).sum(axis=0)
        return mean.astype(np.float32), np.sqrt(var).astype(np.float32)

    def _predict_tokens(self, tokens: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return self._combine([p.predict(tokens) for p in self.members.values()])

    def predict_children(self, parents: np.ndarray, table: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Each family's own fast path, combined."""
        self._require_fitted()
        return self._combine([p.predict_children(parents, table) for p in self.members.values()])

    def predict_insertions(
        self, parents: np.ndarray, blocks: np.ndarray, positions: np.ndarray, parent_index: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """Each family's own insertion path, combined."""
        self._require_fitted()
        return self._combine(
            [p.predict_insertions(parents, blocks, positions, parent_index) for p in self.members.values()]
        )

    def _save_state(self, folder: Path) -> None:
        for name, predictor in self.members.items():
            predictor.save(folder / name)

    def _load_state(self, folder: Path) -> None:
        self.members = {name: Predictor.load(folder / name) for name in self.families}
        self.weights = np.array([self.meta["weights"][name] for name in self.families])
