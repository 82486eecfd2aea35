"""The final network: the searched cell stacked deep, trained on train+validation, scored once on test.

:class:`FinalSettings` holds every knob; its defaults are the paper's CIFAR-10 final training (docs/method.md, "The final network":
PNASNet-5 with N=3, F=48, 600 epochs, drop path, auxiliary head with loss weight 0.4; the network
layout with the reduction as the first cell of a stack gives the paper's 3.2M parameters). Where the
paper is silent the values follow NASNet's CIFAR setup (batch 32, lr 0.025 with cosine decay, weight
decay 5e-4, drop-path keep probability 0.6, gradient norm clipped at 5).

:func:`run_final` trains and writes an output folder (see :data:`OUTPUT_FILES`). Every
``checkpoint_every`` epochs it saves ``checkpoint.pt`` (model, optimizer, scheduler, RNG states,
epoch, curve so far) atomically; a rerun with the same cell and settings resumes from it, and on CPU
the resumed run ends bitwise equal to an uninterrupted one (for a fixed number of threads). The
checkpoint is deleted once every output is written.
"""

from __future__ import annotations

import dataclasses
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import torch

from pnas_core import __version__
from pnas_core.devices import pick_device
from pnas_core.errors import PnasError
from pnas_core.io.atomic import atomic_path, write_json, write_text
from pnas_core.io.settings_io import (
    Rules,
    check_rules,
    from_file,
    from_mapping,
    merge_rules,
)
from pnas_core.limits import MAX_COUNT, MAX_IMAGE_SIZE
from pnas_core.space.cells import Cell
from pnas_core.training.checkpoint import read_checkpoint, restore, write_checkpoint
from pnas_core.training.complexity import count_mult_adds, count_params
from pnas_core.training.data import DatasetSettings, DataSplits
from pnas_core.training.domain import training_stats
from pnas_core.training.imagefolder import class_folders
from pnas_core.training.loop import (
    DeviceSplit,
    EpochPlan,
    accuracy,
    make_optimizer,
    run_epoch,
    seed_run,
)
from pnas_core.training.model_io import save_model
from pnas_core.training.network import NetworkSettings, PNASNetwork, build_network
from pnas_core.training.recipe import RECIPE_RULES, epoch_plan, network_settings
from pnas_core.training.train import candidate_seed

CHECKPOINT = "checkpoint.pt"
CHECKPOINT_FORMAT = 1
OUTPUT_FILES = (
    "model.pt",
    "cell.txt",
    "settings.json",
    "metrics.json",
    "curve.parquet",
    "curve.png",
    "curve.pdf",
)
"""What :func:`run_final` writes into its output folder (plus ``curve.csv``, the plotted numbers)."""
WRITTEN_FILES = (*OUTPUT_FILES, "curve.csv", CHECKPOINT)
"""Every file :func:`run_final` writes into its output folder: none of them may be an input."""
CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")

CURVE_COLUMNS = ("epoch", "loss", "train_acc", "lr", "seconds")
"""The columns of ``curve.parquet``, one row per epoch."""
DrawCurve = Callable[[Path, pd.DataFrame, str], None]
"""Draws the training curve (folder, ``curve.parquet``'s frame, title); compute modules do not draw."""
LogFn = Callable[[str], None]


@dataclass(frozen=True)
class FinalSettings(DatasetSettings):
    """How to build and train the final network. Defaults: the paper's CIFAR-10 final training.

    Attributes:
        dataset, data_root, download, image_size, val_fraction, test_fraction, split_seed: the
            dataset (:class:`pnas_core.training.data.DatasetSettings`; use the search's values so that
            the test split is the one the search never saw); training uses train + val.
        cells_per_stack: N (paper: 3). filters: F (paper: 48). num_reductions: reductions (2).
        reduction_in_stack: the reduction cell is the first cell of each later stack (3N cells, the
            released PNASNet-5's layout) instead of an extra cell (3N+2).
        epochs: training epochs (600). batch_size: 32. lr: initial learning rate (0.025).
        momentum: SGD momentum (0.9). weight_decay: 5e-4. lr_schedule: ``cosine`` (per step to 0) or
            ``constant``.
        drop_path: drop-path probability of the last cell; cell i of n drops with (i+1)/n of it (0.4).
        drop_path_ramp: scale drop path linearly from 0 to 1 over the training steps (NASNet's way).
        aux_head: auxiliary classifier before the last reduction. aux_weight: its loss weight (0.4).
        dropout: dropout before the classifier (0). label_smoothing: cross-entropy smoothing (0).
        grad_clip: clip the global gradient norm (5.0); None disables.
        augment: random crop with padding (and flips where the dataset allows).
        cutout: side of the cutout square in pixels (0: off; 16 at 32x32 is the usual choice).
        checkpoint_every: save a resumable checkpoint every this many epochs.
        device: ``auto``, ``cpu``, ``cuda`` or ``cuda:<i>``. seed: seed of initialisation and batches.
    """

    cells_per_stack: int = 3
    filters: int = 48
    num_reductions: int = 2
    reduction_in_stack: bool = True
    epochs: int = 600
    batch_size: int = 32
    lr: float = 0.025
    momentum: float = 0.9
    weight_decay: float = 5e-4
    lr_schedule: str = "cosine"
    drop_path: float = 0.4
    drop_path_ramp: bool = True
    aux_head: bool = True
    aux_weight: float = 0.4
    dropout: float = 0.0
    label_smoothing: float = 0.0
    grad_clip: float | None = 5.0
    augment: bool = True
    cutout: int = 0
    checkpoint_every: int = 10
    device: str = "auto"
    seed: int = 0

    def __post_init__(self) -> None:
        check_rules(self, "final", FINAL_RULES)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> FinalSettings:
        """Settings from a mapping; unknown keys and wrong types raise :class:`PnasError` naming the key."""
        return from_mapping(cls, d, "final")

    def to_dict(self) -> dict[str, Any]:
        """All fields as a plain dict (JSON-serialisable)."""
        return dataclasses.asdict(self)

    def network_settings(self, data: DataSplits) -> NetworkSettings:
        """The :class:`pnas_core.training.network.NetworkSettings` of the final network for ``data``."""
        return network_settings(
            self,
            data.num_classes,
            data.image_shape[0],
            drop_path=self.drop_path,
            aux_head=self.aux_head,
            dropout=self.dropout,
            reduction_in_stack=self.reduction_in_stack,
        )


FINAL_RULES = merge_rules(
    RECIPE_RULES,
    Rules(
        minimum={
            "checkpoint_every": 1,
            **dict.fromkeys(("aux_weight", "cutout", "drop_path", "dropout"), 0),
        },
        maximum={"checkpoint_every": MAX_COUNT, "cutout": MAX_IMAGE_SIZE},
        exclusive_maximum={"drop_path": 1, "dropout": 1},
    ),
)
"""The value rules of :class:`FinalSettings` (its checks and its JSON schema)."""


def load_final_settings(path: str | os.PathLike[str]) -> FinalSettings:
    """Read :class:`FinalSettings` from a JSON or YAML file (a mapping of setting keys)."""
    return from_file(FinalSettings, path, "final")


def class_names(settings: FinalSettings, data: DataSplits) -> list[str]:
    """Names of the classes in label order: digits ``0``..``9``, CIFAR-10's names, or the folder names."""
    if settings.dataset == "cifar10":
        return list(CIFAR10_CLASSES)
    if settings.dataset == "imagefolder":
        return class_folders(Path("data" if settings.data_root is None else settings.data_root) / "train")
    return [str(i) for i in range(data.num_classes)]


# --------------------------------------------------------------------------- training


@dataclass
class _State:
    """Everything a resumed run needs besides the model and optimizer."""

    epoch: int
    curve: list[dict[str, Any]]
    seconds: float


@dataclass
class FinalRun:
    """A final training run, built and ready to train: network, optimizer, generator, data, plan."""

    cell: Cell
    settings: FinalSettings
    data: DataSplits
    device: torch.device
    net_settings: NetworkSettings
    model: PNASNetwork
    opt: torch.optim.Optimizer
    gen: torch.Generator
    split: DeviceSplit
    """Train + validation images on the device: what the final network trains on."""
    plan: EpochPlan


def build_final(cell: Cell, settings: FinalSettings) -> FinalRun:
    """Load the data and build the network, optimizer and generator of a fresh (epoch 0) run."""
    data = settings.load_data()
    device = pick_device(settings.device)
    gen = seed_run(candidate_seed(settings.seed, cell.id), device)
    net_settings = settings.network_settings(data)
    model = build_network(cell, net_settings).to(device, memory_format=torch.channels_last)
    opt = make_optimizer(model, "sgd", settings.lr, settings.momentum, settings.weight_decay)
    mean, std = (t.to(device) for t in data.channel_stats())
    x = torch.cat([data.train_x, data.val_x]).to(device)
    y = torch.cat([data.train_y, data.val_y]).to(device)
    plan = epoch_plan(
        settings,
        data,
        len(y),
        settings.batch_size,
        cutout=settings.cutout,
        aux_weight=settings.aux_weight,
        drop_path_ramp=settings.drop_path_ramp,
    )
    split = DeviceSplit(x, y, mean, std)
    return FinalRun(cell, settings, data, device, net_settings, model, opt, gen, split, plan)


def _checkpoint_key(run: FinalRun) -> dict[str, Any]:
    volatile = {"data_root", "download", "device", "checkpoint_every"}
    fields = {k: v for k, v in run.settings.to_dict().items() if k not in volatile}
    return {
        "cell": run.cell.text,
        "settings": fields,
        "dataset": run.data.fingerprint,
        "format": CHECKPOINT_FORMAT,
    }


def save_checkpoint(path: Path, run: FinalRun, state: _State) -> None:
    """Write the run's model, optimizer, RNG states and progress to ``path`` atomically."""
    write_checkpoint(
        path,
        _checkpoint_key(run),
        run.model,
        run.opt,
        run.gen,
        epoch=state.epoch,
        curve=state.curve,
        seconds=state.seconds,
    )


def resume(path: Path, run: FinalRun, log: LogFn) -> _State:
    """Restore a checkpoint written for the same cell, settings and dataset into ``run``; a fresh
    state (epoch 0) when it is absent, unreadable or stale."""
    payload, why = read_checkpoint(path, lambda: _checkpoint_key(run))
    if payload is None:
        if why:
            log(f"{why}; starting from epoch 0")
        return _State(0, [], 0.0)
    restore(payload, run.model, run.opt, run.gen)
    state = _State(int(payload["epoch"]), list(payload["curve"]), float(payload["seconds"]))
    log(f"resumed from checkpoint {path} at epoch {state.epoch}/{run.settings.epochs}")
    return state


def fit(run: FinalRun, state: _State, checkpoint: Path, log: LogFn) -> None:
    """Train from ``state.epoch`` to the last epoch, appending to ``state.curve`` and checkpointing
    every ``checkpoint_every`` epochs. A diverged epoch (:func:`pnas_core.training.loop.is_diverged`) raises
    :class:`PnasError`."""
    settings, plan = run.settings, run.plan
    for epoch in range(state.epoch + 1, settings.epochs + 1):
        start = time.perf_counter()
        result = run_epoch(run.model, run.opt, run.split, run.gen, plan, epoch)
        if result.diverged:
            raise PnasError(f"final training diverged: training loss {result.loss} in epoch {epoch}")
        seconds = time.perf_counter() - start
        state.seconds += seconds
        row = {
            "epoch": epoch,
            "loss": result.loss,
            "train_acc": result.train_acc,
            "lr": plan.lr_at((epoch - 1) * plan.steps),
            "seconds": seconds,
        }
        state.curve.append(row)
        state.epoch = epoch
        log(
            f"epoch {epoch}/{settings.epochs} loss {row['loss']:.4f} train_acc {row['train_acc']:.4f} "
            f"lr {row['lr']:.5f} {seconds:.1f}s"
        )
        if epoch % settings.checkpoint_every == 0 and epoch < settings.epochs:
            save_checkpoint(checkpoint, run, state)
    run.model.drop_path_scale = 1.0


def evaluate_test(run: FinalRun, state: _State) -> dict[str, Any]:
    """Score the trained network once on the test split; its metrics (see ``metrics.json``)."""
    data, model = run.data, run.model
    test = DeviceSplit(data.test_x.to(run.device), data.test_y.to(run.device), run.split.mean, run.split.std)
    test_acc, finite = accuracy(model, test)
    if not finite:
        raise PnasError("final training diverged: non-finite logits on the test split")
    aux_params = count_params(model.aux_head) if model.aux_head is not None else 0
    return {
        "cell": run.cell.text,
        "test_acc": test_acc,
        "test_error": 1.0 - test_acc,
        "params": count_params(model) - aux_params,
        "params_with_aux": count_params(model),
        "mult_adds": count_mult_adds(model, data.image_shape),
        "train_seconds": state.seconds,
        "epochs": state.epoch,
        "train_images": len(run.split.y),
        "test_images": len(data.test_y),
        "classes": class_names(run.settings, data),
        "final_train_loss": state.curve[-1]["loss"],
        "final_train_acc": state.curve[-1]["train_acc"],
        "device": str(run.device),
        "dataset": data.fingerprint,
        "pnas_version": __version__,
    }


def write_outputs(
    out: Path, run: FinalRun, state: _State, metrics: dict[str, Any], draw_curve: DrawCurve
) -> None:
    """Write every file of :data:`OUTPUT_FILES` into ``out`` (the curve figure by ``draw_curve``);
    ``metrics.json`` last."""
    settings = run.settings
    info = {
        "cell": run.cell.text,
        "network": dataclasses.asdict(run.net_settings),
        "settings": settings.to_dict(),
        "classes": metrics["classes"],
        "mean": run.split.mean.cpu().tolist(),
        "std": run.split.std.cpu().tolist(),
        "input_shape": list(run.data.image_shape),
        "domain": training_stats([run.data.train_x, run.data.val_x]).to_dict(),
        "metrics": metrics,
    }
    save_model(out / "model.pt", run.model, info)
    write_text(out / "cell.txt", run.cell.text + "\n")
    write_json(out / "settings.json", settings.to_dict())
    title = (
        f"Final network: {run.cell.text}\nN={settings.cells_per_stack}, F={settings.filters}, "
        f"{metrics['params']:,} parameters, {state.epoch} epochs; test accuracy {metrics['test_acc']:.4f} "
        f"on {metrics['test_images']} images"
    )
    curve = pd.DataFrame(state.curve, columns=list(CURVE_COLUMNS))
    with atomic_path(out / "curve.parquet") as tmp:
        curve.to_parquet(tmp, index=False)
    draw_curve(out, curve, title)
    write_json(out / "metrics.json", metrics)


def run_final(
    cell: Cell,
    settings: FinalSettings,
    out_dir: str | os.PathLike[str],
    *,
    draw_curve: DrawCurve,
    log: LogFn = print,
) -> dict[str, Any]:
    """Train the final network of ``cell`` on train+val, evaluate it on test, write ``out_dir``
    (``draw_curve`` draws ``curve.png``/``.pdf``/``.csv``: :func:`pnas_core.figures.curve.draw_curve`).

    Resumes from ``out_dir/checkpoint.pt`` when it was written for the same cell, settings and
    dataset. Returns the metrics (also in ``metrics.json``). A diverged training raises PnasError.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    checkpoint = out / CHECKPOINT
    run = build_final(cell, settings)
    state = resume(checkpoint, run, log)
    plan = run.plan
    log(
        f"cell {cell.text}: {count_params(run.model):,} parameters, {len(run.split.y)} training images "
        f"(train+val), batch {plan.batch_size}, {plan.steps} steps/epoch, device {run.device}"
    )
    fit(run, state, checkpoint, log)
    metrics = evaluate_test(run, state)
    write_outputs(out, run, state, metrics, draw_curve)
    checkpoint.unlink(missing_ok=True)
    log(
        f"test accuracy {metrics['test_acc']:.4f} ({metrics['test_images']} images), "
        f"{state.seconds:.0f}s training -> {out}"
    )
    return metrics
