"""Search strategies compared over seeds, by models trained and at equal training compute: the
statistics ``pnas simulate`` (on a benchmark table) and ``pnas compare-replicates`` (the workflow's
replicated searches) print and write (docs/method.md, "Replicated searches").

Each strategy contributes, per seed, the models it trained in order: their observed accuracy (NaN for a
model that failed, diverged or was stopped early), their **training cost** and their measured seconds.
The cost of training a model is deterministic: the forward multiply-adds of its search network per
image × the training images × the epochs it ran (:func:`training_cost`; the backward pass and
validation add roughly proportional amounts and are not counted). **Equal compute** for a seed is the
smallest total cost any strategy spent on it; a strategy's reading at equal compute counts only the
models it had finished within that cost.
"""

from __future__ import annotations

import dataclasses
import warnings

import numpy as np
import pandas as pd
from scipy.stats import wilcoxon

from pnas_core.errors import PnasError
from pnas_core.stats import ACCURACY_RANGE, best_so_far, t_interval, top_k_mean_so_far
from pnas_core.training.splits import split_sizes

TOP_K = 5
GRID_POINTS = 300
"""Points of the compute axis the compute curves are read at."""


def training_cost(mult_adds: np.ndarray, epochs: np.ndarray, train_images: int) -> np.ndarray:
    """Multiply-adds of training each model: forward mult-adds per image × images × epochs."""
    return np.asarray(mult_adds, np.float64) * float(train_images) * np.asarray(epochs, np.float64)


def train_images(dataset: str) -> int:
    """Training images of the dataset with this fingerprint (``name-CxHxW-train/val/test-hash``)."""
    return split_sizes(dataset)[0]


@dataclasses.dataclass
class Runs:
    """Per strategy, arrays of shape (seeds × models) in training order: ``accuracy`` (NaN where not
    ok or not trained to the full budget, and past the end of a short run), ``cost`` (training cost,
    0 past the end) and ``seconds`` (measured training seconds, 0 past the end); ``seeds`` names the
    rows."""

    accuracy: dict[str, np.ndarray]
    cost: dict[str, np.ndarray]
    seconds: dict[str, np.ndarray]
    seeds: list[int]

    def __post_init__(self) -> None:
        for name, acc in self.accuracy.items():
            shapes = {acc.shape, self.cost[name].shape, self.seconds[name].shape}
            if len(shapes) != 1 or acc.shape[0] != len(self.seeds):
                raise PnasError(f"strategy {name!r}: accuracy, cost and seconds must be seeds × models")

    @property
    def strategies(self) -> list[str]:
        return list(self.accuracy)

    def cumulative_cost(self, name: str) -> np.ndarray:
        return np.cumsum(self.cost[name], axis=1)

    def equal_compute(self) -> np.ndarray:
        """Per seed, the smallest total training cost any strategy spent."""
        return np.min([self.cost[n].sum(axis=1) for n in self.strategies], axis=0)


def _so_far(acc: np.ndarray, top_k: int) -> tuple[np.ndarray, np.ndarray]:
    """Best and top-k mean so far, row by row."""
    best = np.stack([best_so_far(row) for row in acc])
    topk = np.stack([top_k_mean_so_far(row, top_k) for row in acc])
    return best, topk


def long_table(runs: Runs, top_k: int = TOP_K) -> pd.DataFrame:
    """One row per seed, strategy and model: seed, strategy, model (1-based), val_acc, best_so_far,
    topk_mean_so_far, cost, cumulative_cost, seconds, cumulative_seconds (the comparison table)."""
    frames = []
    for name in runs.strategies:
        acc = runs.accuracy[name]
        best, topk = _so_far(acc, top_k)
        n_seeds, n_models = acc.shape
        frames.append(
            pd.DataFrame(
                {
                    "seed": np.repeat(runs.seeds, n_models),
                    "strategy": name,
                    "model": np.tile(np.arange(1, n_models + 1), n_seeds),
                    "val_acc": acc.ravel(),
                    "best_so_far": best.ravel(),
                    "topk_mean_so_far": topk.ravel(),
                    "cost": runs.cost[name].ravel(),
                    "cumulative_cost": runs.cumulative_cost(name).ravel(),
                    "seconds": runs.seconds[name].ravel(),
                    "cumulative_seconds": np.cumsum(runs.seconds[name], axis=1).ravel(),
                }
            )
        )
    return pd.concat(frames, ignore_index=True)


def curves(accuracy: dict[str, np.ndarray], top_k: int = TOP_K) -> pd.DataFrame:
    """Per strategy and models trained: best and top-k mean so far, each as mean and 95% interval
    over seeds. Columns: strategy, models_trained, best_mean, best_lo, best_hi, topk_mean, topk_lo,
    topk_hi."""
    frames = []
    for name, acc in accuracy.items():
        best, topk = _so_far(acc, top_k)
        (bm, bl, bh), (tm, tl, th) = t_interval(best, ACCURACY_RANGE), t_interval(topk, ACCURACY_RANGE)
        frames.append(
            pd.DataFrame(
                {
                    "strategy": name,
                    "models_trained": np.arange(1, acc.shape[1] + 1),
                    "best_mean": bm,
                    "best_lo": bl,
                    "best_hi": bh,
                    "topk_mean": tm,
                    "topk_lo": tl,
                    "topk_hi": th,
                }
            )
        )
    return pd.concat(frames, ignore_index=True)


def _within(acc: np.ndarray, cumulative: np.ndarray, limit: np.ndarray) -> np.ndarray:
    """``acc`` with the models finished beyond each row's cost ``limit`` masked (NaN)."""
    return np.where(cumulative <= limit[:, None] * (1 + 1e-12), acc, np.nan)


def compute_curves(runs: Runs, top_k: int = TOP_K, points: int = GRID_POINTS) -> pd.DataFrame:
    """Per strategy, best and top-k mean so far against training compute: mean and 95% interval over
    seeds at ``points`` evenly spaced costs up to the largest total, each strategy up to (and at) the
    smallest total any of its seeds spent (beyond it some seeds have no reading). Columns: strategy, compute, then as
    :func:`curves`."""
    top = max(float(runs.cost[n].sum(axis=1).max()) for n in runs.strategies)
    grid = np.linspace(0.0, top, points + 1)[1:]
    frames = []
    for name in runs.strategies:
        cumulative = runs.cumulative_cost(name)
        end = float(cumulative[:, -1].min())
        x = np.append(grid[grid < end], end)
        columns: dict[str, np.ndarray] = {}
        for col, fn in (("best", np.nanmax), ("topk", None)):
            values = np.full((len(runs.seeds), len(x)), np.nan)
            for i, limit in enumerate(x):
                masked = _within(runs.accuracy[name], cumulative, np.full(len(runs.seeds), limit))
                values[:, i] = _read(masked, fn, top_k)
            mean, lo, hi = t_interval(values, ACCURACY_RANGE)
            columns |= {f"{col}_mean": mean, f"{col}_lo": lo, f"{col}_hi": hi}
        frames.append(pd.DataFrame({"strategy": name, "compute": x, **columns}))
    return pd.concat(frames, ignore_index=True)


def _read(acc: np.ndarray, fn, top_k: int) -> np.ndarray:
    """Per row: the best (``fn`` = nanmax) or the top-k mean of the finite values; NaN if too few."""
    out = np.full(len(acc), np.nan)
    for i, row in enumerate(acc):
        finite = np.sort(row[np.isfinite(row)])[::-1]
        if fn is not None and len(finite):
            out[i] = finite[0]
        elif fn is None and len(finite) >= top_k:
            out[i] = finite[:top_k].mean()
    return out


def final_readings(runs: Runs, top_k: int = TOP_K) -> dict[str, dict[str, np.ndarray]]:
    """Per strategy, per-seed readings: ``best`` and ``topk`` after all its models, ``best_ec`` and
    ``topk_ec`` at equal compute, ``models_ec`` (models finished within it), ``cost``, ``seconds``."""
    limit = runs.equal_compute()
    out = {}
    for name in runs.strategies:
        acc = runs.accuracy[name]
        within = _within(acc, runs.cumulative_cost(name), limit)
        out[name] = {
            "best": _read(acc, np.nanmax, top_k),
            "topk": _read(acc, None, top_k),
            "best_ec": _read(within, np.nanmax, top_k),
            "topk_ec": _read(within, None, top_k),
            "models_ec": (runs.cumulative_cost(name) <= limit[:, None] * (1 + 1e-12)).sum(axis=1),
            "cost": runs.cost[name].sum(axis=1),
            "seconds": runs.seconds[name].sum(axis=1),
        }
    return out


READINGS = ("best", "topk", "best_ec", "topk_ec", "models_ec", "cost", "seconds")
ACCURACY_READINGS = ("best", "topk", "best_ec", "topk_ec")
"""The readings that are accuracies (their intervals clipped to [0, 1])."""


def strategy_summary(runs: Runs, top_k: int = TOP_K) -> pd.DataFrame:
    """One row per strategy: models (M), then for each reading of :func:`final_readings` its mean
    over seeds and 95% interval (``<reading>_mean``, ``_lo``, ``_hi``)."""
    readings = final_readings(runs, top_k)
    rows = []
    for name in runs.strategies:
        row: dict[str, object] = {"strategy": name, "models": runs.accuracy[name].shape[1]}
        for key in READINGS:
            clip = ACCURACY_RANGE if key in ACCURACY_READINGS else None
            mean, lo, hi = t_interval(np.asarray(readings[name][key], np.float64)[:, None], clip)
            row |= {f"{key}_mean": float(mean[0]), f"{key}_lo": float(lo[0]), f"{key}_hi": float(hi[0])}
        rows.append(row)
    return pd.DataFrame(rows)


def _wilcoxon(diff: np.ndarray) -> float:
    """Two-sided Wilcoxon signed-rank p of paired differences (zero differences dropped); NaN when
    every difference is zero or fewer than one remains."""
    nonzero = diff[np.isfinite(diff) & (diff != 0)]
    if not len(nonzero):
        return float("nan")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # scipy warns that small samples use the exact distribution
        return float(wilcoxon(nonzero).pvalue)


def paired_differences(runs: Runs, against: list[str], top_k: int = TOP_K) -> pd.DataFrame:
    """Every strategy not in ``against`` minus every strategy in ``against``, seed by seed, for the
    best and the top-k mean after all models (``models``) and at equal compute (``compute``): columns
    strategy, baseline, measure (best | topk), reading (models | compute), seeds, mean, lo, hi (95%
    interval of the mean difference), wins, ties, losses, p (Wilcoxon signed-rank, two-sided)."""
    readings = final_readings(runs, top_k)
    rows = []
    for name in (n for n in runs.strategies if n not in against):
        for base in against:
            for measure in ("best", "topk"):
                for reading, suffix in (("models", ""), ("compute", "_ec")):
                    diff = readings[name][measure + suffix] - readings[base][measure + suffix]
                    diff = diff[np.isfinite(diff)]
                    mean, lo, hi = (
                        (float(v[0]) for v in t_interval(diff[:, None])) if len(diff) else (np.nan,) * 3
                    )
                    rows.append(
                        {
                            "strategy": name,
                            "baseline": base,
                            "measure": measure,
                            "reading": reading,
                            "seeds": len(diff),
                            "mean": mean,
                            "lo": lo,
                            "hi": hi,
                            "wins": int((diff > 0).sum()),
                            "ties": int((diff == 0).sum()),
                            "losses": int((diff < 0).sum()),
                            "p": _wilcoxon(diff),
                        }
                    )
    return pd.DataFrame(rows)


def reach_baseline(runs: Runs, against: list[str], top_k: int = TOP_K) -> pd.DataFrame:
    """For every strategy (baselines included, each against itself as the reference) and baseline:
    in how many seeds the strategy reached the baseline's final best of that seed, and the median over
    seeds of the models and the training compute it needed (a seed that never reached it counts as
    infinite, so the median is infinite when half the seeds did not). Columns strategy, baseline,
    seeds, reached, models, compute."""
    readings = final_readings(runs, top_k)
    rows = []
    for name in runs.strategies:
        best = np.stack([best_so_far(row) for row in runs.accuracy[name]])
        cumulative = runs.cumulative_cost(name)
        for base in against:
            target = readings[base]["best"]
            hit = best >= target[:, None]
            reached = hit.any(axis=1)
            first = np.where(reached, hit.argmax(axis=1), -1)
            models = np.where(reached, first + 1, np.inf)
            compute = np.where(reached, cumulative[np.arange(len(first)), first], np.inf)
            rows.append(
                {
                    "strategy": name,
                    "baseline": base,
                    "seeds": len(target),
                    "reached": int(reached.sum()),
                    "models": float(np.median(models)),
                    "compute": float(np.median(compute)),
                }
            )
    return pd.DataFrame(rows)


def _interval(mean: float, lo: float, hi: float, fmt: str) -> str:
    if np.isnan(lo):
        return format(mean, fmt)
    return f"{mean:{fmt}} [{lo:{fmt}}, {hi:{fmt}}]"


def _table(rows: list[tuple[str, ...]]) -> str:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows)


def format_comparison(
    summary: pd.DataFrame, paired: pd.DataFrame, reach: pd.DataFrame, seeds: int, top_k: int = TOP_K
) -> str:
    """The three tables as aligned text: per strategy (by models and at equal compute), the paired
    differences, and the models and compute to reach each baseline's final best."""
    out = [
        f"Per strategy, mean over {seeds} seeds [95% interval]; compute: training multiply-adds "
        f"(mult-adds × images × epochs); equal compute: per seed, the smallest total any strategy spent",
        _table(
            [
                ("strategy", "models", "best", f"top-{top_k} mean", "compute", "seconds",
                 "best at equal compute", f"top-{top_k} at equal compute", "models within it"),
                *(
                    (
                        r.strategy,
                        str(r.models),
                        _interval(r.best_mean, r.best_lo, r.best_hi, ".4f"),
                        _interval(r.topk_mean, r.topk_lo, r.topk_hi, ".4f"),
                        f"{r.cost_mean:.3g}",
                        f"{r.seconds_mean:.0f}",
                        _interval(r.best_ec_mean, r.best_ec_lo, r.best_ec_hi, ".4f"),
                        _interval(r.topk_ec_mean, r.topk_ec_lo, r.topk_ec_hi, ".4f"),
                        f"{r.models_ec_mean:.0f}",
                    )
                    for r in summary.itertuples()
                ),
            ]
        ),
    ]  # fmt: skip
    if len(paired):
        out += [
            "",
            "Paired differences, strategy − baseline, seed by seed: mean [95% interval], wins/ties/losses, "
            "Wilcoxon signed-rank p (two-sided)",
            _table(
                [
                    ("strategy", "baseline", "measure", "at", "difference", "w/t/l", "p"),
                    *(
                        (
                            r.strategy,
                            r.baseline,
                            "best" if r.measure == "best" else f"top-{top_k} mean",
                            "M models" if r.reading == "models" else "equal compute",
                            _interval(r.mean, r.lo, r.hi, "+.4f"),
                            f"{r.wins}/{r.ties}/{r.losses}",
                            "n/a" if np.isnan(r.p) else f"{r.p:.3g}",
                        )
                        for r in paired.itertuples()
                    ),
                ]
            ),
        ]
    if len(reach):
        out += [
            "",
            "To reach the baseline's final best (per seed): seeds that reached it, median models and "
            "median compute needed (inf: not reached in half the seeds or more)",
            _table(
                [
                    ("strategy", "baseline", "reached", "models", "compute"),
                    *(
                        (
                            r.strategy,
                            r.baseline,
                            f"{r.reached}/{r.seeds}",
                            "inf" if np.isinf(r.models) else f"{r.models:.0f}",
                            "inf" if np.isinf(r.compute) else f"{r.compute:.3g}",
                        )
                        for r in reach.itertuples()
                    ),
                ]
            ),
        ]
    return "\n".join(out)
