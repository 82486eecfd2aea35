"""Training device and CPU thread choice.

``auto`` picks CUDA when present, else CPU. With several visible GPUs (``CUDA_VISIBLE_DEVICES`` is
respected, as torch numbers only the visible ones) a job with slot s takes the first GPU, from
``s % n`` on, that no other pnas job on this machine holds (:func:`claim_gpu`: an advisory file lock
held until the process exits), and GPU ``s % n`` when all are held. ``pnas train`` passes its shard
index as the slot, so the shards of a level that start together land on GPUs 0, 1, ... in shard order,
and a shard starting later takes a GPU its predecessor freed; no job reads memory use, so there is no
race. All W workers of a shard share its GPU. Other jobs (final training) use slot 0. On SLURM each job
sees only the GPU it was given.
"""

from __future__ import annotations

import getpass
import os
import re
import tempfile
from pathlib import Path

import torch
from filelock import FileLock

from pnas_core.errors import PnasError
from pnas_core.locks import try_lock

DEVICE_CHOICES = ("auto", "cpu", "cuda")
THREADS_ENV = "PNAS_THREADS"
KERNEL_FLAGS = ("avx2", "avx512f", "avx512_bf16", "avx512_fp16", "avx_vnni", "amx_tile")
"""CPU features that change which kernels torch (ATen, oneDNN) runs for float32 training."""


def pick_device(request: str = "auto", slot: int = 0) -> torch.device:
    """The torch device for ``request`` (``auto``, ``cpu``, ``cuda`` or ``cuda:<i>``); with several
    visible GPUs ``auto`` and ``cuda`` claim one for ``slot`` (see the module docstring)."""
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
    n = torch.cuda.device_count()
    if n == 1:
        return torch.device("cuda", 0)
    names = [str(getattr(torch.cuda.get_device_properties(i), "uuid", i)) for i in range(n)]
    return torch.device("cuda", claim_gpu(slot, names))


_HELD: list[FileLock] = []
"""Locks of the GPUs this process claimed, open until it exits."""


def claim_gpu(slot: int, names: list[str], lock_dir: Path | None = None) -> int:
    """Index of the GPU (one ``names`` entry each, unique per physical GPU) for a job with ``slot``:
    the first of ``slot % n``, ``slot % n + 1``, ... whose lock no other process holds, now held by
    this one until it exits; ``slot % n`` when all are held."""
    folder = lock_dir or Path(tempfile.gettempdir()) / f"pnas-gpus-{user_tag()}"
    folder.mkdir(parents=True, exist_ok=True)
    n = len(names)
    for k in range(n):
        index = (slot + k) % n
        lock = try_lock(folder / f"{re.sub(r'[^A-Za-z0-9-]', '_', names[index])}.lock")
        if lock is None:
            continue
        _HELD.append(lock)  # held while we live
        return index
    return slot % n


def user_tag() -> str:
    """Who runs this process, for a per-user folder name: the user id where there is one (POSIX),
    else the login name (Windows has no ``os.getuid``), with characters a file name may not hold
    replaced by ``_``."""
    if hasattr(os, "getuid"):
        return str(os.getuid())
    return re.sub(r"[^A-Za-z0-9-]", "_", getpass.getuser())


def cpu_fingerprint() -> str:
    """The CPU kernel path of this machine: torch's version, ATen's CPU capability and the
    :data:`KERNEL_FLAGS` the CPU has (Linux; ``flags ?`` elsewhere). CPU training is bitwise
    repeatable on machines with the same fingerprint; across fingerprints float rounding differs and
    SGD drifts apart (docs/method.md, "Determinism")."""
    try:
        text = Path("/proc/cpuinfo").read_text()
        flags = set(re.search(r"^flags\s*:(.*)$", text, re.M).group(1).split())  # type: ignore[union-attr]
        have = ",".join(f for f in KERNEL_FLAGS if f in flags) or "none"
    except (OSError, AttributeError):
        have = "?"
    return f"torch {torch.__version__}, ATen {torch.backends.cpu.get_cpu_capability()}, flags {have}"


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
