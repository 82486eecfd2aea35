"""Exact parameters and multiply-adds of the search network of many cells at once, without building them.

A network stacks one cell, so its cost is a sum: the stem and the head (fixed), each live cell's input
projections (a 1x1 conv or a factorized reduction, built only for an input some block reads), and one
op module per half of every block of every live cell. A half's module depends only on its op and on
whether it reads H^{c-2} (input 0), H^{c-1} (input 1) or a block output (its channels, stride and map
size), never on which block it sits in; which cells are live (:func:`pnas_core.training.network.live_cells`)
depends only on whether the cell reads input 0, input 1 or both. So for cells of b blocks one table,
built once by building and counting each piece with the builder's own code, gives every cell's cost
as ``fixed + pre[pattern] + sum over halves of half[pattern, op, kind]``: 2b numpy gathers per cell.

Multiply-adds are counted as :func:`pnas_core.training.complexity.count_mult_adds` counts them (convolutions and
matrix products in eval mode, so an auxiliary head adds parameters but no multiply-adds), and both
figures equal counting the built network exactly (tests/test_cost.py checks every size and layout).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch
from PIL import Image
from torch import nn

from pnas_core.errors import PnasError
from pnas_core.space.cells import OPS, Block, Cell
from pnas_core.training.complexity import count_params
from pnas_core.training.data import IMAGE_SUFFIXES, DatasetSettings
from pnas_core.training.imagefolder import class_folders
from pnas_core.training.network import (
    CellBlock,
    NetworkSettings,
    PNASCell,
    build_network,
    live_cells,
    network_plan,
)
from pnas_core.training.ops import IDENTITY
from pnas_core.training.recipe import network_settings

if TYPE_CHECKING:
    from pnas_core.training.train import TrainSettings

READ_PATTERNS = ("0:identity,0:identity", "1:identity,1:identity", "0:identity,1:identity")
"""One cell per pattern of cell inputs read (input 0 only, input 1 only, both), in pattern-index order."""
KINDS = 3
"""Kinds of half input: 0 (H^{c-2}), 1 (H^{c-1}), 2 (any block output)."""
NATIVE_SHAPES = {"digits": ((1, 8, 8), 10), "cifar10": ((3, 32, 32), 10)}
"""(channels, height, width) and class count of the built-in datasets at their native size."""


@dataclass(frozen=True)
class CostTable:
    """Per-piece costs of one network layout for cells of ``num_blocks`` blocks.

    ``params`` and ``flops`` are int64 arrays of shape (3, len(OPS)·3 + 1): row = read pattern, column
    ``op·3 + kind`` = one half summed over the live cells, last column = the fixed parts plus the live
    cells' input projections.
    """

    num_blocks: int
    params: np.ndarray
    flops: np.ndarray

    def costs(self, tokens: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(params, mult_adds) int64 arrays for canonical token rows (n, 4·num_blocks)."""
        tokens = np.asarray(tokens)
        if tokens.ndim != 2 or tokens.shape[1] != 4 * self.num_blocks:
            raise PnasError(
                f"cost table of {self.num_blocks}-block cells got a token array of shape {tokens.shape}"
            )
        ins = np.concatenate([tokens[:, 0::4], tokens[:, 1::4]], axis=1).astype(np.int64)
        ops = np.concatenate([tokens[:, 2::4], tokens[:, 3::4]], axis=1).astype(np.int64)
        pattern = (ins == 0).any(1).astype(np.int64) + 2 * (ins == 1).any(1) - 1
        base = pattern * self.params.shape[1]
        index = base[:, None] + ops * KINDS + np.minimum(ins, 2)
        fixed = base + self.params.shape[1] - 1
        params = self.params.ravel()[index].sum(1) + self.params.ravel()[fixed]
        flops = self.flops.ravel()[index].sum(1) + self.flops.ravel()[fixed]
        return params, flops // 2

    def columns(self, tokens: np.ndarray) -> dict[str, np.ndarray]:
        """``{"params": ..., "mult_adds": ...}`` for the scored table."""
        params, mult_adds = self.costs(tokens)
        return {"params": params, "mult_adds": mult_adds}


def _count(module: nn.Module, shape: tuple[int, ...]) -> tuple[int, int]:
    """(parameters, FLOPs) of ``module`` on one input of ``shape``.

    FLOPs are those :class:`torch.utils.flop_counter.FlopCounterMode` counts for these modules, two per
    multiply-add of every convolution and linear layer, read from the output shapes (no compute, and
    none of the counter's start-up time).
    """
    flops = 0

    def hook(layer: nn.Module, args: tuple, out: torch.Tensor) -> None:
        nonlocal flops
        if isinstance(layer, nn.Conv2d):
            kh, kw = layer.kernel_size
            flops += 2 * out.numel() * (layer.in_channels // layer.groups) * kh * kw
        else:
            flops += 2 * out.numel() * layer.in_features

    layers = [m for m in module.modules() if isinstance(m, nn.Conv2d | nn.Linear)]
    handles = [m.register_forward_hook(hook) for m in layers]
    try:
        module.eval()(torch.zeros((1, *shape)))
    finally:
        for h in handles:
            h.remove()
    return count_params(module), flops


@lru_cache(maxsize=32)
def cost_table(settings: NetworkSettings, input_shape: tuple[int, int, int], num_blocks: int) -> CostTable:
    """The :class:`CostTable` of ``settings`` on images of ``input_shape`` (C, H, W) for b-block cells.

    Built once per argument tuple (a few hundred small modules counted), then cached.
    """
    if not 1 <= num_blocks <= 5:
        raise PnasError(f"cells have 1 to 5 blocks, got {num_blocks}")
    # Every cell of this reference reads both inputs, so every cell is built and each one's inputs,
    # projections and block-output shape can be observed.
    reference = Cell((Block(0, IDENTITY, 1, IDENTITY),) * num_blocks)
    with torch.device("cpu"):
        net = build_network(reference, settings)
    shapes: dict[int, tuple[tuple[int, ...], ...]] = {}
    hooks = [
        cell.register_forward_hook(
            lambda mod, args, out, i=i: shapes.__setitem__(
                i, (args[0].shape[1:], args[1].shape[1:], out.shape[1:])
            )
        )
        for i, cell in enumerate(net.cells)
    ]
    net.eval()
    with torch.no_grad():
        s0 = s1 = net.stem(torch.zeros((1, *input_shape)))
        for cell in net.cells:
            s0, s1 = s1, cell(s0, s1, 1.0)
    for h in hooks:
        h.remove()

    fixed = np.array(_count(net.stem, input_shape), np.int64)
    fixed += _count(net.classifier, (net.num_features,))
    if net.aux_head is not None:  # training only: its parameters count, inference never runs it
        fixed[0] += count_params(net.aux_head)
    plan = network_plan(settings)
    cells = len(plan)
    pre = np.zeros((cells, 2, 2), np.int64)  # cell, input, (params, flops)
    half = np.zeros((cells, len(OPS), KINDS, 2), np.int64)
    counted: dict[tuple, tuple[int, int]] = {}
    for i, cell in enumerate(net.cells):
        assert isinstance(cell, PNASCell)
        in0, in1, out = shapes[i]
        pre[i, 0] = _count(cell.pre0, in0)
        pre[i, 1] = _count(cell.pre1, in1)
        f = out[0] // num_blocks
        states = [cell.pre0(torch.zeros((1, *in0))).shape[1:], (f, *in1[1:]), (f, *out[1:])]
        channels = [states[0][0], f, f]
        reduction = plan[i].reduction
        for op in range(len(OPS)):
            for kind in range(KINDS):
                key = (op, kind > 1, channels[kind], f, reduction, states[kind])
                if key not in counted:  # inputs 0 and 1 usually give the same module
                    with torch.device("cpu"):  # op2 = identity: the cheapest module to build alongside
                        module = CellBlock(Block(kind, op, kind, IDENTITY), channels, f, reduction).op1
                    counted[key] = _count(module, states[kind])
                half[i, op, kind] = counted[key]

    n_cols = len(OPS) * KINDS + 1
    params = np.zeros((len(READ_PATTERNS), n_cols), np.int64)
    flops = np.zeros_like(params)
    for p, text in enumerate(READ_PATTERNS):
        pattern = Cell.parse(text)
        live = sorted(live_cells(pattern, cells, net.aux_index))
        read = {i for b in pattern.blocks for i in (b.in1, b.in2)}
        reads = np.array([0 in read, 1 in read])
        summed_half = half[live].sum(0).reshape(len(OPS) * KINDS, 2)
        summed_pre = (pre[live] * reads[None, :, None]).sum((0, 1)) + fixed
        params[p, :-1], flops[p, :-1] = summed_half[:, 0], summed_half[:, 1]
        params[p, -1], flops[p, -1] = summed_pre
    params.setflags(write=False)
    flops.setflags(write=False)
    return CostTable(num_blocks, params, flops)


# --------------------------------------------------------------------------- the search network


def dataset_shape(settings: DatasetSettings) -> tuple[tuple[int, int, int], int]:
    """((channels, height, width), classes) of the dataset as training sees it, without loading it.

    Built-in datasets are known; an image folder's classes are its ``train/`` sub-folders and its images
    are RGB at ``image_size`` (or the size of its first image).
    """
    if settings.dataset in NATIVE_SHAPES:
        (c, h, w), classes = NATIVE_SHAPES[settings.dataset]
    else:
        root = Path("data" if settings.data_root is None else settings.data_root) / "train"
        names = class_folders(root)
        c, classes = 3, len(names)
        first = next(f for f in sorted((root / names[0]).iterdir()) if f.suffix.lower() in IMAGE_SUFFIXES)
        with Image.open(first) as im:
            w, h = im.size
    if settings.image_size is not None:
        h = w = settings.image_size
    return (c, h, w), classes


def search_network(settings: TrainSettings) -> tuple[NetworkSettings, tuple[int, int, int]]:
    """The search network's :class:`NetworkSettings` for :class:`pnas_core.training.train.TrainSettings` (as
    :func:`pnas_core.training.train.build_model` builds it) and the input shape."""
    shape, classes = dataset_shape(settings)
    net = network_settings(settings, classes, shape[0])
    return net, shape


def search_costs(settings: TrainSettings) -> Callable[[np.ndarray], dict[str, np.ndarray]]:
    """A function from the token rows of equal-size cells to their ``params`` and ``mult_adds`` columns
    in the search network of the training settings ``settings``."""
    net, shape = search_network(settings)
    return lambda tokens: cost_table(net, shape, np.asarray(tokens).shape[1] // 4).columns(tokens)
