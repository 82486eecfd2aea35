"""Surrogate settings (docs/method.md, "Surrogate predictors"): one frozen dataclass, read from a dict, JSON or YAML file."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pnas_core.errors import PnasError, shown
from pnas_core.io.settings_io import DEVICE_PATTERN, Rules, check_bounds, check_rules, from_file, from_mapping
from pnas_core.limits import MAX_COUNT, MAX_DERIVED_SEED, MAX_ENSEMBLE, MAX_THREADS, MAX_WIDTH, XGB_MAX_FLOAT
from pnas_core.space.cells import MAX_BLOCKS

XGB_DEFAULTS: dict[str, Any] = {
    "n_estimators": 200,
    "max_depth": 6,
    "learning_rate": 0.075,
    "subsample": 0.8,
    "colsample_bytree": 0.8,
    "min_child_weight": 1.0,
    "reg_lambda": 1.0,
    "n_jobs": 2,
}
"""XGBRegressor parameters; ``n_jobs`` is fixed so results do not depend on the machine."""

LOSSES = ("l1", "mse")
_FAMILY = "rnn|mlp|xgb|gnn"
WEIGHTED_OF_PATTERN = (
    rf"(?!.*\b({_FAMILY})\b.*\b\1\b)(?:{_FAMILY})(?:\+(?:{_FAMILY}))*",
    "give distinct predictors of rnn, mlp, xgb and gnn joined by '+', e.g. rnn+mlp+xgb",
)
"""The families the ``weighted`` predictor may combine (every predictor but itself), each once."""
SURROGATE_RULES = Rules(
    minimum={
        **dict.fromkeys(
            ("ensemble_size", "embed_dim", "hidden_dim", "epochs", "batch_size", "max_blocks"), 1
        ),
        "weighted_folds": 2,
        "weight_decay": 0,
        "rank_weight": 0,
        "seed": 0,
    },
    exclusive_minimum={"lr_first": 0, "lr": 0},
    maximum={
        "max_blocks": MAX_BLOCKS,
        "ensemble_size": MAX_ENSEMBLE,
        **dict.fromkeys(("embed_dim", "hidden_dim"), MAX_WIDTH),
        **dict.fromkeys(("epochs", "batch_size", "weighted_folds"), MAX_COUNT),
        "seed": MAX_DERIVED_SEED,  # the quality repeats fit with seed + t
    },
    choices={"loss": LOSSES},
    patterns={"device": DEVICE_PATTERN, "weighted_of": WEIGHTED_OF_PATTERN},
)
"""The value rules of :class:`SurrogateSettings` (its checks and its JSON schema; ``xgb`` is
checked against :data:`XGB_DEFAULTS` and :data:`XGB_RULES`)."""

XGB_RULES = Rules(
    minimum={
        **dict.fromkeys(("n_estimators", "n_jobs"), 1),
        **dict.fromkeys(("max_depth", "learning_rate", "min_child_weight", "reg_lambda"), 0),
    },
    exclusive_minimum={"subsample": 0, "colsample_bytree": 0},
    maximum={
        "n_estimators": MAX_COUNT,
        "max_depth": 64,
        **dict.fromkeys(("learning_rate", "subsample", "colsample_bytree"), 1),
        **dict.fromkeys(("min_child_weight", "reg_lambda"), XGB_MAX_FLOAT),
        "n_jobs": MAX_THREADS,
    },
)
"""Bounds of the XGBoost parameters: XGBoost's own ranges (learning_rate in [0, 1], subsample and
colsample_bytree in (0, 1], float parameters read as 32-bit floats), depth at most 64."""


def _xgb_value(key: str, value: Any) -> int | float:
    """``value`` of the XGBoost parameter ``key`` checked: a finite number, an integer where the
    default is one (numeric strings such as YAML's ``1e-4`` are read as floats), within
    :data:`XGB_RULES`."""
    is_float = isinstance(XGB_DEFAULTS[key], float)
    if is_float and isinstance(value, str | int) and not isinstance(value, bool):
        try:
            value = float(value)
        except (ValueError, OverflowError):
            pass
    ok = isinstance(value, float) if is_float else isinstance(value, int) and not isinstance(value, bool)
    if not ok or not math.isfinite(value):
        kind = "a finite number" if is_float else "an integer"
        raise PnasError(f"surrogate setting xgb.{key} must be {kind}, got {shown(value)}")
    check_bounds("surrogate", key, value, XGB_RULES, prefix="xgb.")
    return value


@dataclasses.dataclass(frozen=True)
class SurrogateSettings:
    """Predictor hyperparameters; the defaults follow the paper where it states them.

    ``lr_first`` is used when the largest cell in the fit data has one block, ``lr`` otherwise
    (paper: 0.01 and 0.002). Adam is the optimiser. ``max_blocks`` is B, the padding of the XGBoost
    encoding. ``epochs``, ``batch_size`` and ``weight_decay`` are the project's choices (the paper is
    silent). ``rank_weight`` adds a pairwise ranking loss to the neural ensembles' loss (0: off, the
    paper); ``warm_start`` makes ``pnas fit-surrogate --warm-from`` (and the workflow, from level 2)
    start each member from the previous level's fitted member ("train or finetune"; off: the paper's
    fresh fit). XGBoost ignores both. ``device`` is where the neural ensembles fit and score: ``cpu`` (the default, so scores,
    and with them the beam's picks, do not depend on the node) or ``auto``/``cuda``/``cuda:<i>``
    (the workflow's surrogate jobs then declare a GPU). XGBoost always runs on the CPU.
    ``cost_features`` adds per-cell cost features (:mod:`pnas_core.surrogate.cost_features`) to the
    ``gnn`` and ``xgb`` inputs. ``weighted_of`` and ``weighted_folds`` set the families the
    ``weighted`` predictor combines and the folds that measure their held-out rho.
    """

    ensemble_size: int = 5
    embed_dim: int = 100
    hidden_dim: int = 100
    lr_first: float = 0.01
    lr: float = 0.002
    epochs: int = 20
    batch_size: int = 64
    loss: str = "l1"
    weight_decay: float = 0.0
    rank_weight: float = 0.0
    warm_start: bool = False
    xgb: Mapping[str, Any] = dataclasses.field(default_factory=lambda: dict(XGB_DEFAULTS))
    max_blocks: int = MAX_BLOCKS
    device: str = "cpu"
    seed: int = 0
    cost_features: bool = False
    weighted_of: str = "rnn+mlp+xgb"
    weighted_folds: int = 4

    def __post_init__(self) -> None:
        check_rules(self, "surrogate", SURROGATE_RULES)
        unknown = sorted(set(self.xgb) - set(XGB_DEFAULTS), key=str)
        if unknown:
            raise PnasError(
                f"unknown surrogate setting {shown(f'xgb.{unknown[0]}')} (known: {', '.join(sorted(XGB_DEFAULTS))})"
            )
        xgb = {**XGB_DEFAULTS, **{k: _xgb_value(k, v) for k, v in self.xgb.items()}}
        object.__setattr__(self, "xgb", xgb)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SurrogateSettings:
        """Build settings from a mapping; unknown keys raise :class:`PnasError` naming the key."""
        return from_mapping(cls, data, "surrogate")

    @classmethod
    def from_file(cls, path: str | Path) -> SurrogateSettings:
        """Read settings from a JSON or YAML file (by extension)."""
        return from_file(cls, path, "surrogate")

    def to_dict(self) -> dict[str, Any]:
        """Plain dict (JSON-ready); ``from_dict(to_dict())`` round-trips."""
        out = dataclasses.asdict(self)
        out["xgb"] = dict(self.xgb)
        return out

    def lr_for(self, max_b: int) -> float:
        """Learning rate for fit data whose largest cell has ``max_b`` blocks."""
        return self.lr_first if max_b <= 1 else self.lr
