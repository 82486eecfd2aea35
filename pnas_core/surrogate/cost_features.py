"""Per-cell cost features computed from the tokens alone (docs/method.md, "Surrogate predictors").

The predictors never import the network builder (tests/test_layering.py), so the costs come from a
static table of each op's weight count with C channels in and out at stride 1, written as
``a·C² + c·C`` (:data:`OP_COST`, read off ``pnas_core.training.ops``; batch norm counted, 2 per channel):
``sepKxK`` is twice (depthwise K×K, pointwise 1×1, BN): a = 2, c = 2K² + 4; ``conv7x1`` (1×7 conv,
7×1 conv, BN): a = 14, c = 2; ``dil3x3`` (3×3 conv, BN): a = 9, c = 2; ``identity``, ``avg3x3`` and
``max3x3``: 0, 0.

A cell's features (:data:`NAMES`) are the sums over its 2·b halves of ``a`` and of ``c``, the
number of cell inputs (H^{c-2}, H^{c-1}) any block reads (each read input gets a 1×1 projection),
and the number of weighted ops (those with a > 0). Multiply-adds per output pixel equal the weight
counts without batch norm (every op keeps the resolution), so they add nothing a model of these
features lacks and are left out. :func:`scaled_features` is what the neural ``gnn`` reads: the
features divided by :data:`SCALE`, the three summed ones also by b (means per block, so a cell one
block larger than any fitted stays in the fitted range).
"""

from __future__ import annotations

import numpy as np

from pnas_core.space.cells import OPS

NAMES = ("params_c2", "params_c", "inputs_read", "weighted_ops")
OP_COST = {
    "sep3x3": (2, 22),
    "sep5x5": (2, 54),
    "sep7x7": (2, 102),
    "conv7x1": (14, 2),
    "identity": (0, 0),
    "avg3x3": (0, 0),
    "max3x3": (0, 0),
    "dil3x3": (9, 2),
}
"""Per op name, (a, c) of its weight count ``a·C² + c·C`` at stride 1."""
SCALE = np.array([28.0, 204.0, 2.0, 2.0], np.float32)
"""Per feature, the value of one block whose two halves are the costliest op for it."""

_TABLE = np.array([OP_COST[name] for name in OPS], np.float32)  # (ops, 2) in op-id order


def cost_features(tokens: np.ndarray) -> np.ndarray:
    """(n, len(NAMES)) float32 features of equal-size token rows (n, 4·b), unscaled."""
    t = np.asarray(tokens, np.int64)
    n = len(t)
    ops = np.concatenate([t[:, 2::4], t[:, 3::4]], axis=1)  # (n, 2b)
    inputs = np.concatenate([t[:, 0::4], t[:, 1::4]], axis=1)
    out = np.empty((n, len(NAMES)), np.float32)
    out[:, :2] = _TABLE[ops].sum(axis=1)
    out[:, 2] = (inputs == 0).any(axis=1).astype(np.float32) + (inputs == 1).any(axis=1)
    out[:, 3] = (_TABLE[ops, 0] > 0).sum(axis=1)
    return out


def scaled_features(tokens: np.ndarray) -> np.ndarray:
    """:func:`cost_features` divided by :data:`SCALE`, the per-block sums also by b (see above)."""
    b = np.asarray(tokens).shape[1] // 4
    per_block = np.array([b, b, 1, b], np.float32)
    return cost_features(tokens) / (SCALE * per_block)
