"""A folder of fitted predictors (one sub-folder each) plus ``manifest.json``, fit from records."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import pandas as pd

from pnas_core.errors import PnasError
from pnas_core.io.atomic import atomic_dir, write_json
from pnas_core.io.text_io import read_json
from pnas_core.surrogate.base import PREDICTORS, Predictor, make_predictor
from pnas_core.surrogate.jobs import run_jobs
from pnas_core.surrogate.settings import SurrogateSettings

MANIFEST = "manifest.json"


def fit_predictors(
    fit_df: pd.DataFrame,
    names: Sequence[str],
    settings: SurrogateSettings,
    warm: Mapping[str, Predictor] | None = None,
    workers: int = 1,
) -> dict[str, Predictor]:
    """Fit each named predictor on ``fit_df`` (columns cell, val_acc; see ``records.fit_data``).

    With ``warm`` (e.g. the previous level's :func:`load_predictors`) the predictors that can start
    from fitted weights (``warm_startable``) start from the one of the same name. The predictors'
    parts (an ensemble's members) run on ``workers`` threads, in the order named; the fitted
    predictors are the same for any ``workers``.
    """
    if not names:
        raise PnasError("no predictors named")
    if len(set(names)) != len(names):
        raise PnasError(f"predictor names repeat: {' '.join(names)}")
    cells = fit_df["cell"].tolist()
    acc = fit_df["val_acc"].to_numpy()
    jobs = []
    for name in names:
        predictor = make_predictor(name, settings)
        start = (warm or {}).get(name) if predictor.warm_startable else None
        jobs.append(predictor.fit_jobs(cells, acc, warm_from=start))
    return dict(zip(names, run_jobs(jobs, workers), strict=True))


def save_predictors(predictors: dict[str, Predictor], folder: str | os.PathLike[str]) -> None:
    """Write every predictor and the manifest into ``folder`` atomically (temp folder + rename)."""
    with atomic_dir(folder) as tmp:
        for name, predictor in predictors.items():
            predictor.save(tmp / name)
        write_json(
            tmp / MANIFEST,
            {"predictors": list(predictors), "meta": {n: p.meta for n, p in predictors.items()}},
        )


def load_predictors(folder: str | os.PathLike[str]) -> dict[str, Predictor]:
    """Read a folder written by :func:`save_predictors`, predictors in manifest order.

    The manifest may name only known predictors (:data:`PREDICTORS`), each once: a name is the
    sub-folder read, so nothing else (``../elsewhere``) is; each sub-folder must hold the predictor it
    is named after."""
    folder = Path(folder)
    manifest = folder / MANIFEST
    if not manifest.is_file():
        raise PnasError(f"no surrogate at {folder} (missing {MANIFEST})")
    content = read_json(manifest, "surrogate manifest")
    names = content.get("predictors") if isinstance(content, dict) else None
    if not isinstance(names, list) or not names or not all(isinstance(n, str) for n in names):
        raise PnasError(f"surrogate manifest {manifest} lists no predictors")
    unknown = [n for n in names if n not in PREDICTORS]
    if unknown:
        raise PnasError(
            f"surrogate manifest {manifest} names unknown predictor {unknown[0]!r} (known: {', '.join(PREDICTORS)})"
        )
    if len(set(names)) != len(names):
        raise PnasError(f"surrogate manifest {manifest} names a predictor twice: {' '.join(names)}")
    return {name: PREDICTORS[name].load(folder / name) for name in names}
