"""From a cell to a PyTorch network, structured as timm's released PNASNet-5.

See docs/method.md, "From cell to network". Layout. ``stem="cifar"``: a 3x3 conv (stride 1) + BN, then ``num_reductions + 1`` stacks of
``cells_per_stack`` (N) cells with a reduction cell between stacks (3N+2 cells for two reductions,
the paper's search layout). ``stem="imagenet"``: a 3x3 conv at stride 2 without padding + BN, two stem
reduction cells with F/4 and F/2 filters (the first reads the raw stem conv output as H^{c-2}), then the
stacks. With ``reduction_in_stack=True`` the first cell of each later stack is the reduction cell
instead of an extra one (3N cells), as in the released PNASNet-5 Large (N=4) and Mobile (N=3).
Filters double at each reduction; a cell of B blocks outputs B·filters channels (all blocks are
concatenated). The head is ReLU, global average pool, dropout, linear.

Each cell maps H^{c-2} and H^{c-1} to its filter count with ReLU-1x1 conv-BN, or with a factorized
reduction when H^{c-2} is at twice the resolution of H^{c-1}; an input that no block reads gets no
projection (no unused parameters), and a cell whose output no later cell reads (when the cell never
reads H^{c-1}, every other cell is such) is not built at all (:class:`SkippedCell`): the network's
parameters and multiply-adds are those that shape its output. A reduction cell applies stride 2 to
the ops reading H^{c-2} or H^{c-1}. Drop path zeroes whole op outputs (identity is never dropped,
as in NASNet); cell i of n drops with probability ``drop_path · (i+1)/n · drop_path_scale``.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import NamedTuple

import torch
from torch import Tensor, nn

from pnas_core.errors import PnasError
from pnas_core.space.cells import PNASNET5_PAPER_ORDER, Block, Cell, WrittenCell
from pnas_core.training.ops import (
    IDENTITY,
    ActConvBn,
    FactorizedReduction,
    batch_norm,
    drop_path,
    make_op,
)

STEMS = ("cifar", "imagenet")
AUX_HIDDEN = (128, 768)


@dataclass(frozen=True)
class NetworkSettings:
    """Everything but the cell that defines a network (docs/method.md, "From cell to network"). Invalid values raise PnasError.

    ``stem_filters=None`` means 3·F for the CIFAR stem (as NASNet) and 96 for the ImageNet stem
    (as PNASNet-5 Large).
    """

    num_classes: int = 10
    in_channels: int = 3
    cells_per_stack: int = 2
    filters: int = 24
    stem: str = "cifar"
    num_reductions: int = 2
    stem_filters: int | None = None
    drop_path: float = 0.0
    aux_head: bool = False
    dropout: float = 0.0
    reduction_in_stack: bool = False

    def __post_init__(self) -> None:
        positive = {
            "num_classes": self.num_classes,
            "in_channels": self.in_channels,
            "cells_per_stack": self.cells_per_stack,
        }
        for key, value in positive.items():
            if not isinstance(value, int) or value < 1:
                raise PnasError(f"network setting {key} must be a positive integer, got {value!r}")
        if not isinstance(self.filters, int) or self.filters < 4:
            raise PnasError(f"network setting filters must be an integer >= 4, got {self.filters!r}")
        if self.stem not in STEMS:
            raise PnasError(f"network setting stem must be one of {', '.join(STEMS)}, got {self.stem!r}")
        if not isinstance(self.num_reductions, int) or not 0 <= self.num_reductions <= 6:
            raise PnasError(f"network setting num_reductions must be in 0..6, got {self.num_reductions!r}")
        if self.stem_filters is not None and (
            not isinstance(self.stem_filters, int) or self.stem_filters < 1
        ):
            raise PnasError(
                f"network setting stem_filters must be a positive integer, got {self.stem_filters!r}"
            )
        for key, p in (("drop_path", self.drop_path), ("dropout", self.dropout)):
            if not isinstance(p, int | float) or not 0.0 <= p < 1.0:
                raise PnasError(f"network setting {key} must be in [0, 1), got {p!r}")
        if self.aux_head and self.num_reductions < 1:
            raise PnasError(
                "network setting aux_head needs num_reductions >= 1 (it sits before the last one)"
            )

    @property
    def resolved_stem_filters(self) -> int:
        """The stem conv's filter count (``stem_filters`` or its default)."""
        if self.stem_filters is not None:
            return self.stem_filters
        return 3 * self.filters if self.stem == "cifar" else 96


class CellPlan(NamedTuple):
    """One cell of a network layout."""

    filters: int
    reduction: bool
    stem_cell: bool  # one of the two ImageNet stem cells
    raw_input0: bool  # reads the stem conv output unprojected as H^{c-2} (first ImageNet stem cell)


def network_plan(settings: NetworkSettings) -> list[CellPlan]:
    """The cells of the layout described in the module docstring, in order."""
    f = settings.filters
    plan: list[CellPlan] = []
    if settings.stem == "imagenet":
        plan.append(CellPlan(int(f / 4), True, True, True))
        plan.append(CellPlan(int(f / 2), True, True, False))
    for stack in range(settings.num_reductions + 1):
        filters = f * 2**stack
        if stack > 0 and not settings.reduction_in_stack:
            plan.append(CellPlan(filters, True, False, False))
        for i in range(settings.cells_per_stack):
            reduces = stack > 0 and i == 0 and settings.reduction_in_stack
            plan.append(CellPlan(filters, reduces, False, False))
    return plan


class CellBlock(nn.Module):
    """One block: ``op1(states[in1]) + op2(states[in2])`` with drop path on non-identity ops."""

    def __init__(self, block: Block, channels: list[int], filters: int, reduction: bool):
        super().__init__()
        self.in1, self.in2 = block.in1, block.in2
        self.op1 = make_op(block.op1, channels[block.in1], filters, 2 if reduction and block.in1 < 2 else 1)
        self.op2 = make_op(block.op2, channels[block.in2], filters, 2 if reduction and block.in2 < 2 else 1)
        self.drop1 = block.op1 != IDENTITY
        self.drop2 = block.op2 != IDENTITY

    def forward(self, states: list[Tensor], drop_prob: float) -> Tensor:
        a = self.op1(states[self.in1])
        b = self.op2(states[self.in2])
        if self.training and drop_prob > 0.0:
            if self.drop1:
                a = drop_path(a, drop_prob, True)
            if self.drop2:
                b = drop_path(b, drop_prob, True)
        return a + b


class PNASCell(nn.Module):
    """A cell (normal or reduction) applied to (H^{c-2}, H^{c-1}); output = concat of all blocks."""

    def __init__(
        self,
        cell: Cell | WrittenCell,
        c_prev_prev: int,
        c_prev: int,
        plan: CellPlan,
        factorized_prev: bool,
        drop_prob: float,
    ):
        super().__init__()
        f = plan.filters
        read = {i for b in cell.blocks for i in (b.in1, b.in2)}
        self.pre0: nn.Module
        if plan.raw_input0 or 0 not in read:  # an unread input gets no projection
            self.pre0, c0 = nn.Identity(), c_prev_prev
        elif factorized_prev:
            self.pre0, c0 = FactorizedReduction(c_prev_prev, f), f
        else:
            self.pre0, c0 = ActConvBn(c_prev_prev, f), f
        self.pre1 = ActConvBn(c_prev, f) if 1 in read else nn.Identity()
        channels = [c0, f] + [f] * cell.num_blocks
        self.blocks = nn.ModuleList(CellBlock(b, channels, f, plan.reduction) for b in cell.blocks)
        self.drop_prob = float(drop_prob)
        self.out_channels = f * cell.num_blocks

    def forward(self, s0: Tensor, s1: Tensor, drop_scale: float) -> Tensor:
        states = [self.pre0(s0), self.pre1(s1)]
        p = self.drop_prob * drop_scale
        for block in self.blocks:
            states.append(block(states, p))
        return torch.cat(states[2:], 1)


class SkippedCell(nn.Module):
    """Stands for a cell whose output no later cell (nor the head) reads: no parameters, no compute.

    It passes H^{c-1} on, so the next cell's H^{c-2} is still the right tensor.
    """

    def __init__(self, out_channels: int):
        super().__init__()
        self.out_channels = out_channels

    def forward(self, s0: Tensor, s1: Tensor, drop_scale: float) -> Tensor:
        return s1


def live_cells(cell: Cell | WrittenCell, num_cells: int, aux_index: int = -1) -> set[int]:
    """Indices of the cells whose output reaches the classifier (or the auxiliary head)."""
    read = {i for b in cell.blocks for i in (b.in1, b.in2)}
    live: set[int] = set()
    todo = [num_cells - 1, aux_index]
    while todo:
        i = todo.pop()
        if i < 0 or i in live:
            continue
        live.add(i)
        todo += [i - 1] if 1 in read else []
        todo += [i - 2] if 0 in read else []
    return live


class AuxHead(nn.Module):
    """Auxiliary classifier (NASNet style, size-agnostic): ReLU, 5x5 avg pool stride 3, 1x1 conv 128
    + BN + ReLU, 1x1 conv 768 + BN + ReLU, global average, linear."""

    def __init__(self, channels: int, num_classes: int):
        super().__init__()
        h1, h2 = AUX_HIDDEN
        self.features = nn.Sequential(
            nn.ReLU(),
            nn.AvgPool2d(5, stride=3, padding=2, count_include_pad=False),
            nn.Conv2d(channels, h1, 1, bias=False),
            batch_norm(h1),
            nn.ReLU(),
            nn.Conv2d(h1, h2, 1, bias=False),
            batch_norm(h2),
            nn.ReLU(),
        )
        self.classifier = nn.Linear(h2, num_classes)

    def forward(self, x: Tensor) -> Tensor:
        return self.classifier(self.features(x).mean((2, 3)))


class PNASNetwork(nn.Module):
    """A network of one repeated cell; see the module docstring for the layout.

    ``drop_path_scale`` (default 1.0) multiplies every cell's drop-path probability, so a trainer
    can ramp it from 0 to 1 over training as NASNet does.
    """

    def __init__(self, cell: Cell | WrittenCell, settings: NetworkSettings):
        super().__init__()
        self.cell_text = cell.text
        self.settings = settings
        self.drop_path_scale = 1.0
        c_stem = settings.resolved_stem_filters
        stride, padding = (1, 1) if settings.stem == "cifar" else (2, 0)
        self.stem = nn.Sequential()
        self.stem.add_module("conv", nn.Conv2d(settings.in_channels, c_stem, 3, stride, padding, bias=False))
        self.stem.add_module("bn", batch_norm(c_stem))

        plan = network_plan(settings)
        channels = [c_stem, c_stem]  # (H^{c-2}, H^{c-1})
        levels = [0, 0]  # reductions applied to each
        self.cells = nn.ModuleList()
        last_reduction = max((i for i, p in enumerate(plan) if p.reduction and not p.stem_cell), default=0)
        self.aux_index = last_reduction - 1 if settings.aux_head else -1  # the cell before the last reduction
        live = live_cells(cell, len(plan), self.aux_index)
        for i, p in enumerate(plan):
            drop = settings.drop_path * (i + 1) / len(plan)
            cell_module: PNASCell | SkippedCell = (
                PNASCell(cell, channels[0], channels[1], p, levels[0] < levels[1], drop)
                if i in live
                else SkippedCell(p.filters * cell.num_blocks)
            )
            self.cells.append(cell_module)
            channels = [channels[1], cell_module.out_channels]
            levels = [levels[1], levels[1] + int(p.reduction)]
        self.aux_head: AuxHead | None = None
        if settings.aux_head:
            self.aux_head = AuxHead(self.cells[self.aux_index].out_channels, settings.num_classes)
        self.num_features = channels[1]
        self.head_act = nn.ReLU()
        self.dropout = nn.Dropout(settings.dropout)
        self.classifier = nn.Linear(self.num_features, settings.num_classes)

    def _run(self, x: Tensor, with_aux: bool) -> tuple[Tensor, Tensor | None]:
        s0 = s1 = self.stem(x)
        aux: Tensor | None = None
        for i, cell in enumerate(self.cells):
            s0, s1 = s1, cell(s0, s1, self.drop_path_scale)
            if with_aux and i == self.aux_index and self.aux_head is not None:
                aux = self.aux_head(s1)
        features = self.head_act(s1).mean((2, 3))
        return self.classifier(self.dropout(features)), aux

    def forward(self, x: Tensor) -> Tensor:
        """Logits."""
        return self._run(x, False)[0]

    def forward_with_aux(self, x: Tensor) -> tuple[Tensor, Tensor | None]:
        """(logits, auxiliary logits); the latter only in training mode with ``aux_head``, else None."""
        return self._run(x, self.training and self.aux_head is not None)


def build_network(cell: Cell | WrittenCell, settings: NetworkSettings) -> PNASNetwork:
    """The network of ``cell`` under ``settings`` (float32 on the default device, in training mode); a
    :class:`~pnas_core.space.cells.WrittenCell` keeps its blocks (and their output channels) in written order."""
    if not isinstance(cell, (Cell, WrittenCell)):
        raise PnasError(f"build_network needs a Cell, got {type(cell).__name__} (parse cell text first)")
    return PNASNetwork(cell, settings)


PRESETS: dict[str, tuple[str, NetworkSettings]] = {
    # timm's pnasnet5large: 86,057,668 parameters.
    "pnasnet5_large": (
        PNASNET5_PAPER_ORDER,
        NetworkSettings(
            num_classes=1000,
            cells_per_stack=4,
            filters=216,
            stem="imagenet",
            stem_filters=96,
            reduction_in_stack=True,
        ),
    ),
    # TF-slim's mobile_imagenet_config: 9 cells, F=54, stem 32 filters (stem_multiplier 1).
    "pnasnet5_mobile": (
        PNASNET5_PAPER_ORDER,
        NetworkSettings(
            num_classes=1000,
            cells_per_stack=3,
            filters=54,
            stem="imagenet",
            stem_filters=32,
            reduction_in_stack=True,
        ),
    ),
    # The paper's CIFAR-10 model: N=3, F=48, CIFAR layout (stem 3F).
    "pnasnet5_cifar": (
        PNASNET5_PAPER_ORDER,
        NetworkSettings(num_classes=10, cells_per_stack=3, filters=48, reduction_in_stack=True),
    ),
}
"""Architecture-only presets (no drop path, dropout or aux head: a trainer adds those), PNASNet-5 with its
blocks in the released models' order so that their weights load as they are."""


def build_preset(name: str, num_classes: int | None = None) -> PNASNetwork:
    """Build a preset of :data:`PRESETS`, optionally with another class count."""
    if name not in PRESETS:
        raise PnasError(f"unknown network preset {name!r} (known: {', '.join(PRESETS)})")
    text, settings = PRESETS[name]
    if num_classes is not None:
        settings = replace(settings, num_classes=num_classes)
    return build_network(WrittenCell.parse(text), settings)


def pnasnet5_large(num_classes: int = 1000) -> PNASNetwork:
    """PNASNet-5 Large, parameter-for-parameter timm's ``pnasnet5large``."""
    return build_preset("pnasnet5_large", num_classes)


def pnasnet5_mobile(num_classes: int = 1000) -> PNASNetwork:
    """PNASNet-5 Mobile (ImageNet, 9 cells, F=54)."""
    return build_preset("pnasnet5_mobile", num_classes)


def pnasnet5_cifar(num_classes: int = 10) -> PNASNetwork:
    """PNASNet-5 for CIFAR (N=3, F=48)."""
    return build_preset("pnasnet5_cifar", num_classes)
