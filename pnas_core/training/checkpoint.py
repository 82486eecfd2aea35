"""Resumable training state on disk, shared by final training and early-stopping rungs.

A checkpoint holds the model and optimizer state, the batch generator's and torch's global RNG
states, a ``key`` saying which run it belongs to, and the caller's progress entries (epoch, curve,
seconds, ...). Restoring all of them into a freshly built run continues it exactly: on CPU the
resumed run ends bitwise equal to an uninterrupted one (for a fixed number of threads). Checkpoints
are written atomically and read with ``weights_only`` (tensors and plain data, never code).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from pnas_core.io.atomic import write_serialized

STATE_ENTRIES = ("key", "model", "optimizer", "generator", "torch_rng", "cuda_rng")
"""Entries every checkpoint has besides the caller's progress entries."""


def write_checkpoint(
    path: Path,
    key: dict[str, Any],
    model: torch.nn.Module,
    opt: torch.optim.Optimizer,
    gen: torch.Generator,
    **progress: Any,
) -> None:
    """Write the run's state and ``progress`` (plain data) to ``path`` atomically."""
    payload = {
        "key": key,
        "model": model.state_dict(),
        "optimizer": opt.state_dict(),
        "generator": gen.get_state(),
        "torch_rng": torch.get_rng_state(),
        "cuda_rng": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        **progress,
    }
    write_serialized(path, lambda fh: torch.save(payload, fh))


def read_checkpoint(path: Path, key: Callable[[], dict[str, Any]]) -> tuple[dict[str, Any] | None, str]:
    """The payload at ``path`` when it was written for the run whose key ``key()`` gives (asked only
    once the file has loaded); else None and why (empty when the file is simply absent)."""
    if not path.is_file():
        return None, ""
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)  # tensors and plain data only
    except Exception as exc:
        return None, f"checkpoint {path} is unreadable ({type(exc).__name__}: {exc})"
    if not isinstance(payload, dict) or payload.get("key") != key():
        return None, f"checkpoint {path} is for another cell, settings or dataset"
    return payload, ""


def restore(
    payload: dict[str, Any], model: torch.nn.Module, opt: torch.optim.Optimizer, gen: torch.Generator
) -> None:
    """Load a checkpoint's model, optimizer, generator and global RNG states into a fresh run."""
    model.load_state_dict(payload["model"])
    opt.load_state_dict(payload["optimizer"])
    gen.set_state(payload["generator"])
    torch.set_rng_state(payload["torch_rng"])
    if payload["cuda_rng"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(payload["cuda_rng"])
