"""Paper-setting candidates on one GPU, W at once: the check to run whenever a CUDA device is available.

W = 1, 2, 4, 8 worker processes (as ``pnas train --workers W`` runs them) each train the PNASNet-5
cell in the paper's search network (N=2, F=24, batch 32, 32x32, bf16 autocast) on synthetic
CIFAR-shaped data for ``--steps`` batches, starting together after a warm-up. Prints per W: seconds
and images/s per candidate, the GPU's total images/s, each process's peak GPU memory, and the implied
time of one paper-budget candidate (20 epochs x 45,000 images) and GPU-hours for the paper's 1,160
candidates. Without CUDA it says so and exits 0.

    python bench/gpu.py [--steps 300] [--workers 1 2 4 8]
"""

from __future__ import annotations

import argparse
import multiprocessing
import time
from typing import Any

import torch

from pnas_core.space.cells import PNASNET5
from pnas_core.training.train import TrainSettings, train_candidate

PAPER_IMAGES_PER_CANDIDATE = 20 * 45_000
PAPER_CANDIDATES = 1_160
BATCH = 32


def _worker(steps: int, device: str, barrier: Any, results: Any) -> None:
    """One candidate process: warm up, wait for the others, train ``steps`` batches, report."""
    from train_throughput import random_splits  # bench/ is sys.path[0] in the spawned process too

    torch.set_num_threads(1)
    settings = TrainSettings.from_dict(
        {"cells_per_stack": 2, "filters": 24, "epochs": 1, "batch_size": BATCH, "device": device}
    )
    train_candidate(PNASNET5, settings, random_splits(4 * BATCH, BATCH))  # cuDNN autotune, allocator
    data = random_splits(steps * BATCH, 1000)
    cuda = device == "cuda"
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    barrier.wait()
    start = time.perf_counter()
    record = train_candidate(PNASNET5, settings, data)
    results.put(
        {
            "seconds": time.perf_counter() - start,
            "status": record["status"],
            "peak_mib": torch.cuda.max_memory_allocated() / 2**20 if cuda else 0.0,
        }
    )


def measure(workers: int, steps: int, device: str = "cuda") -> None:
    """Run ``workers`` candidate processes at once on the GPU and print their figures."""
    ctx = multiprocessing.get_context("spawn")
    barrier, results = ctx.Barrier(workers), ctx.Queue()
    procs = [ctx.Process(target=_worker, args=(steps, device, barrier, results)) for _ in range(workers)]
    for p in procs:
        p.start()
    rows = [results.get() for _ in procs]
    for p in procs:
        p.join()
    if any(r["status"] != "ok" for r in rows):
        print(f"W={workers}: a candidate did not finish: {[r['status'] for r in rows]}")
        return
    seconds = max(r["seconds"] for r in rows)  # includes the 1,000-image validation pass
    per_candidate = steps * BATCH / seconds
    total = workers * per_candidate
    paper_h = PAPER_IMAGES_PER_CANDIDATE / per_candidate / 3600
    gpu_hours = PAPER_CANDIDATES * PAPER_IMAGES_PER_CANDIDATE / total / 3600
    print(
        f"W={workers}: {seconds:6.1f} s for {steps} steps; {per_candidate:7.0f} images/s per candidate, "
        f"{total:7.0f} images/s on the GPU; peak memory {max(r['peak_mib'] for r in rows):6.0f} MiB per process; "
        f"paper candidate {paper_h:5.2f} h; 1,160 candidates {gpu_hours:6.1f} GPU-hours"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=300, help="training batches per candidate (default 300)")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2, 4, 8])
    parser.add_argument("--cpu-smoke", action="store_true", help="run the same code on CPU (no figures)")
    args = parser.parse_args()
    if args.cpu_smoke:
        for w in args.workers:
            measure(w, args.steps, "cpu")
        return
    if not torch.cuda.is_available():
        print("bench/gpu.py: no CUDA device here; nothing measured (run it on a machine with a GPU)")
        return
    props = torch.cuda.get_device_properties(0)
    print(
        f"torch {torch.__version__}, {props.name} ({props.total_memory / 2**30:.0f} GiB), PNASNet-5 cell, "
        f"N=2 F=24 batch {BATCH} 32x32, bf16 autocast, synthetic CIFAR-shaped data"
    )
    for w in args.workers:
        measure(w, args.steps)


if __name__ == "__main__":
    main()
