"""A run's plan, before anything trains: the dataset, B, K, the models each stage trains, the baselines
and a cost estimate from the training times the result cache measured on this kind of device.

The workflow prints it first (``pnas plan``, from Snakemake's ``onstart``) and keeps it beside the
results (``results/<name>/plan.json``), where ``pnas status`` reads the stages still to come. Counts
follow the workflow's rules: every 1-block cell at level 1, then ``min(K, distinct b-block cells)``
per level (:func:`pnas_core.search.beam.search_budget`); the random baseline's budget the search's
unless set; the predictor-quality experiment ``cells_per_size`` cells of each size 1..max(sizes)+1.
"""

from __future__ import annotations

import dataclasses
import os
import statistics
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pnas_core.io.atomic import write_json
from pnas_core.io.text_io import read_json
from pnas_core.space.cells import Space
from pnas_core.training.cache import ResultCache

PLAN_FILE = "plan.json"
"""The plan's file name in ``results/<name>/``."""
LARGE_RUN = 500
"""Models above which the plan says the run is large (the quick preset trains 100 in its search)."""


@dataclass(frozen=True)
class Plan:
    """What a run will train, stage by stage (``level<b>``, ``random``, ``quality/b<b>``)."""

    name: str
    dataset: str
    max_blocks: int
    beam_size: int
    ops: list[str]
    shards: int
    stages: dict[str, int]
    """Models each training stage trains (a level picked within cost budgets may train fewer)."""
    rungs: list[int]
    """Epochs of each early-stopping rung, the full budget last; empty without early stopping."""
    epochs: int
    """A search candidate's training epochs."""
    final_epochs: int
    cache_dir: str

    @property
    def search_models(self) -> int:
        return sum(n for stage, n in self.stages.items() if stage.startswith("level"))

    @property
    def models(self) -> int:
        return sum(self.stages.values())

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Plan:
        return cls(**{f.name: data[f.name] for f in dataclasses.fields(cls)})


def plan_from_config(config: Mapping[str, Any]) -> Plan:
    """The plan of a checked workflow config (every key present: the workflow fills in the defaults)."""
    search = config["search"]
    b_max, k = int(search["max_blocks"]), int(search["beam_size"])
    space = Space.from_names(search["ops"], b_max)
    stages = {"level1": space.count_distinct(1)}
    stages.update({f"level{b}": space.cap_to_distinct(b, k) for b in range(2, b_max + 1)})
    if config["random_search"]["enabled"]:
        budget = config["random_search"]["budget"]
        stages["random"] = sum(stages.values()) if budget is None else int(budget)
    quality = config["quality"]
    if quality["enabled"] and b_max > 1:
        sizes = quality["sizes"] or list(range(1, b_max))
        for b in range(1, max(sizes) + 2):
            stages[f"quality/b{b}"] = space.cap_to_distinct(b, int(quality["cells_per_size"]))
    train = config["train"]
    epochs = int(train.get("epochs", 0))
    stop = search.get("early_stop")
    return Plan(
        name=str(config["name"]),
        dataset=str(config["dataset"]),
        max_blocks=b_max,
        beam_size=k,
        ops=[str(op) for op in search["ops"]],
        shards=int(search["train_shards"]),
        stages=stages,
        rungs=[*stop["rungs"], epochs] if stop else [],
        epochs=epochs,
        final_epochs=int(config["final"].get("epochs", 0)),
        cache_dir=str(config["cache_dir"]),
    )


def write_plan(path: str | os.PathLike[str], plan: Plan) -> None:
    """Write the plan as JSON (atomic); a run keeps it at ``results/<name>/plan.json``."""
    write_json(path, plan.to_dict())


def read_plan(results: str | os.PathLike[str]) -> Plan | None:
    """The plan kept in a run's results folder, or None (a run started before plans were kept)."""
    path = Path(results) / PLAN_FILE
    return Plan.from_dict(read_json(path, "plan")) if path.is_file() else None


@dataclass(frozen=True)
class Timing:
    """Measured seconds to train one candidate, and where they were measured (``source``)."""

    seconds: float
    source: str


def measured_timing(cache_dir: str | os.PathLike[str], settings_hash: str, device: str) -> Timing | None:
    """The median training time of the cached full-budget runs with these training settings on this
    kind of device (``cpu``, ``cuda``), or None when the cache holds none."""
    times = [
        float(record["train_seconds"])
        for record in ResultCache(cache_dir).full_records()
        if record.get("settings_hash") == settings_hash
        and str(record.get("device", "")).split(":")[0] == device
        and record.get("status") == "ok"
    ]
    if not times:
        return None
    return Timing(statistics.median(times), f"the median of {len(times)} cached run(s) on {device}")


def duration(seconds: float) -> str:
    """``1h02m``, ``3m05s`` or ``12s``."""
    s = round(seconds)
    if s >= 3600:
        return f"{s // 3600}h{s % 3600 // 60:02d}m"
    if s >= 60:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s}s"


def estimate_text(models: int, timing: Timing | None, shards: int, device: str) -> str:
    """What ``models`` trainings cost: measured seconds x models, and the wall time with ``shards``
    training jobs at once; "unknown on this device" without a measured time."""
    if timing is None:
        return f"unknown on this device ({device}: no cached run with these training settings yet)"
    total = timing.seconds * models
    wall = f", about {duration(total / shards)} with {shards} training jobs at once" if shards > 1 else ""
    return f"{duration(total)} of training ({models} models x {timing.seconds:.1f} s, {timing.source}){wall}"


def plan_text(plan: Plan, timing: Timing | None, device: str) -> str:
    """The plan as the lines a run prints first."""
    levels = ", ".join(f"level {s[5:]}: {n}" for s, n in plan.stages.items() if s.startswith("level"))
    lines = [
        f"pnas plan: {plan.name}: dataset {plan.dataset}, B = {plan.max_blocks} levels, K = {plan.beam_size}, "
        f"{len(plan.ops)} ops ({', '.join(plan.ops)}), {plan.shards} training job(s) per stage",
        f"  search: {plan.search_models} models ({levels}), {plan.epochs} epochs each"
        + (f", early stopping at epochs {plan.rungs[:-1]}" if plan.rungs else ""),
    ]
    if "random" in plan.stages:
        lines.append(f"  baseline: random search, {plan.stages['random']} models")
    quality = {s: n for s, n in plan.stages.items() if s.startswith("quality/")}
    if quality:
        lines.append(
            f"  baseline: predictor quality (Algorithm 2), {sum(quality.values())} models "
            f"({', '.join(f'{s[9:]} blocks: {n}' for s, n in quality.items())})"
        )
    lines.append(f"  then: the final network, {plan.final_epochs} epochs (not in the estimate)")
    lines.append(f"  models to train: {plan.models} (cached ones are not trained again)")
    lines.append(f"  estimated cost: {estimate_text(plan.models, timing, plan.shards, device)}")
    if plan.models > LARGE_RUN:
        lines.append(
            f"  note: {plan.models} models is a large run; keys a config leaves out take the paper's "
            "defaults (config/README.md): set search.max_blocks and search.beam_size for a smaller one"
        )
    return "\n".join(lines)
