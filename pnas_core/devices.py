"""Training device and CPU thread choice.

``auto`` picks CUDA when present, else CPU. With several visible GPUs (``CUDA_VISIBLE_DEVICES`` is
respected, as torch numbers only the visible ones) a job takes GPU ``slot % n``, where the slot is
given by the caller: ``pnas train`` passes its shard index, so the shards of a level that start
together land on different GPUs by construction (no race on memory readings), and all W workers of a
shard share its GPU. Other jobs (final training, predict) use slot 0. On SLURM each job sees only the
GPU it was given, so every slot maps to it.
"""

from __future__ import annotations

import os

import torch

from pnas_core.errors import PnasError

DEVICE_CHOICES = ("auto", "cpu", "cuda")
THREADS_ENV = "PNAS_THREADS"


def pick_device(request: str = "auto", slot: int = 0) -> torch.device:
    """The torch device for ``request`` (``auto``, ``cpu``, ``cuda`` or ``cuda:<i>``); ``auto`` and
    ``cuda`` take visible GPU ``slot % n`` (see the module docstring)."""
    if request == "cpu":
        return torch.device("cpu")
    if request.startswith("cuda:"):
        if not torch.cuda.is_available():
            raise PnasError(f"device {request!r} requested but CUDA is not available")
        index = request.split(":", 1)[1]
        if not index.isdigit() or int(index) >= torch.cuda.device_count():
            raise PnasError(f"device {request!r}: {torch.cuda.device_count()} CUDA device(s) visible")
        return torch.device(request)
    if request not in DEVICE_CHOICES:
        raise PnasError(f"unknown device {request!r} (choose auto, cpu, cuda or cuda:<index>)")
    if not torch.cuda.is_available():
        if request == "cuda":
            raise PnasError("device 'cuda' requested but CUDA is not available")
        return torch.device("cpu")
    return torch.device("cuda", slot % torch.cuda.device_count())


def resolve_threads(threads: int | None = None) -> int:
    """CPU threads for torch: ``threads``, else ``$PNAS_THREADS``, else the cores this process may use."""
    if threads is None:
        env = os.environ.get(THREADS_ENV, "").strip()
        if env:
            if not env.isdigit() or int(env) < 1:
                raise PnasError(f"{THREADS_ENV} must be a positive integer, got {env!r}")
            threads = int(env)
        else:
            threads = (
                len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
            )
    if threads < 1:
        raise PnasError(f"threads must be a positive integer, got {threads}")
    return threads


def set_threads(threads: int | None = None) -> int:
    """Set torch's intra-op threads (see :func:`resolve_threads`); returns the number set."""
    n = resolve_threads(threads)
    torch.set_num_threads(n)
    return n
