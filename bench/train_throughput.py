"""Training throughput of the real training loop (pnas_core.training.train.train_candidate).

(a) The quick search default on digits (8x8, N=1, F=8, 3 epochs, batch 32): per-candidate seconds and
    training images/s for a cheap, a middling and an expensive one-block cell.
(b) The paper's search network: the PNASNet-5 cell, N=2, F=24, on random 32x32 uint8 images, batch 32,
    one epoch of ``--steps`` batches; images/s and the implied seconds per candidate at the paper's
    budget (20 epochs of 45,000 images).

Runs on CPU (``--threads``, default 1) and, when CUDA is present, on CUDA as well.

    python bench/train_throughput.py [--threads 1] [--steps 20]
"""

from __future__ import annotations

import argparse
import time

import torch

from pnas_core.devices import set_threads
from pnas_core.space.cells import PNASNET5
from pnas_core.training.data import DataSplits, fingerprint_arrays
from pnas_core.training.train import TrainSettings, train_candidate

QUICK = {
    "dataset": "digits",
    "val_fraction": 0.2,
    "cells_per_stack": 1,
    "filters": 8,
    "epochs": 3,
    "batch_size": 32,
    "lr": 0.05,
}
QUICK_CELLS = ("0:identity,1:avg3x3", "0:sep3x3,1:max3x3", "0:sep7x7,1:conv7x1")
PAPER_IMAGES_PER_CANDIDATE = 20 * 45_000


def random_splits(n_train: int, n_val: int, size: int = 32) -> DataSplits:
    """CIFAR-shaped random uint8 data (10 classes) for throughput only."""
    g = torch.Generator().manual_seed(0)
    arrays = []
    for n in (n_train, n_val, n_val):
        arrays.append(torch.randint(0, 256, (n, 3, size, size), generator=g, dtype=torch.uint8))
        arrays.append(torch.randint(0, 10, (n,), generator=g))
    return DataSplits(
        "random", *arrays, num_classes=10, allow_flip=True, fingerprint=fingerprint_arrays("random", arrays)
    )


def bench_quick(device: str) -> None:
    """(a): the quick default on digits."""
    settings = TrainSettings.from_dict({**QUICK, "device": device})
    data = settings.load_data()
    train_candidate(QUICK_CELLS[0], settings, data)  # warm-up (first-call allocations, kernels)
    n_train = data.sizes[0] // settings.batch_size * settings.batch_size
    for cell in QUICK_CELLS:
        r = train_candidate(cell, settings, data)
        ips = n_train * r["epochs"] / r["train_seconds"]
        print(
            f"(a) quick digits  {device:5s} {cell:22s} val_acc {r['val_acc']:.3f}  "
            f"{r['train_seconds']:6.2f} s/candidate  {ips:8.0f} train images/s  params {r['params']:,}"
        )


def bench_paper(device: str, steps: int) -> None:
    """(b): PNASNet-5 cell, N=2, F=24, 32x32 random inputs, batch 32."""
    settings = TrainSettings.from_dict(
        {"cells_per_stack": 2, "filters": 24, "epochs": 1, "batch_size": 32, "device": device}
    )
    warm = random_splits(2 * 32, 32)
    train_candidate(PNASNET5, settings, warm)
    data = random_splits(steps * 32, 256)
    start = time.perf_counter()
    r = train_candidate(PNASNET5, settings, data)
    wall = time.perf_counter() - start
    ips = steps * 32 / r["train_seconds"]  # includes the 256-image validation pass
    print(
        f"(b) paper search  {device:5s} PNASNet-5 N=2 F=24 32x32 b32: {ips:8.1f} train images/s over {steps} steps "
        f"({wall:.1f} s wall), params {r['params']:,}, mult-adds {r['mult_adds']:,}; "
        f"paper budget 20x45,000 images = {PAPER_IMAGES_PER_CANDIDATE / ips / 3600:.2f} h/candidate"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1, help="CPU threads (default 1)")
    parser.add_argument("--steps", type=int, default=20, help="batches for the paper-network measurement")
    args = parser.parse_args()
    threads = set_threads(args.threads)
    print(f"torch {torch.__version__}, {threads} CPU thread(s), CUDA: {torch.cuda.is_available()}")
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    for device in devices:
        bench_quick(device)
    for device in devices:
        bench_paper(device, args.steps if device == "cpu" else 10 * args.steps)


if __name__ == "__main__":
    main()
