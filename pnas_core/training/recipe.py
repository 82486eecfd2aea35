"""The training recipe that search training (:mod:`pnas_core.training.train`) and final training
(:mod:`pnas_core.training.final`) share: the value rules of their common settings fields, the
network a recipe builds for a dataset and the plan of its epochs. Each settings class adds its own
fields and rules on top."""

from __future__ import annotations

from typing import Any, Protocol

from pnas_core.io.settings_io import DATASET_RULES, DEVICE_PATTERN, Rules, merge_rules
from pnas_core.limits import MAX_COUNT, MAX_DEPTH, MAX_SEED, MAX_WIDTH
from pnas_core.training.data import DATASETS, DataSplits
from pnas_core.training.loop import LR_SCHEDULES, EpochPlan, augmentation
from pnas_core.training.network import NetworkSettings


class Recipe(Protocol):
    """The fields every training recipe has (:class:`~pnas_core.training.train.TrainSettings`,
    :class:`~pnas_core.training.final.FinalSettings`)."""

    cells_per_stack: int
    filters: int
    num_reductions: int
    epochs: int
    lr: float
    lr_schedule: str
    label_smoothing: float
    grad_clip: float | None
    augment: bool


RECIPE_RULES = merge_rules(
    DATASET_RULES,
    Rules(
        minimum={
            "filters": 4,  # the network builder's smallest
            **dict.fromkeys(("cells_per_stack", "epochs", "batch_size"), 1),
            **dict.fromkeys(("num_reductions", "weight_decay", "momentum", "label_smoothing", "seed"), 0),
        },
        maximum={
            "num_reductions": 6,
            "cells_per_stack": MAX_DEPTH,
            "filters": MAX_WIDTH,
            **dict.fromkeys(("epochs", "batch_size"), MAX_COUNT),
            "seed": MAX_SEED,
        },
        exclusive_minimum={"lr": 0, "grad_clip": 0},
        exclusive_maximum={"label_smoothing": 1},
        choices={"dataset": DATASETS, "lr_schedule": LR_SCHEDULES},
        patterns={"device": DEVICE_PATTERN},
    ),
)
"""The value rules of the fields every recipe has (the dataset's included)."""


def network_settings(recipe: Recipe, num_classes: int, in_channels: int, **extra: Any) -> NetworkSettings:
    """The network ``recipe`` builds for ``num_classes`` classes of ``in_channels``-channel images;
    ``extra``: the final network's further :class:`NetworkSettings` fields (drop path, aux head...)."""
    return NetworkSettings(
        num_classes=num_classes,
        in_channels=in_channels,
        cells_per_stack=recipe.cells_per_stack,
        filters=recipe.filters,
        num_reductions=recipe.num_reductions,
        **extra,
    )


def epoch_plan(recipe: Recipe, data: DataSplits, n: int, batch_size: int, **extra: Any) -> EpochPlan:
    """The :class:`~pnas_core.training.loop.EpochPlan` of ``recipe`` on ``n`` training images of ``data``
    in batches of ``batch_size`` (at most ``n``); ``extra``: the final training's further fields
    (cutout, aux weight, drop-path ramp)."""
    batch_size = min(batch_size, n)
    padding, flip = augmentation(data.image_shape, data.allow_flip, recipe.augment)
    return EpochPlan(
        batch_size=batch_size,
        steps=n // batch_size,
        epochs=recipe.epochs,
        lr=recipe.lr,
        lr_schedule=recipe.lr_schedule,
        padding=padding,
        flip=flip,
        label_smoothing=recipe.label_smoothing,
        grad_clip=recipe.grad_clip,
        **extra,
    )
