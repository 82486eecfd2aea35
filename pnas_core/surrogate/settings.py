"""Surrogate settings (docs/method.md, "Surrogate predictors"): one frozen dataclass, read from a dict, JSON or YAML file."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pnas_core.devices import DEVICE_CHOICES
from pnas_core.errors import PnasError
from pnas_core.settings_io import from_file, from_mapping
from pnas_core.space import MAX_BLOCKS

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


@dataclasses.dataclass(frozen=True)
class SurrogateSettings:
    """Predictor hyperparameters; the defaults follow the paper where it states them.

    ``lr_first`` is used when the largest cell in the fit data has one block, ``lr`` otherwise
    (paper: 0.01 and 0.002). Adam is the optimiser. ``max_blocks`` is B, the padding of the XGBoost
    encoding. ``epochs``, ``batch_size`` and ``weight_decay`` are the project's choices (the paper is
    silent). ``device`` is where the neural ensembles fit and score: ``cpu`` (the default, so scores,
    and with them the beam's picks, do not depend on the node) or ``auto``/``cuda``/``cuda:<i>``
    (the workflow's surrogate jobs then declare a GPU). XGBoost always runs on the CPU.
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
    xgb: Mapping[str, Any] = dataclasses.field(default_factory=lambda: dict(XGB_DEFAULTS))
    max_blocks: int = MAX_BLOCKS
    device: str = "cpu"
    seed: int = 0

    def __post_init__(self) -> None:
        for key in ("ensemble_size", "embed_dim", "hidden_dim", "epochs", "batch_size"):
            value = getattr(self, key)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise PnasError(f"surrogate setting {key!r} must be a positive integer, got {value!r}")
        for key in ("lr_first", "lr"):
            value = getattr(self, key)
            if not isinstance(value, int | float) or value <= 0:
                raise PnasError(f"surrogate setting {key!r} must be a positive number, got {value!r}")
        if not isinstance(self.weight_decay, int | float) or self.weight_decay < 0:
            raise PnasError(f"surrogate setting 'weight_decay' must be >= 0, got {self.weight_decay!r}")
        if self.loss not in LOSSES:
            raise PnasError(f"surrogate setting 'loss' must be one of {', '.join(LOSSES)}, got {self.loss!r}")
        if not isinstance(self.max_blocks, int) or not 1 <= self.max_blocks <= MAX_BLOCKS:
            raise PnasError(
                f"surrogate setting 'max_blocks' must be in 1..{MAX_BLOCKS}, got {self.max_blocks!r}"
            )
        if not isinstance(self.device, str) or (
            self.device not in DEVICE_CHOICES and not re.fullmatch(r"cuda:\d+", self.device)
        ):
            raise PnasError(
                f"surrogate setting 'device' is {self.device!r}; choose cpu, auto, cuda or cuda:<index>"
            )
        if not isinstance(self.seed, int) or isinstance(self.seed, bool):
            raise PnasError(f"surrogate setting 'seed' must be an integer, got {self.seed!r}")
        if not isinstance(self.xgb, Mapping):
            raise PnasError(f"surrogate setting 'xgb' must be a mapping, got {self.xgb!r}")
        unknown = sorted(set(self.xgb) - set(XGB_DEFAULTS))
        if unknown:
            raise PnasError(
                f"unknown surrogate setting 'xgb.{unknown[0]}' (known: {', '.join(sorted(XGB_DEFAULTS))})"
            )
        object.__setattr__(self, "xgb", {**XGB_DEFAULTS, **self.xgb})

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
