"""Training one candidate cell: settings, the training loop, and the record it produces.

:class:`TrainSettings` holds every knob; its defaults are the paper's search-time setup on CIFAR-10
(N=2, F=24, 20 epochs, batch 32, learning rate 0.01 with cosine decay, SGD with momentum 0.9; the
weight decay 1e-4 and plain cross-entropy are the project's choices where the paper is silent).
:func:`train_candidate` builds the network for a cell, trains it on the dataset's train split and
returns a record (see :mod:`pnas_core.records`) scored on the validation split.

Data stays on the training device as uint8 tensors; each batch is gathered, augmented (random crop
with zero padding, horizontal flip where the dataset allows it) and normalised with torch ops. On
CUDA the model runs with bf16 autocast; it runs in channels_last everywhere (on CPU this makes the
depthwise convolutions about 1.8x faster). Each candidate's seed is derived from the
global seed and its cell id, so results do not depend on shard order; on CPU the same cell, settings
and seed give bitwise-identical results (for a fixed number of threads).
"""

from __future__ import annotations

import dataclasses
import gc
import hashlib
import json
import math
import os
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F

from pnas_core.data import (
    DATASETS,
    DatasetSettings,
    DataSplits,
    augment_batch,
    crop_padding,
    normalize,
)
from pnas_core.devices import DEVICE_CHOICES, pick_device
from pnas_core.errors import PnasError
from pnas_core.settings_io import check_bounds, check_choice, check_types, from_file, from_mapping
from pnas_core.space import Cell, parse

TRAIN_CODE_VERSION = 3
"""Bumped whenever training semantics change; part of :meth:`TrainSettings.settings_hash`."""

OPTIMIZERS = ("sgd", "adam")
LR_SCHEDULES = ("cosine", "constant")
DIVERGED_LOSS = 100.0
"""An epoch whose mean training loss is above this (or not finite) counts as diverged."""
EVAL_BATCH = 1000

NOT_HASHED = frozenset({"data_root", "download", "device", "seed"})
"""Fields that do not enter the settings hash: paths and device choice do not define the experiment
(the dataset fingerprint and the record's ``device`` column cover them) and the seed is its own part
of the cache key."""

EpochCallback = Callable[[int, int, float, float], None]
"""``(epoch, epochs, mean train loss, train accuracy)`` after each epoch."""


@dataclass(frozen=True)
class TrainSettings(DatasetSettings):
    """How to train and score one candidate. Defaults follow the paper's CIFAR-10 search.

    Attributes:
        dataset, data_root, download, image_size, val_fraction, test_fraction, split_seed: the
            dataset and its splits (:class:`pnas_core.data.DatasetSettings`).
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
    seed: int = 0

    def __post_init__(self) -> None:
        check_types(self, "train")
        check_choice("train", "dataset", self.dataset, DATASETS)
        check_choice("train", "optimizer", self.optimizer, OPTIMIZERS)
        check_choice("train", "lr_schedule", self.lr_schedule, LR_SCHEDULES)
        check_bounds(
            self,
            "train",
            at_least_one=("cells_per_stack", "filters", "epochs", "batch_size", "eval_every"),
            non_negative=("num_reductions", "weight_decay", "momentum", "label_smoothing"),
            positive=("lr",),
            positive_or_null=("grad_clip",),
        )
        if self.device not in DEVICE_CHOICES and not re.fullmatch(r"cuda:\d+", self.device):
            raise PnasError(
                f"train setting device is {self.device!r}; choose auto, cpu, cuda or cuda:<index>"
            )

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


def load_settings(path: str | os.PathLike[str]) -> TrainSettings:
    """Read :class:`TrainSettings` from a JSON or YAML file (a mapping of setting keys)."""
    return from_file(TrainSettings, path, "train")


def candidate_seed(seed: int, cell_id: str) -> int:
    """Per-candidate seed: the first 8 hex of SHA-256 of ``"{seed}:{cell_id}"`` as an int."""
    return int(hashlib.sha256(f"{seed}:{cell_id}".encode()).hexdigest()[:8], 16)


# --------------------------------------------------------------------------- training


@dataclass
class _DeviceData:
    train_x: torch.Tensor
    train_y: torch.Tensor
    val_x: torch.Tensor
    val_y: torch.Tensor
    mean: torch.Tensor
    std: torch.Tensor


_ON_DEVICE: dict[tuple[str, str], _DeviceData] = {}


def _device_data(data: DataSplits, device: torch.device) -> _DeviceData:
    key = (data.fingerprint, str(device))
    if key not in _ON_DEVICE:
        _ON_DEVICE.clear()
        mean, std = data.channel_stats()
        _ON_DEVICE[key] = _DeviceData(
            *(t.to(device) for t in (data.train_x, data.train_y, data.val_x, data.val_y, mean, std))
        )
    return _ON_DEVICE[key]


def train_candidate(
    cell: Cell | str,
    settings: TrainSettings,
    data: DataSplits | None = None,
    on_epoch: EpochCallback | None = None,
) -> dict[str, Any]:
    """Train ``cell`` under ``settings`` and return its record (see :mod:`pnas_core.records`).

    A non-finite or exploding training loss gives ``status="diverged"``; a CUDA out-of-memory error
    is retried once at half the batch size, then gives ``status="failed"``. ``data`` defaults to
    ``settings.load_data()``.
    """
    cell = parse(cell) if isinstance(cell, str) else cell
    data = settings.load_data() if data is None else data
    device = pick_device(settings.device)
    seed = candidate_seed(settings.seed, cell.id)
    batch_size = settings.batch_size
    error = ""
    for attempt in range(2):
        try:
            return _train(cell, settings, data, device, seed, batch_size, on_epoch)
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


def build_model(cell: Cell, settings: TrainSettings, data: DataSplits) -> torch.nn.Module:
    """The search network for ``cell`` sized for ``data`` (see :mod:`pnas_core.network`)."""
    from pnas_core.network import NetworkSettings, build_network

    net_settings = NetworkSettings(
        num_classes=data.num_classes,
        in_channels=data.image_shape[0],
        cells_per_stack=settings.cells_per_stack,
        filters=settings.filters,
        num_reductions=settings.num_reductions,
    )
    return build_network(cell, net_settings)


def _optimizer(model: torch.nn.Module, settings: TrainSettings) -> torch.optim.Optimizer:
    if settings.optimizer == "sgd":
        return torch.optim.SGD(
            model.parameters(), lr=settings.lr, momentum=settings.momentum, weight_decay=settings.weight_decay
        )
    return torch.optim.Adam(model.parameters(), lr=settings.lr, weight_decay=settings.weight_decay)


def _lr_factor(schedule: str, total_steps: int) -> Callable[[int], float]:
    if schedule == "constant":
        return lambda step: 1.0
    return lambda step: 0.5 * (1.0 + math.cos(math.pi * min(step, total_steps) / total_steps))


def _train(
    cell: Cell,
    settings: TrainSettings,
    data: DataSplits,
    device: torch.device,
    seed: int,
    batch_size: int,
    on_epoch: EpochCallback | None,
) -> dict[str, Any]:
    from pnas_core.complexity import count_mult_adds, count_params

    start = time.perf_counter()
    dd = _device_data(data, device)
    torch.manual_seed(seed)
    gen = torch.Generator(device=device).manual_seed(seed)
    cuda = device.type == "cuda"
    if cuda:
        torch.backends.cudnn.benchmark = True  # fixed shapes within a candidate
    model = build_model(cell, settings, data).to(device, memory_format=torch.channels_last)
    opt = _optimizer(model, settings)
    n = len(dd.train_y)
    batch_size = min(batch_size, n)
    steps = n // batch_size
    sched = torch.optim.lr_scheduler.LambdaLR(opt, _lr_factor(settings.lr_schedule, steps * settings.epochs))
    padding = crop_padding(min(data.image_shape[1:])) if settings.augment else 0
    flip = settings.augment and data.allow_flip
    train_loss: float | None = None
    status, error, epochs_run = "ok", None, 0
    val_acc: float | None = None
    curve: list[float] = []
    curve_epochs: list[int] = []
    for epoch in range(1, settings.epochs + 1):
        model.train()
        perm = torch.randperm(n, generator=gen, device=device)
        loss_sum = torch.zeros((), device=device)
        correct = torch.zeros((), device=device, dtype=torch.long)
        for i in range(steps):
            idx = perm[i * batch_size : (i + 1) * batch_size]
            xb = augment_batch(dd.train_x[idx], gen, padding, flip)
            xb = normalize(xb, dd.mean, dd.std)
            yb = dd.train_y[idx]
            xb = xb.contiguous(memory_format=torch.channels_last)
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=cuda):
                logits = model(xb)
            loss = F.cross_entropy(logits.float(), yb, label_smoothing=settings.label_smoothing)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            if settings.grad_clip is not None:
                torch.nn.utils.clip_grad_norm_(model.parameters(), settings.grad_clip)
            opt.step()
            sched.step()
            loss_sum += loss.detach() * len(yb)
            correct += (logits.detach().argmax(1) == yb).sum()
        epochs_run = epoch
        mean_loss = loss_sum.item() / (steps * batch_size)
        if not math.isfinite(mean_loss) or mean_loss > DIVERGED_LOSS:
            status, error = "diverged", f"training loss {mean_loss:.4g} in epoch {epoch}"
            break
        train_loss = mean_loss
        if on_epoch is not None:
            on_epoch(epoch, settings.epochs, mean_loss, correct.item() / (steps * batch_size))
        if epoch % settings.eval_every == 0 or epoch == settings.epochs:
            val_acc, finite = evaluate(model, dd.val_x, dd.val_y, dd.mean, dd.std)
            if not finite:
                status, error, val_acc = "diverged", f"non-finite logits on the validation split in epoch {epoch}", None
                break
            curve.append(val_acc)
            curve_epochs.append(epoch)
    if status != "ok":
        val_acc = None
    if cuda:
        torch.cuda.synchronize(device)
    seconds = time.perf_counter() - start
    model.eval()
    params = count_params(model)
    mult_adds = count_mult_adds(model, input_shape=data.image_shape)
    return _record(
        cell,
        settings,
        data,
        device,
        seed,
        batch_size,
        val_acc=val_acc,
        val_curve=curve,
        curve_epochs=curve_epochs,
        train_loss=train_loss,
        params=int(params),
        mult_adds=int(mult_adds),
        train_seconds=seconds,
        epochs=epochs_run,
        status=status,
        error=error,
    )


@torch.no_grad()
def evaluate(
    model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, mean: torch.Tensor, std: torch.Tensor
) -> tuple[float, bool]:
    """Accuracy of ``model`` on uint8 images ``x`` with labels ``y`` (all on the model's device), and
    whether all logits were finite."""
    model.eval()
    cuda = x.device.type == "cuda"
    correct = torch.zeros((), device=x.device, dtype=torch.long)
    finite = torch.ones((), device=x.device, dtype=torch.bool)
    for i in range(0, len(y), EVAL_BATCH):
        xb = normalize(x[i : i + EVAL_BATCH], mean, std).contiguous(memory_format=torch.channels_last)
        with torch.autocast(x.device.type, dtype=torch.bfloat16, enabled=cuda):
            logits = model(xb).float()
        finite &= torch.isfinite(logits).all()
        correct += (logits.argmax(1) == y[i : i + EVAL_BATCH]).sum()
    return correct.item() / max(1, len(y)), bool(finite.item())
