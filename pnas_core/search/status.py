"""How far a run is, read at any time from its results folder and the result cache: per training stage
(each beam level, the random baseline, the predictor-quality samples) the models trained of those
planned, the best validation accuracy so far, the wall time its results span, and an estimate of the
training that remains. It works on a finished run, an interrupted one and one still going (a candidate
counts the moment its cache entry is written); ``pnas status`` prints it, and each training job prints
its stage's line (:func:`stage_line`) to the terminal a user watches.
"""

from __future__ import annotations

import dataclasses
import os
import re
import statistics
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from pnas_core.io.records import read_metadata, read_records
from pnas_core.io.tables import read_arrow
from pnas_core.io.text_io import read_json
from pnas_core.names import DEFAULT_CACHE_DIR
from pnas_core.search.plan import Plan, Timing, duration, estimate_text, read_plan
from pnas_core.space.cells import parse
from pnas_core.training.cache import ResultCache, cache_key, entry_name
from pnas_core.training.train import TrainSettings, load_settings


@dataclass(frozen=True)
class StageStatus:
    """One training stage's progress."""

    stage: str
    planned: int | None
    """Models the stage trains: its candidates, else the plan's count (None: unknown)."""
    trained: int
    best: float | None
    """Best validation accuracy among its trained models."""
    seconds: list[float]
    """Measured training seconds of each trained model."""
    span: float | None
    """Wall seconds from its first training's start to its last result (None: nothing yet)."""

    @property
    def left(self) -> int:
        return max(0, (self.planned or 0) - self.trained)


@dataclass(frozen=True)
class CacheKey:
    """What, besides the cell, keys a stage's runs in the result cache."""

    cache: ResultCache
    settings_hash: str
    dataset: str
    seed: int
    rungs: Sequence[int] = ()
    """Early-stopping rung epochs, the full budget last (a rung's record counts until the full one)."""


def cached_records(cells: Sequence[str], key: CacheKey) -> list[tuple[dict, float]]:
    """(record, file time) of each of ``cells`` that the cache holds: its full-budget record, else
    its latest rung's. Corrupt entries count as missing (training reports them)."""
    found = []
    rungs = [None, *sorted(key.rungs[:-1], reverse=True)]
    for text in cells:
        run = (parse(text).id, key.settings_hash, key.dataset, key.seed)
        for rung in rungs:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                record = key.cache.get(*run, rung=rung)
            if record is not None:
                path = key.cache.path(entry_name(cache_key(*run), rung))
                found.append((record, path.stat().st_mtime))
                break
    return found


def stage_status(stage: str, planned: int | None, found: Sequence[tuple[dict, float]]) -> StageStatus:
    """A stage's status from the (record, time it was written) of its trained models."""
    accs = [r["val_acc"] for r, _ in found if r["val_acc"] is not None]
    seconds = [float(r["train_seconds"]) for r, _ in found]
    span = None
    if found:
        span = max(t for _, t in found) - min(t - float(r["train_seconds"]) for r, t in found)
    return StageStatus(stage, planned, len(found), max(accs) if accs else None, seconds, span)


def stage_label(stage: str) -> str:
    """A stage's name as the user reads it: ``level 2``, ``level 2 rung 1``, ``random``, ``quality b2``."""
    text = re.sub(r"(level|rung)(\d+)", r"\1 \2", stage)
    return text.replace("/", " ")


def stage_line(status: StageStatus, shards: int) -> str:
    """One line (no carriage return): ``level 2: 14/32 trained, best 0.9512, elapsed 1m20s, about 2m left``."""
    planned = "?" if status.planned is None else status.planned
    best = "-" if status.best is None else f"{status.best:.4f}"
    elapsed = "-" if status.span is None else duration(status.span)
    text = f"{stage_label(status.stage)}: {status.trained}/{planned} trained, best {best}, elapsed {elapsed}"
    if status.left and status.seconds:
        text += f", about {duration(statistics.median(status.seconds) * status.left / shards)} left"
    elif status.planned is not None and not status.left:
        text += ", done"
    return text


@dataclass(frozen=True)
class RunStatus:
    """Every training stage of a run, and what the status was read from."""

    results: Path
    plan: Plan | None
    stages: list[StageStatus]
    final: str
    """The final network: its test accuracy, or what is missing."""

    def table(self) -> str:
        """The status table with a total line and an estimate of the training left."""
        rows = [("stage", "trained", "best val_acc", "elapsed", "train time")]
        for s in self.stages:
            rows.append(
                (
                    stage_label(s.stage),
                    f"{s.trained}/{'?' if s.planned is None else s.planned}",
                    "-" if s.best is None else f"{s.best:.4f}",
                    "-" if s.span is None else duration(s.span),
                    duration(sum(s.seconds)),
                )
            )
        widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
        lines = [
            "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip() for row in rows
        ]
        trained = sum(s.trained for s in self.stages)
        planned = sum(s.planned or 0 for s in self.stages)
        seconds = [t for s in self.stages for t in s.seconds]
        left = sum(s.left for s in self.stages)
        shards = self.plan.shards if self.plan else 1
        timing = None
        if seconds:
            timing = Timing(statistics.median(seconds), f"the median of this run's {len(seconds)} models")
        total = f"total: {trained}/{planned} models trained"
        if left:
            total += f"; {left} left: {estimate_text(left, timing, shards, 'this run')}"
        return "\n".join([f"pnas status: {self.results}", *lines, total, f"final network: {self.final}"])


def stage_names(results: Path, plan: Plan | None) -> list[str]:
    """The run's training stages: the plan's, else those with a candidates file, levels first."""
    if plan is not None:
        stages = list(plan.stages)
    else:
        found = [p.parent.relative_to(results).as_posix() for p in results.glob("**/candidates.parquet")]
        stages = [s for s in found if re.fullmatch(r"level\d+|random|quality/b\d+", s)]
    return sorted(stages, key=lambda s: (s.startswith("quality"), s.startswith("random"), len(s), s))


def dataset_fingerprint(results: Path, settings: TrainSettings) -> str:
    """The dataset fingerprint the run's records carry, else the dataset's own (loaded once)."""
    for path in sorted(results.glob("**/train/shard*.parquet")) + sorted(results.glob("**/trained.parquet")):
        meta = read_metadata(path)
        if "dataset" in meta:
            return meta["dataset"]
    return settings.load_data().fingerprint


def run_status(results: str | os.PathLike[str], cache_dir: str | os.PathLike[str] | None = None) -> RunStatus:
    """The status of the run whose results folder is ``results`` (``results/<name>``); ``cache_dir``
    defaults to the plan's."""
    results = Path(results)
    plan = read_plan(results)
    cache = ResultCache(
        cache_dir if cache_dir is not None else (plan.cache_dir if plan else DEFAULT_CACHE_DIR)
    )
    settings_file = results / "settings" / "train.json"
    key = None
    if settings_file.is_file():
        settings = load_settings(settings_file)
        key = CacheKey(
            cache, settings.settings_hash(), dataset_fingerprint(results, settings), settings.seed,
            plan.rungs if plan else (),
        )  # fmt: skip
    stages = []
    for stage in stage_names(results, plan):
        planned = plan.stages.get(stage) if plan else None
        candidates, trained = results / stage / "candidates.parquet", results / stage / "trained.parquet"
        if trained.is_file():
            records = read_records(trained)
            when = trained.stat().st_mtime
            found = [(r, when) for r in records.to_dict("records")]
            status = stage_status(stage, len(records), found)
            span = _span_of(results, stage)
            stages.append(status if span is None else dataclasses.replace(status, span=span))
            continue
        cells = []
        if candidates.is_file():
            cells = read_arrow(candidates, "candidates", ["cell"]).column("cell").to_pylist()
            planned = len(cells)
        stages.append(stage_status(stage, planned, cached_records(cells, key) if key and cells else []))
    return RunStatus(results, plan, stages, _final_text(results))


def _span_of(results: Path, stage: str) -> float | None:
    """The longest training job of a finished stage, from Snakemake's benchmark files (wall seconds)."""
    spans = []
    for path in (results / "benchmarks" / stage).rglob("train_shard*.tsv"):
        with_data = pd.read_csv(path, sep="\t")
        if len(with_data) and "s" in with_data:
            spans.append(float(with_data["s"].iloc[-1]))
    return max(spans) if spans else None


def _final_text(results: Path) -> str:
    metrics = results / "final" / "metrics.json"
    if not metrics.is_file():
        return "not trained yet"
    data = read_json(metrics, "final metrics")
    acc = data.get("test_acc") if isinstance(data, dict) else None
    return f"test accuracy {acc:.4f} ({metrics})" if isinstance(acc, int | float) else f"trained ({metrics})"
