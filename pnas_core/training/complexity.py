"""Model size: parameter count and multiply-adds per image."""

from __future__ import annotations

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from pnas_core.errors import PnasError


def count_params(model: nn.Module) -> int:
    """Number of trainable and frozen parameters (each shared tensor counted once)."""
    return sum(p.numel() for p in model.parameters())


def count_mult_adds(model: nn.Module, input_shape: tuple[int, int, int]) -> int:
    """Multiply-adds of one forward pass on one image of shape (C, H, W), in eval mode.

    Counted by :class:`torch.utils.flop_counter.FlopCounterMode` (convolutions and matrix products;
    FLOPs / 2). The model's training mode is restored afterwards.
    """
    if len(input_shape) != 3 or any(int(d) < 1 for d in input_shape):
        raise PnasError(
            f"input_shape must be (channels, height, width) of positive sizes, got {input_shape!r}"
        )
    param = next(model.parameters(), None)
    device = param.device if param is not None else torch.device("cpu")
    dtype = param.dtype if param is not None else torch.float32
    was_training = model.training
    model.eval()
    try:
        counter = FlopCounterMode(display=False)
        with torch.no_grad(), counter:
            model(torch.zeros((1, *input_shape), device=device, dtype=dtype))
    finally:
        model.train(was_training)
    return counter.get_total_flops() // 2
