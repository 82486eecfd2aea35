"""A synthetic accuracy with a known ranking, shared by the predictor, beam and quality tests."""

from __future__ import annotations

import numpy as np

OP_EFFECT = np.array([0.04, 0.03, 0.02, -0.01, -0.04, -0.03, 0.0, 0.01])
"""Accuracy effect of each op (token order of ``pnas_core.space.OPS``)."""


def op_accuracy(tokens: np.ndarray, rng: np.random.Generator | None = None) -> np.ndarray:
    """0.7 plus the mean op effect per block of each token row; with ``rng``, plus N(0, 0.003) noise."""
    b = tokens.shape[1] // 4
    acc = 0.7 + (OP_EFFECT[tokens[:, 2::4]].sum(1) + OP_EFFECT[tokens[:, 3::4]].sum(1)) / b
    return acc if rng is None else acc + rng.normal(0, 0.003, len(tokens))
