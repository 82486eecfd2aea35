"""Training one candidate cell: settings, the training loop, and the record it produces.

:class:`TrainSettings` holds every knob; its defaults are the paper's search-time setup on CIFAR-10
(N=2, F=24, 20 epochs, batch 32, learning rate 0.01 with cosine decay, SGD with momentum 0.9; the
weight decay 1e-4 and plain cross-entropy are the project's choices where the paper is silent).
:func:`train_candidate` builds the network for a cell, trains it on the dataset's train split and
returns a record (see :mod:`pnas_core.io.records`) scored on the validation split.

Data stays on the training device as uint8 tensors; each batch is gathered, augmented (random crop
with zero padding, horizontal flip where the dataset allows it) and normalised with torch ops. On
CUDA the model runs with bf16 autocast; it runs in channels_last everywhere (on CPU this makes the
depthwise convolutions about 1.8x faster). Each candidate's seed is derived from the
global seed and its cell id, so results do not depend on shard order; on CPU the same cell, settings
and seed give bitwise-identical results (for a fixed number of threads).
"""

from __future__ import annotations

import dataclasses
import functools
import gc
import hashlib
import json
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from pnas_core.devices import pick_device
from pnas_core.errors import PnasError
from pnas_core.io.settings_io import (
    Rules,
    check_rules,
    from_file,
    from_mapping,
    merge_rules,
)
from pnas_core.limits import MAX_COUNT, MAX_THREADS
from pnas_core.rungs import is_evaluated
from pnas_core.space.cells import Cell, parse
from pnas_core.training.checkpoint import read_checkpoint, restore, write_checkpoint
from pnas_core.training.complexity import count_mult_adds, count_params
from pnas_core.training.data import DatasetSettings, DataSplits
from pnas_core.training.loop import (
    OPTIMIZERS,
    DeviceSplit,
    accuracy,
    make_optimizer,
    run_epoch,
    seed_run,
)
from pnas_core.training.network import PNASNetwork, build_network
from pnas_core.training.recipe import RECIPE_RULES, epoch_plan, network_settings

TRAIN_CODE_VERSION = 3
"""Bumped whenever training semantics change; part of :meth:`TrainSettings.settings_hash`."""

RUNG_CHECKPOINT_FORMAT = 1
"""Version of the checkpoints early-stopping rungs write (:class:`Rung`)."""

NOT_HASHED = frozenset({"data_root", "download", "device", "workers", "seed"})
"""Fields that do not enter the settings hash: paths, device choice and how many candidates train at
once do not define the experiment (the dataset fingerprint and the record's ``device`` column cover
them) and the seed is its own part of the cache key."""

EpochCallback = Callable[[int, int, float, float], None]
"""``(epoch, epochs, mean train loss, train accuracy)`` after each epoch."""


@dataclass(frozen=True)
class TrainSettings(DatasetSettings):
    """How to train and score one candidate. Defaults follow the paper's CIFAR-10 search.

    Attributes:
        dataset, data_root, download, image_size, val_fraction, test_fraction, split_seed: the
            dataset and its splits (:class:`pnas_core.training.data.DatasetSettings`).
        cells_per_stack: N, cells between reductions (paper search: 2).
        filters: F, filters of the first stack (paper search: 24).
        num_reductions: reduction cells in the network (CIFAR layout: 2).
        epochs: training epochs (paper search: 20).
        batch_size: training batch size (paper: 32).
        optimizer: ``sgd`` (momentum, see ``momentum``) or ``adam``.
        lr: initial learning rate (paper: 0.01).
        momentum: SGD momentum (0.9).
        weight_decay: L2 weight decay on all weights (1e-4).
        lr_schedule: ``cosine`` (decay to 0 over all steps, the paper's) or ``constant``.
        label_smoothing: cross-entropy label smoothing (0).
        grad_clip: clip the global gradient norm to this value; None disables clipping.
        augment: random crop with padding (and flips where the dataset allows) during training.
        eval_every: validation accuracy is measured after every ``eval_every`` epochs and after the
            last one (the record's learning curve, ``val_curve``); 1 evaluates after each epoch.
        device: ``auto`` (CUDA if present), ``cpu``, ``cuda`` or ``cuda:<i>``.
        workers: candidates of a shard trained at once on its device (``pnas train --workers``,
            :mod:`pnas_core.training.shard`); does not change any result.
        seed: global seed; each candidate trains with ``candidate_seed(seed, cell_id)``.
    """

    cells_per_stack: int = 2
    filters: int = 24
    num_reductions: int = 2
    epochs: int = 20
    batch_size: int = 32
    optimizer: str = "sgd"
    lr: float = 0.01
    momentum: float = 0.9
    weight_decay: float = 1e-4
    lr_schedule: str = "cosine"
    label_smoothing: float = 0.0
    grad_clip: float | None = None
    augment: bool = True
    eval_every: int = 1
    device: str = "auto"
    workers: int = 1
    seed: int = 0

    def __post_init__(self) -> None:
        check_rules(self, "train", TRAIN_RULES)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> TrainSettings:
        """Settings from a mapping; unknown keys and wrong types raise :class:`PnasError` naming the key."""
        return from_mapping(cls, d, "train")

    def to_dict(self) -> dict[str, Any]:
        """All fields as a plain dict (JSON-serialisable)."""
        return dataclasses.asdict(self)

    def settings_hash(self) -> str:
        """16 hex of the SHA-256 of the canonical JSON of the fields that affect results plus
        :data:`TRAIN_CODE_VERSION` (see :data:`NOT_HASHED`)."""
        fields = {k: v for k, v in self.to_dict().items() if k not in NOT_HASHED}
        fields["train_code_version"] = TRAIN_CODE_VERSION
        text = json.dumps(fields, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()[:16]


TRAIN_RULES = merge_rules(
    RECIPE_RULES,
    Rules(
        minimum=dict.fromkeys(("eval_every", "workers"), 1),
        maximum={"eval_every": MAX_COUNT, "workers": MAX_THREADS},
        choices={"optimizer": OPTIMIZERS},
    ),
)
"""The value rules of :class:`TrainSettings` (its checks and its JSON schema)."""


def load_settings(path: str | os.PathLike[str]) -> TrainSettings:
    """Read :class:`TrainSettings` from a JSON or YAML file (a mapping of setting keys)."""
    return from_file(TrainSettings, path, "train")


def candidate_seed(seed: int, cell_id: str) -> int:
    """Per-candidate seed: the first 8 hex of SHA-256 of ``"{seed}:{cell_id}"`` as an int."""
    return int(hashlib.sha256(f"{seed}:{cell_id}".encode()).hexdigest()[:8], 16)


# --------------------------------------------------------------------------- training


@dataclass
class _DeviceData:
    train: DeviceSplit
    val: DeviceSplit


_ON_DEVICE: dict[tuple[str, str], _DeviceData] = {}


def _device_data(data: DataSplits, device: torch.device) -> _DeviceData:
    """The train and validation splits on ``device``, kept for the next candidate on the same data."""
    key = (data.fingerprint, str(device))
    if key not in _ON_DEVICE:
        _ON_DEVICE.clear()
        mean, std = (t.to(device) for t in data.channel_stats())
        _ON_DEVICE[key] = _DeviceData(
            DeviceSplit(data.train_x.to(device), data.train_y.to(device), mean, std),
            DeviceSplit(data.val_x.to(device), data.val_y.to(device), mean, std),
        )
    return _ON_DEVICE[key]


@dataclass(frozen=True)
class Rung:
    """Where an early-stopped run (an early-stopping rung, :mod:`pnas_core.search.early_stop`) stops and
    resumes: it trains up to epoch ``stop_at`` of the full budget (the learning-rate schedule stays
    that of ``settings.epochs``), continuing from the checkpoint ``resume`` when that file holds this
    run's state, and writes its own state to ``save`` when it stops before the last epoch."""

    stop_at: int
    resume: Path | None = None
    save: Path | None = None


def train_candidate(
    cell: Cell | str,
    settings: TrainSettings,
    data: DataSplits | None = None,
    on_epoch: EpochCallback | None = None,
    rung: Rung | None = None,
) -> dict[str, Any]:
    """Train ``cell`` under ``settings`` and return its record (see :mod:`pnas_core.io.records`).

    A diverged training loss (:func:`pnas_core.training.loop.is_diverged`) or non-finite validation logits
    give ``status="diverged"``; a CUDA out-of-memory error is retried once at half the batch size,
    then gives ``status="failed"``. ``data`` defaults to ``settings.load_data()``.

    With ``rung`` the run stops after ``rung.stop_at`` epochs (an evaluated epoch: a multiple of
    ``eval_every``, or the last); before the last epoch its record has ``status="stopped"``, the
    accuracy and curve so far. A run resumed from a rung's checkpoint ends exactly as an
    uninterrupted one (bitwise on CPU); a missing or foreign checkpoint trains from epoch 0.
    """
    cell = parse(cell) if isinstance(cell, str) else cell
    data = settings.load_data() if data is None else data
    if rung is not None:
        check_stop(settings, rung.stop_at)
    device = pick_device(settings.device)
    seed = candidate_seed(settings.seed, cell.id)
    batch_size = settings.batch_size
    error = ""
    for attempt in range(2):
        try:
            return _train(cell, settings, data, device, seed, batch_size, on_epoch, rung)
        except torch.OutOfMemoryError as exc:
            if device.type != "cuda":
                raise
            error = f"CUDA out of memory at batch size {batch_size}: {str(exc).splitlines()[0]}"
        # outside the except clause the failed attempt's frames and tensors are released
        gc.collect()
        torch.cuda.empty_cache()
        if attempt == 0 and batch_size > 1:
            batch_size //= 2
    return _record(cell, settings, data, device, seed, batch_size, status="failed", error=error)


def check_stop(settings: TrainSettings, stop_at: int) -> None:
    """Raise :class:`PnasError` unless ``stop_at`` is an evaluated epoch of ``settings`` (1..epochs,
    a multiple of ``eval_every`` or the last: :func:`pnas_core.rungs.is_evaluated`)."""
    if not is_evaluated(stop_at, settings.epochs, settings.eval_every):
        raise PnasError(
            f"a run can stop only at an evaluated epoch: 1..{settings.epochs}, a multiple of eval_every "
            f"({settings.eval_every}); got {stop_at}"
        )


def _record(
    cell: Cell,
    settings: TrainSettings,
    data: DataSplits,
    device: torch.device,
    seed: int,
    batch_size: int,
    **values: Any,
) -> dict[str, Any]:
    row: dict[str, Any] = {
        "cell": cell.text,
        "cell_id": cell.id,
        "num_blocks": cell.num_blocks,
        "val_acc": None,
        "val_curve": [],
        "curve_epochs": [],
        "train_loss": None,
        "params": 0,
        "mult_adds": 0,
        "train_seconds": 0.0,
        "epochs": 0,
        "batch_size": batch_size,
        "device": str(device),
        "seed": settings.seed,
        "candidate_seed": seed,
        "dataset": data.fingerprint,
        "settings_hash": settings.settings_hash(),
        "status": "ok",
        "error": None,
    }
    row.update(values)
    return row


def build_model(cell: Cell, settings: TrainSettings, data: DataSplits) -> PNASNetwork:
    """The search network for ``cell`` sized for ``data`` (see :mod:`pnas_core.training.network`)."""
    return build_network(cell, network_settings(settings, data.num_classes, data.image_shape[0]))


@dataclass
class _Progress:
    """What a run has done so far (saved with a rung's checkpoint)."""

    epoch: int = 0
    curve: list[float] = dataclasses.field(default_factory=list)
    curve_epochs: list[int] = dataclasses.field(default_factory=list)
    train_loss: float | None = None
    seconds: float = 0.0


def _checkpoint_key(
    cell: Cell, settings: TrainSettings, data: DataSplits, seed: int, batch_size: int
) -> dict:
    return {
        "cell": cell.text,
        "settings_hash": settings.settings_hash(),
        "dataset": data.fingerprint,
        "candidate_seed": seed,
        "batch_size": batch_size,
        "format": RUNG_CHECKPOINT_FORMAT,
    }


def _train(
    cell: Cell,
    settings: TrainSettings,
    data: DataSplits,
    device: torch.device,
    seed: int,
    batch_size: int,
    on_epoch: EpochCallback | None,
    rung: Rung | None = None,
) -> dict[str, Any]:
    start = time.perf_counter()
    dd = _device_data(data, device)
    gen = seed_run(seed, device)
    model = build_model(cell, settings, data).to(device, memory_format=torch.channels_last)
    opt = make_optimizer(model, settings.optimizer, settings.lr, settings.momentum, settings.weight_decay)
    plan = epoch_plan(settings, data, len(dd.train.y), batch_size)
    key = functools.partial(_checkpoint_key, cell, settings, data, seed, plan.batch_size)
    done = _Progress()
    if rung is not None and rung.resume is not None:
        payload, _ = read_checkpoint(rung.resume, key)
        if payload is not None:
            restore(payload, model, opt, gen)
            done = _Progress(**{f.name: payload[f.name] for f in dataclasses.fields(_Progress)})
    stop = settings.epochs if rung is None else rung.stop_at
    status, error, epochs_run = "ok", None, done.epoch
    for epoch in range(done.epoch + 1, stop + 1):
        result = run_epoch(model, opt, dd.train, gen, plan, epoch)
        epochs_run = epoch
        if result.diverged:
            status, error = "diverged", f"training loss {result.loss:.4g} in epoch {epoch}"
            break
        done.train_loss = result.loss
        if on_epoch is not None:
            on_epoch(epoch, settings.epochs, result.loss, result.train_acc)
        if epoch % settings.eval_every == 0 or epoch == settings.epochs:
            acc, finite = accuracy(model, dd.val)
            if not finite:
                status, error = "diverged", f"non-finite logits on the validation split in epoch {epoch}"
                break
            done.curve.append(acc)
            done.curve_epochs.append(epoch)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    done.seconds += time.perf_counter() - start
    done.epoch = epochs_run
    if status == "ok" and epochs_run < settings.epochs:
        status = "stopped"
        if rung is not None and rung.save is not None:
            write_checkpoint(rung.save, key(), model, opt, gen, **dataclasses.asdict(done))
    model.eval()
    return _record(
        cell,
        settings,
        data,
        device,
        seed,
        plan.batch_size,
        val_acc=done.curve[-1] if status in ("ok", "stopped") else None,
        val_curve=done.curve,
        curve_epochs=done.curve_epochs,
        train_loss=done.train_loss,
        params=int(count_params(model)),
        mult_adds=int(count_mult_adds(model, input_shape=data.image_shape)),
        train_seconds=done.seconds,
        epochs=epochs_run,
        status=status,
        error=error,
    )
