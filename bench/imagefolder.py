"""Image-folder loading (pnas_core.training.imagefolder): first decode on 1 and 2 threads, then the cached load.

Writes ``--images`` random-noise images (``--size`` x ``--size``, ``--format`` png or jpg, 10 classes,
a train/ folder only so val and test are split off) into a temporary folder, then times (wall and CPU
seconds, the CPU of every thread of the process)

- the first load (decode at ``--image-size`` into the cache) with 1 and with 2 decoding threads,
- twice, each in a fresh process, as a training job: the second load, from the cache (list the files
  and hash their bytes to find the entry, memory-map the arrays), and how much the process's memory
  grows once every image is read.

    python bench/imagefolder.py [--images 20000] [--size 64] [--image-size 32] [--format png]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from pnas_core.training.data import load_dataset, stratified_split
from pnas_core.training.imagefolder import CACHE_ENV, load_imagefolder

CLASSES = 10


def write_images(root: Path, n: int, size: int, fmt: str) -> float:
    """``n`` noise images in ``root/train/c<k>/``; returns the seconds it took."""
    start = time.perf_counter()
    rng = np.random.default_rng(0)
    for k in range(CLASSES):
        (root / "train" / f"c{k}").mkdir(parents=True)
    for i in range(n):
        img = rng.integers(0, 256, size=(size, size, 3), dtype=np.uint8)
        Image.fromarray(img).save(root / "train" / f"c{i % CLASSES}" / f"{i:06d}.{fmt}")
    return time.perf_counter() - start


def timed_load(root: Path, cache: Path, image_size: int, threads: int | None) -> tuple[float, float, str]:
    """Wall and CPU seconds of a first load into the empty cache ``cache``, and the fingerprint."""
    os.environ[CACHE_ENV] = str(cache)
    start, cpu = time.perf_counter(), time.process_time()
    folder = load_imagefolder(root, image_size, 0.1, 0.1, 0, threads=threads)
    return time.perf_counter() - start, time.process_time() - cpu, folder.fingerprint


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=20_000)
    parser.add_argument("--size", type=int, default=64, help="side of the written images (default 64)")
    parser.add_argument("--image-size", type=int, default=32, help="side they are decoded to (default 32)")
    parser.add_argument("--format", choices=["png", "jpg"], default="png")
    parser.add_argument("--cached-load", type=Path, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    torch.set_num_threads(1)
    if args.cached_load is not None:
        cached_load(args.cached_load, args.image_size)
        return
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "data"
        wrote = write_images(root, args.images, args.size, args.format)
        mb = sum(f.stat().st_size for f in root.rglob(f"*.{args.format}")) / 2**20
        print(
            f"{args.images:,} {args.size}x{args.size} {args.format.upper()} images ({mb:.0f} MiB) written in "
            f"{wrote:.1f} s; decoded to {args.image_size}x{args.image_size}; {os.cpu_count()} CPU(s)"
        )
        stratified_split(np.arange(20) % 2, 0.5, 0)  # warm-up: import scikit-learn outside the timings
        Image.open(next(root.rglob(f"*.{args.format}"))).convert("RGB")
        prints = set()
        for threads in (1, 2):
            seconds, cpu, fp = timed_load(root, Path(tmp) / f"cache{threads}", args.image_size, threads)
            prints.add(fp)
            print(
                f"first load, {threads} decoding thread(s): {seconds:6.2f} s wall, {cpu:6.2f} s CPU "
                f"= {args.images / seconds:7.0f} images/s"
            )
        assert len(prints) == 1, "1 and 2 threads decoded different arrays"
        os.environ[CACHE_ENV] = str(Path(tmp) / "cache2")
        for _ in range(2):  # a fresh process each time, as every training job is
            out = subprocess.run(
                [sys.executable, __file__, "--cached-load", str(root), "--image-size", str(args.image_size)],
                check=True,
                capture_output=True,
                text=True,
            ).stdout
            print(out, end="")


def cached_load(root: Path, image_size: int) -> None:
    """In a fresh process, as a training job: time ``load_dataset`` on a built cache, then read every
    image and report how much the process's peak memory grew."""
    before = _rss_mib()
    start, cpu = time.perf_counter(), time.process_time()
    d = load_dataset("imagefolder", root, image_size, 0.1, 0.1, 0)
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
    images = (d.train_x, d.val_x, d.test_x)
    for t in images:
        t.sum()  # reads every page of the mapped files
    after = _rss_mib()
    print(
        f"second load, fresh process, load_dataset from the cache ({sum(d.sizes):,} files): "
        f"{seconds:.2f} s wall, {cpu:.2f} s CPU; image arrays {sum(t.numel() for t in images) / 2**20:.0f} MiB; after "
        f"reading every image the process's private memory grew {after['RssAnon'] - before['RssAnon']:.0f} MiB "
        f"and its mapped file pages (shared with other jobs) {after['RssFile'] - before['RssFile']:.0f} MiB"
    )


def _rss_mib() -> dict[str, float]:
    """RssAnon and RssFile of this process in MiB (Linux /proc)."""
    fields = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("RssAnon", "RssFile"):
            fields[key] = int(value.split()[0]) / 1024
    return fields


if __name__ == "__main__":
    main()
