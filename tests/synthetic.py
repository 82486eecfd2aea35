"""A synthetic accuracy with a known ranking, shared by the predictor, beam and quality tests,
training records that carry it, and one valid training record to change a field of."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from pnas_core.space.cells import cell_id, parse, tokens_to_texts

OP_EFFECT = np.array([0.04, 0.03, 0.02, -0.01, -0.04, -0.03, 0.0, 0.01])
"""Accuracy effect of each op (token order of ``pnas_core.space.cells.OPS``)."""


def op_accuracy(tokens: np.ndarray, rng: np.random.Generator | None = None) -> np.ndarray:
    """0.7 plus the mean op effect per block of each token row; with ``rng``, plus N(0, 0.003) noise."""
    b = tokens.shape[1] // 4
    acc = 0.7 + (OP_EFFECT[tokens[:, 2::4]].sum(1) + OP_EFFECT[tokens[:, 3::4]].sum(1)) / b
    return acc if rng is None else acc + rng.normal(0, 0.003, len(tokens))


def write_records(path: Path, tokens: np.ndarray, status: str = "ok") -> None:
    """A training-record Parquet of equal-size token rows with :func:`op_accuracy` as ``val_acc``."""
    texts = tokens_to_texts(tokens)
    pd.DataFrame(
        {
            "cell": texts,
            "cell_id": [cell_id(t) for t in texts],
            "num_blocks": tokens.shape[1] // 4,
            "val_acc": op_accuracy(tokens),
            "status": status,
            "params": 1000,
        }
    ).to_parquet(path)


def valid_record(cell: str, **changes: object) -> dict:
    """A valid training record of ``cell`` (settings "h", dataset "d", seed 0), with ``changes``."""
    c = parse(cell)
    base = {
        "cell": c.text,
        "cell_id": c.id,
        "num_blocks": c.num_blocks,
        "val_acc": 0.5,
        "val_curve": [0.5],
        "curve_epochs": [1],
        "train_loss": 1.0,
        "params": 100,
        "mult_adds": 1000,
        "train_seconds": 1.0,
        "epochs": 1,
        "batch_size": 8,
        "device": "cpu",
        "seed": 0,
        "candidate_seed": 1,
        "dataset": "d",
        "settings_hash": "h",
        "status": "ok",
        "error": None,
    }
    return base | changes
