"""The cell operations of docs/method.md ("The search space") as PyTorch modules, built as in NASNet / timm's PNASNet-5.

Every op maps ``c_in`` to ``c_out`` channels and divides the spatial size by ``stride`` (rounding
up: all paddings are symmetric, ``k // 2`` for odd kernels), so any map of 1x1 or more works.
An op whose input has other than ``c_out`` channels (only in the first ImageNet stem cell, which
reads the raw stem conv output) changes channels as NASNet does: the first conv of a conv op maps
``c_in -> c_out``, a pool is followed by a 1x1 conv + BN, identity becomes ReLU-1x1 conv-BN.
Batch norms use ``eps=1e-3`` as the released TensorFlow and timm models.
"""

from __future__ import annotations

from collections import OrderedDict

import torch
from torch import Tensor, nn

from pnas_core.space.cells import OP_IDS, OPS

BN_EPS = 1e-3
IDENTITY = OP_IDS["identity"]


def batch_norm(channels: int) -> nn.BatchNorm2d:
    """Batch norm with the released models' epsilon."""
    return nn.BatchNorm2d(channels, eps=BN_EPS)


class ActConvBn(nn.Sequential):
    """ReLU, conv (no bias), BN: the cell input projection and the strided identity."""

    def __init__(self, c_in: int, c_out: int, kernel_size: int = 1, stride: int = 1, dilation: int = 1):
        padding = dilation * (kernel_size - 1) // 2
        super().__init__(
            OrderedDict(
                act=nn.ReLU(),
                conv=nn.Conv2d(c_in, c_out, kernel_size, stride, padding, dilation=dilation, bias=False),
                bn=batch_norm(c_out),
            )
        )


class SeparableConv2d(nn.Sequential):
    """Depthwise k x k conv followed by a pointwise 1x1 conv, both without bias."""

    def __init__(self, c_in: int, c_out: int, kernel_size: int, stride: int):
        super().__init__(
            OrderedDict(
                depthwise_conv2d=nn.Conv2d(
                    c_in, c_in, kernel_size, stride, kernel_size // 2, groups=c_in, bias=False
                ),
                pointwise_conv2d=nn.Conv2d(c_in, c_out, 1, bias=False),
            )
        )


class BranchSeparables(nn.Sequential):
    """A separable conv applied twice: ReLU, sep conv (strided), BN, ReLU, sep conv, BN."""

    def __init__(self, c_in: int, c_out: int, kernel_size: int, stride: int = 1):
        super().__init__(
            OrderedDict(
                act_1=nn.ReLU(),
                separable_1=SeparableConv2d(c_in, c_out, kernel_size, stride),
                bn_sep_1=batch_norm(c_out),
                act_2=nn.ReLU(),
                separable_2=SeparableConv2d(c_out, c_out, kernel_size, 1),
                bn_sep_2=batch_norm(c_out),
            )
        )


class Conv7x1(nn.Sequential):
    """ReLU, 1x7 conv, 7x1 conv, BN (each conv takes the stride along its long axis)."""

    def __init__(self, c_in: int, c_out: int, stride: int = 1):
        super().__init__(
            OrderedDict(
                act=nn.ReLU(),
                conv_1x7=nn.Conv2d(c_in, c_out, (1, 7), (1, stride), (0, 3), bias=False),
                conv_7x1=nn.Conv2d(c_out, c_out, (7, 1), (stride, 1), (3, 0), bias=False),
                bn=batch_norm(c_out),
            )
        )


class Pool(nn.Sequential):
    """3x3 max or average pool (average excludes padding); 1x1 conv + BN after it if channels change."""

    def __init__(self, kind: str, c_in: int, c_out: int, stride: int = 1):
        pool: nn.Module
        if kind == "max":
            pool = nn.MaxPool2d(3, stride, 1)
        else:
            pool = nn.AvgPool2d(3, stride, 1, count_include_pad=False)
        layers: OrderedDict[str, nn.Module] = OrderedDict(pool=pool)
        if c_in != c_out:
            layers["conv"] = nn.Conv2d(c_in, c_out, 1, bias=False)
            layers["bn"] = batch_norm(c_out)
        super().__init__(layers)


class FactorizedReduction(nn.Module):
    """Halve the spatial size without losing pixels: ReLU, two 1x1 convs at stride 2 (the second on
    the map shifted by one pixel), concatenated, BN. Used on H^{c-2} after a reduction."""

    def __init__(self, c_in: int, c_out: int):
        super().__init__()
        self.act = nn.ReLU()
        half = c_out // 2
        self.path_1 = nn.Sequential(
            OrderedDict(
                avgpool=nn.AvgPool2d(1, stride=2, count_include_pad=False),
                conv=nn.Conv2d(c_in, half, 1, bias=False),
            )
        )
        self.path_2 = nn.Sequential(
            OrderedDict(
                pad=nn.ZeroPad2d((-1, 1, -1, 1)),  # shift by one pixel towards the top left
                avgpool=nn.AvgPool2d(1, stride=2, count_include_pad=False),
                conv=nn.Conv2d(c_in, c_out - half, 1, bias=False),
            )
        )
        self.final_path_bn = batch_norm(c_out)

    def forward(self, x: Tensor) -> Tensor:
        x = self.act(x)
        return self.final_path_bn(torch.cat([self.path_1(x), self.path_2(x)], 1))


def make_op(op: int, c_in: int, c_out: int, stride: int = 1) -> nn.Module:
    """The module for op id ``op`` (the table in docs/method.md, "The search space") mapping ``c_in`` to ``c_out`` channels at ``stride``.

    Identity at stride 1 with equal channels is ``nn.Identity``; at stride 2 (or a channel change)
    it is ReLU-1x1 conv-BN, as in timm's PNASNet-5 reduction cells.
    """
    name = OPS[op]
    if name.startswith("sep"):
        return BranchSeparables(c_in, c_out, int(name[3]), stride)
    if name == "conv7x1":
        return Conv7x1(c_in, c_out, stride)
    if name == "identity":
        if stride == 1 and c_in == c_out:
            return nn.Identity()
        return ActConvBn(c_in, c_out, 1, stride)
    if name in ("avg3x3", "max3x3"):
        return Pool(name[:3], c_in, c_out, stride)
    assert name == "dil3x3", f"op {name!r} has no module"
    return ActConvBn(c_in, c_out, 3, stride, dilation=2)


def drop_path(x: Tensor, drop_prob: float, training: bool) -> Tensor:
    """Zero whole samples with probability ``drop_prob`` and rescale the rest (training only)."""
    if not training or drop_prob <= 0.0:
        return x
    keep = 1.0 - drop_prob
    mask = torch.empty((x.shape[0], 1, 1, 1), dtype=x.dtype, device=x.device).bernoulli_(keep)
    return x * (mask / keep)
