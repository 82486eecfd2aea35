"""The predictor interface (in the spirit of NASLib's ``predictor.py``), registry and input handling.

A predictor maps cells of any size to a predicted validation accuracy: ``fit(cells, accuracies)``,
``predict(cells) -> (mean, std)``, ``predict_children(parents, table)`` and
``predict_insertions(parents, blocks, positions, parent_index)`` (the beam's fast paths) and
``save`` / ``load`` of a folder; ``fit_jobs`` and ``insertion_jobs`` give the same fit and scoring as
independent parts that :func:`pnas_core.surrogate.jobs.run_jobs` may spread over threads. Cells are
given as a token array ``(n, 4·b)``, a list of token arrays, :class:`~pnas_core.space.cells.Cell` objects
or cell texts; sizes may be mixed.
"""

from __future__ import annotations

import abc
import os
from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from pnas_core.errors import PnasError
from pnas_core.io.atomic import atomic_dir, write_json
from pnas_core.io.text_io import read_json
from pnas_core.space.cells import TOKEN_DTYPE, Cell, insert_blocks, parse
from pnas_core.surrogate.jobs import Jobs, one_job
from pnas_core.surrogate.settings import SurrogateSettings

CellsLike = np.ndarray | Sequence[np.ndarray] | Sequence[Cell] | Sequence[str]
CONFIG_FILE = "config.json"

PREDICTORS: dict[str, type[Predictor]] = {}
"""Registered predictor classes by name (``rnn``, ``mlp``, ``xgb``)."""


def register(name: str) -> Callable[[type[Predictor]], type[Predictor]]:
    """Class decorator adding a predictor to :data:`PREDICTORS`."""

    def deco(cls: type[Predictor]) -> type[Predictor]:
        cls.name = name
        PREDICTORS[name] = cls
        return cls

    return deco


def as_token_list(cells: CellsLike) -> list[np.ndarray]:
    """One int8 token row per cell, from any accepted cell form."""
    if isinstance(cells, np.ndarray):
        if cells.ndim != 2 or cells.shape[1] % 4 or cells.shape[1] == 0:
            raise PnasError(f"expected a token array of shape (n, 4·b), got {cells.shape}")
        return list(cells.astype(TOKEN_DTYPE, copy=False))
    out = []
    for c in cells:
        if isinstance(c, str):
            out.append(parse(c).tokens())
        elif isinstance(c, Cell):
            out.append(c.tokens())
        else:
            out.append(Cell.from_tokens(c).tokens())
    return out


def group_by_size(cells: CellsLike) -> list[tuple[np.ndarray, np.ndarray]]:
    """Split cells into ``(row indices, tokens (n_b, 4·b))`` groups of equal size, smallest first."""
    if isinstance(cells, np.ndarray) and cells.ndim == 2:
        as_token_list(cells[:0])  # shape check
        return [(np.arange(len(cells)), cells.astype(TOKEN_DTYPE, copy=False))]
    rows = as_token_list(cells)
    if not rows:
        raise PnasError("no cells given")
    sizes = np.array([len(r) for r in rows])
    groups = []
    for size in np.unique(sizes):
        idx = np.flatnonzero(sizes == size)
        groups.append((idx, np.stack([rows[i] for i in idx])))
    return groups


def check_targets(groups: list[tuple[np.ndarray, np.ndarray]], accuracies: Sequence[float]) -> np.ndarray:
    """Accuracies as float64, checked to be finite, in [0, 1] and one per cell."""
    y = np.asarray(accuracies, dtype=np.float64).ravel()
    n = sum(len(idx) for idx, _ in groups)
    if len(y) != n:
        raise PnasError(f"got {n} cells but {len(y)} accuracies")
    if n < 2:
        raise PnasError(f"need at least 2 cells to fit a predictor, got {n}")
    if not np.all(np.isfinite(y)) or y.min() < 0 or y.max() > 1:
        raise PnasError("accuracies must be finite and in [0, 1]")
    return y


class Predictor(abc.ABC):
    """Accuracy predictor over cells of any size."""

    name: ClassVar[str] = ""
    warm_startable: ClassVar[bool] = False
    """Whether ``fit`` takes ``warm_from``: a fitted predictor of the same kind to start from."""

    def __init__(self, settings: SurrogateSettings | None = None) -> None:
        self.settings = settings or SurrogateSettings()
        self.meta: dict[str, Any] = {}

    @property
    def fitted(self) -> bool:
        return bool(self.meta)

    @abc.abstractmethod
    def fit(self, cells: CellsLike, accuracies: Sequence[float]) -> Predictor:
        """Fit on cells and their validation accuracies; returns self."""

    @property
    def own_threads(self) -> bool:
        """Whether fitting (and, unless the subclass's jobs say otherwise, scoring) runs threads of
        its own (then :class:`Jobs` ``alone``)."""
        return False

    def fit_jobs(
        self, cells: CellsLike, accuracies: Sequence[float], warm_from: Predictor | None = None
    ) -> Jobs[Predictor]:
        """``fit`` as independent parts (one, unless a subclass splits it): once they have run, in any
        order or concurrently, and been combined, the predictor is fitted. ``warm_from`` is passed to
        ``fit`` (predictors with ``warm_startable`` only)."""
        if warm_from is None:
            return one_job(partial(self.fit, cells, accuracies), self.own_threads)
        if not self.warm_startable:
            raise PnasError(f"the {self.name} predictor cannot warm-start")
        call = partial(self.fit, cells, accuracies, warm_from=warm_from)  # type: ignore[call-arg]
        return one_job(call, self.own_threads)

    @abc.abstractmethod
    def _predict_tokens(self, tokens: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(mean, std) for equal-size token rows."""

    def predict(self, cells: CellsLike) -> tuple[np.ndarray, np.ndarray]:
        """Predicted accuracy ``mean`` and ensemble spread ``std`` (0 for single models), float32."""
        self._require_fitted()
        groups = group_by_size(cells)
        n = sum(len(idx) for idx, _ in groups)
        mean, std = np.empty(n, np.float32), np.empty(n, np.float32)
        for idx, tokens in groups:
            mean[idx], std[idx] = self._predict_tokens(tokens)
        return mean, std

    def predict_children(self, parents: np.ndarray, table: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Scores of every child ``parent + block`` for parents (P, 4·b) and blocks (m, 4).

        Row ``p·m + j`` is parent p extended by block j (the layout of ``Space.expand``). Subclasses
        override this with a path that shares the work on each parent's prefix.
        """
        self._require_fitted()
        p, m = len(parents), len(table)
        children = np.concatenate([np.repeat(parents, m, axis=0), np.tile(table, (p, 1))], axis=1)
        return self._predict_tokens(children)

    def predict_insertions(
        self, parents: np.ndarray, blocks: np.ndarray, positions: np.ndarray, parent_index: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """Scores of children ``insert_blocks(parents[parent_index], blocks, positions)``: child i is
        parent ``parent_index[i]`` (of parents (P, 4·b)) with block i (blocks (n, 4)) inserted at
        position i (0..b; b appends), later references shifted (:func:`pnas_core.space.cells.insert_blocks`).

        The beam scores every canonical child this way. Subclasses override it with a path that
        shares the work on each parent's blocks before the insertion.
        """
        self._require_fitted()
        return self._predict_tokens(insert_blocks(parents[parent_index], blocks, positions))

    def insertion_jobs(
        self, parents: np.ndarray, blocks: np.ndarray, positions: np.ndarray, parent_index: np.ndarray
    ) -> Jobs[tuple[np.ndarray, np.ndarray]]:
        """:meth:`predict_insertions` as independent parts (one, unless a subclass splits it)."""
        call = partial(self.predict_insertions, parents, blocks, positions, parent_index)
        return one_job(call, self.own_threads)

    def _require_fitted(self) -> None:
        if not self.fitted:
            raise PnasError(f"the {self.name} predictor is not fitted")

    # ------------------------------------------------------------------ persistence

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the fitted predictor to folder ``path`` atomically (temp folder + rename)."""
        self._require_fitted()
        with atomic_dir(path) as tmp:
            self._save_state(tmp)
            write_json(
                tmp / CONFIG_FILE,
                {"predictor": self.name, "settings": self.settings.to_dict(), "meta": self.meta},
            )

    @abc.abstractmethod
    def _save_state(self, folder: Path) -> None:
        """Write the model files into ``folder``."""

    @abc.abstractmethod
    def _load_state(self, folder: Path) -> None:
        """Read the model files written by :meth:`_save_state`."""

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Predictor:
        """Read a predictor saved with :meth:`save` (the class is taken from its config)."""
        folder = Path(path)
        config_path = folder / CONFIG_FILE
        if not config_path.is_file():
            raise PnasError(f"no saved predictor at {folder} (missing {CONFIG_FILE})")
        config = read_json(config_path, "predictor config")
        name = config.get("predictor") if isinstance(config, dict) else None
        if name not in PREDICTORS:
            raise PnasError(f"{config_path}: unknown predictor {name!r}")
        if cls is not Predictor and PREDICTORS[name] is not cls:
            raise PnasError(f"{config_path} holds a {name} predictor, not {cls.name}")
        if not isinstance(config.get("settings"), dict) or not isinstance(config.get("meta"), dict):
            raise PnasError(f"{config_path} lacks its settings or meta mapping")
        try:
            obj = PREDICTORS[name](SurrogateSettings.from_dict(config["settings"]))
        except PnasError as exc:
            raise PnasError(f"{config_path}: {exc}") from exc
        obj.meta = dict(config["meta"])
        try:
            obj._load_state(folder)
        except Exception as exc:  # torch, xgboost and OS errors alike: the saved files are corrupt
            raise PnasError(
                f"saved {name} predictor {folder} is corrupt: {type(exc).__name__}: {_first_line(exc)}"
            ) from exc
        return obj


def _first_line(exc: BaseException) -> str:
    """The first line of an exception's message (xgboost appends its C++ stack)."""
    return (str(exc).strip().splitlines() or [""])[0]


def make_predictor(name: str, settings: SurrogateSettings | None = None) -> Predictor:
    """A fresh predictor by registry name; unknown names raise :class:`PnasError`."""
    if name not in PREDICTORS:
        raise PnasError(f"unknown predictor {name!r} (known: {', '.join(PREDICTORS)})")
    return PREDICTORS[name](settings)
