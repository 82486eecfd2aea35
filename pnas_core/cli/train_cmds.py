"""``pnas train`` (train one shard of candidates, cached) and ``pnas merge-records``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

DEFAULT_CACHE_DIR = "results/cache"  # same as pnas_core.cache.DEFAULT_CACHE_DIR; kept light to import


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``train`` and ``merge-records``."""
    train = sub.add_parser(
        "train",
        help="train shard i of S of a candidates table; every finished candidate is cached at once",
        description="Train rows i, i+S, i+2S, ... of the candidates table and write their records. "
        "Candidates already in the cache (same cell, settings, dataset and seed) are not retrained.",
    )
    train.add_argument("--candidates", required=True, type=Path, help="Parquet file with a 'cell' column")
    train.add_argument("--settings", required=True, type=Path, help="JSON or YAML file of train settings")
    train.add_argument("--shard", type=int, default=0, help="this shard's index i (0-based; default 0)")
    train.add_argument("--num-shards", type=int, default=1, help="number of shards S (default 1)")
    train.add_argument("--out", required=True, type=Path, help="records Parquet file to write")
    train.add_argument(
        "--cache-dir",
        type=Path,
        default=Path(DEFAULT_CACHE_DIR),
        help=f"result cache (default {DEFAULT_CACHE_DIR})",
    )
    train.add_argument(
        "--threads",
        type=int,
        default=None,
        help="torch CPU threads of the job, split among --workers (default $PNAS_THREADS, else all allowed cores)",
    )
    train.add_argument(
        "--workers",
        type=int,
        default=None,
        help="candidates trained at once on this job's device, each in its own process with threads/W "
        "torch threads (default: the settings' workers, 1); results are the same for any W",
    )
    train.add_argument("--no-progress", action="store_true", help="no progress bar (log lines only)")
    train.set_defaults(func=run_train)

    merge = sub.add_parser(
        "merge-records", help="concatenate records files (same schema), sorted by cell, duplicates dropped"
    )
    merge.add_argument("--out", required=True, type=Path, help="merged records Parquet file")
    merge.add_argument("inputs", nargs="+", type=Path, help="records Parquet files")
    merge.set_defaults(func=run_merge)


def read_candidates(path: Path) -> list[str]:
    """Canonical cell texts of a candidates Parquet file's ``cell`` column (errors name the row)."""
    import pyarrow.parquet as pq

    from pnas_core.errors import PnasError
    from pnas_core.space import parse

    if not path.is_file():
        raise PnasError(f"candidates file {path} not found")
    try:
        schema = pq.read_schema(path)
    except Exception as exc:
        raise PnasError(f"candidates file {path} is not a readable Parquet file: {exc}") from exc
    if "cell" not in schema.names:
        raise PnasError(f"candidates file {path} has no 'cell' column (columns: {', '.join(schema.names)})")
    texts = pq.read_table(path, columns=["cell"]).column("cell").to_pylist()
    cells = []
    for row, text in enumerate(texts):
        try:
            cells.append(parse(text).text)
        except PnasError as exc:
            raise PnasError(f"candidates file {path}, row {row}: {exc}") from exc
    return cells


def run_train(args: argparse.Namespace) -> int:
    """Train one shard, logging one line per finished candidate; write its records atomically."""
    import dataclasses

    from tqdm import tqdm

    from pnas_core import __version__
    from pnas_core.cache import ResultCache
    from pnas_core.devices import pick_device, set_threads
    from pnas_core.errors import PnasError
    from pnas_core.records import settings_metadata, write_records
    from pnas_core.shard import train_shard
    from pnas_core.train import load_settings

    if args.num_shards < 1 or not 0 <= args.shard < args.num_shards:
        raise PnasError(f"--shard must be in 0..{args.num_shards - 1} and --num-shards >= 1")
    threads = set_threads(args.threads)
    settings = load_settings(args.settings)
    workers = settings.workers if args.workers is None else args.workers
    if workers < 1:
        raise PnasError(f"--workers must be a positive integer, got {workers}")
    # the shard index picks the GPU among the visible ones: deterministic, shared by all workers
    device = pick_device(settings.device, slot=args.shard)
    run_settings = dataclasses.replace(settings, device=str(device))  # device is not hashed
    cells = read_candidates(args.candidates)[args.shard :: args.num_shards]
    cache = ResultCache(args.cache_dir)
    data = settings.load_data()
    tag = f"shard {args.shard}/{args.num_shards}"
    log = tqdm.write
    log(
        f"pnas train: {tag}: {len(cells)} candidate(s), dataset {data.fingerprint}, "
        f"settings {settings.settings_hash()}, device {device}, {workers} worker(s), "
        f"{max(1, threads // workers) if workers > 1 else threads} thread(s) each",
        file=sys.stderr,
    )
    counts = {"trained": 0, "cached": 0}
    bar = tqdm(
        total=len(cells),
        desc=f"train {tag}",
        unit="cell",
        file=sys.stderr,
        disable=args.no_progress,
        leave=False,
    )

    def on_epoch(epoch: int, epochs: int, loss: float, acc: float) -> None:
        bar.set_postfix_str(f"epoch {epoch}/{epochs} loss {loss:.3f} train_acc {acc:.3f}")

    def on_result(k: int, text: str, record: dict[str, Any], how: str, messages: list[str]) -> None:
        for message in messages:
            log(f"pnas train: warning: {message}", file=sys.stderr)
        counts[how] += 1
        bar.update()
        acc = "-" if record["val_acc"] is None else f"{record['val_acc']:.4f}"
        err = f" ({record['error']})" if record["error"] else ""
        log(
            f"pnas train: [{sum(counts.values())}/{len(cells)}] {how} {text} val_acc={acc} "
            f"status={record['status']}{err} {record['train_seconds']:.1f}s",
            file=sys.stderr,
        )

    records = train_shard(cells, run_settings, data, cache, workers, threads, on_result, on_epoch)
    bar.close()
    meta = settings_metadata(settings.to_dict(), __version__)
    meta.update(
        shard=str(args.shard),
        num_shards=str(args.num_shards),
        settings_hash=settings.settings_hash(),
        dataset=data.fingerprint,
    )
    write_records(args.out, records, meta)
    log(
        f"pnas train: {tag}: done, {counts['trained']} trained, {counts['cached']} cached -> {args.out}",
        file=sys.stderr,
    )
    return 0


def run_merge(args: argparse.Namespace) -> int:
    """Merge records files into one, sorted by cell."""
    from pnas_core.records import merge_records, write_records

    df, meta = merge_records(args.inputs)
    meta.pop("shard", None)
    meta.pop("num_shards", None)
    write_records(args.out, df, meta)
    print(
        f"pnas merge-records: {len(df)} record(s) from {len(args.inputs)} file(s) -> {args.out}",
        file=sys.stderr,
    )
    return 0
