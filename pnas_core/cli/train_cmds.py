"""``pnas train`` (train one shard of candidates, cached) and ``pnas merge-records``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from pnas_core.cli.arg_types import count, folder_path, int_range, output_file, share, threads
from pnas_core.cli.overwrite import Paths
from pnas_core.names import DEFAULT_CACHE_DIR

PROGRESS_INTERVAL = 30.0
"""Seconds between two stage lines of ``pnas train --progress-fd`` (besides its first and last)."""


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
    train.add_argument(
        "--shard", type=int_range(0), default=0, help="this shard's index i (0-based; default 0)"
    )
    train.add_argument("--num-shards", type=count, default=1, help="number of shards S (default 1)")
    train.add_argument("--out", required=True, type=output_file, help="records Parquet file to write")
    train.add_argument(
        "--cache-dir",
        type=folder_path,
        default=Path(DEFAULT_CACHE_DIR),
        help=f"result cache (default {DEFAULT_CACHE_DIR})",
    )
    train.add_argument(
        "--threads",
        type=count,
        default=None,
        help="torch CPU threads of the job, split among --workers (default $PNAS_THREADS, else all allowed cores)",
    )
    train.add_argument(
        "--workers",
        type=threads,
        default=None,
        help="candidates trained at once on this job's device, each in its own process with threads/W "
        "torch threads (default: the settings' workers, 1); results are the same for any W",
    )
    train.add_argument(
        "--stop-at",
        type=count,
        default=None,
        help="early-stopping rung: train to this epoch of the full budget only (cached beside the run's "
        "entry with the state to resume from; default: the full budget)",
    )
    train.add_argument(
        "--resume-from",
        type=count,
        default=None,
        help="with --stop-at: continue each candidate from its checkpoint of this earlier rung",
    )
    train.add_argument("--no-progress", action="store_true", help="no progress bar (log lines only)")
    train.add_argument(
        "--stage",
        default=None,
        help="the stage's name in progress lines (the workflow's: level2, random, ...)",
    )
    train.add_argument(
        "--progress-fd",
        type=int_range(0),
        default=None,
        help="write one line about the whole stage (every shard: trained/planned, best so far, elapsed, "
        f"time left) to this open file descriptor at the start, every {PROGRESS_INTERVAL:.0f} s and at the end",
    )
    train.set_defaults(
        func=run_train, paths=lambda a: Paths(reads=[a.candidates, a.settings], writes=[a.out])
    )

    promote = sub.add_parser(
        "promote",
        help="early stopping: the candidates a rung promotes (best share by validation accuracy)",
        description="Keep the rows of --candidates whose cells are among the ceil(keep n) best records "
        "of the rung by val_acc (ties: cell text; diverged ones never), in candidates order.",
    )
    promote.add_argument("--candidates", required=True, type=Path, help="the candidates the rung trained")
    promote.add_argument("--records", required=True, type=Path, help="the rung's merged records")
    promote.add_argument("--keep", required=True, type=share, help="share promoted, in (0, 1)")
    promote.add_argument("--out", required=True, type=output_file, help="candidates Parquet to write")
    promote.set_defaults(
        func=run_promote, paths=lambda a: Paths(reads=[a.candidates, a.records], writes=[a.out])
    )

    finish = sub.add_parser(
        "finish-level",
        help="early stopping: each candidate's last rung record, then delete the level's rung checkpoints",
    )
    finish.add_argument("--out", required=True, type=output_file, help="the level's records Parquet")
    finish.add_argument(
        "--cache-dir",
        type=folder_path,
        default=Path(DEFAULT_CACHE_DIR),
        help=f"result cache holding the rung checkpoints (default {DEFAULT_CACHE_DIR})",
    )
    finish.add_argument("rungs", nargs="+", type=Path, help="merged records of each rung, first to last")
    finish.set_defaults(func=run_finish, paths=lambda a: Paths(reads=a.rungs, writes=[a.out]))

    merge = sub.add_parser(
        "merge-records", help="concatenate records files (same schema), sorted by cell, duplicates dropped"
    )
    merge.add_argument("--out", required=True, type=output_file, help="merged records Parquet file")
    merge.add_argument("inputs", nargs="+", type=Path, help="records Parquet files")
    merge.set_defaults(func=run_merge, paths=lambda a: Paths(reads=a.inputs, writes=[a.out]))


def read_candidates(path: Path) -> list[str]:
    """Canonical cell texts of a candidates Parquet file's ``cell`` column, checked
    (:func:`pnas_core.io.tables.read_arrow`; errors name the row)."""
    from pnas_core.io.tables import read_arrow

    return read_arrow(path, "candidates", ["cell"], unique=("cell",)).column("cell").to_pylist()


def run_train(args: argparse.Namespace) -> int:
    """Train one shard, logging one line per finished candidate; write its records atomically."""
    import dataclasses

    from tqdm import tqdm

    from pnas_core import __version__
    from pnas_core.devices import pick_device, set_threads
    from pnas_core.errors import PnasError
    from pnas_core.io.records import settings_metadata, write_records
    from pnas_core.search.status import CacheKey
    from pnas_core.training.cache import ResultCache
    from pnas_core.training.shard import train_shard
    from pnas_core.training.train import load_settings

    if args.num_shards < 1 or not 0 <= args.shard < args.num_shards:
        raise PnasError(f"--shard must be in 0..{args.num_shards - 1} and --num-shards >= 1")
    if args.resume_from is not None and args.stop_at is None:
        raise PnasError("--resume-from needs --stop-at")
    stop = None if args.stop_at is None else (args.stop_at, args.resume_from)
    threads = set_threads(args.threads)
    settings = load_settings(args.settings)
    workers = settings.workers if args.workers is None else args.workers
    # the shard index picks the GPU among the visible ones: deterministic, shared by all workers
    device = pick_device(settings.device, slot=args.shard)
    run_settings = dataclasses.replace(settings, device=str(device))  # device is not hashed
    stage_cells = read_candidates(args.candidates)
    cells = stage_cells[args.shard :: args.num_shards]
    cache = ResultCache(args.cache_dir)
    data = settings.load_data()
    stage_progress = None
    if args.progress_fd is not None:
        rungs = (stop[0], settings.epochs) if stop is not None and stop[0] < settings.epochs else ()
        key = CacheKey(cache, settings.settings_hash(), data.fingerprint, settings.seed, rungs)
        stage_progress = StageProgress(
            args.progress_fd, args.stage or str(args.candidates), stage_cells, key, args.num_shards
        )
    tag = f"shard {args.shard}/{args.num_shards}"
    if stop is not None:
        tag += f", epochs {stop[1] or 0}..{stop[0]} of {settings.epochs}"
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
        disable=args.no_progress or not sys.stderr.isatty(),  # a log file gets the plain lines only
        leave=False,
    )

    def on_epoch(epoch: int, epochs: int, loss: float, acc: float) -> None:
        bar.set_postfix_str(f"epoch {epoch}/{epochs} loss {loss:.3f} train_acc {acc:.3f}")

    def on_result(k: int, text: str, record: dict[str, Any], how: str, messages: list[str]) -> None:
        for message in messages:
            log(f"pnas train: warning: {message}", file=sys.stderr)
        counts[how] += 1
        bar.update()
        if stage_progress is not None:
            stage_progress.report()
        acc = "-" if record["val_acc"] is None else f"{record['val_acc']:.4f}"
        err = f" ({record['error']})" if record["error"] else ""
        log(
            f"pnas train: [{sum(counts.values())}/{len(cells)}] {how} {text} val_acc={acc} "
            f"status={record['status']}{err} {record['train_seconds']:.1f}s",
            file=sys.stderr,
        )

    if stage_progress is not None:
        stage_progress.report(force=True)
    records = train_shard(cells, run_settings, data, cache, workers, threads, on_result, on_epoch, stop)
    bar.close()
    if stage_progress is not None:
        stage_progress.report(force=True)
    meta = settings_metadata(settings.to_dict(), __version__)
    meta.update(
        shard=str(args.shard),
        num_shards=str(args.num_shards),
        settings_hash=settings.settings_hash(),
        dataset=data.fingerprint,
        **({} if stop is None else {"stop_at": str(stop[0])}),
    )
    write_records(args.out, records, meta)
    log(
        f"pnas train: {tag}: done, {counts['trained']} trained, {counts['cached']} cached -> {args.out}",
        file=sys.stderr,
    )
    return 0


class StageProgress:
    """Writes the stage's status line (:func:`pnas_core.search.status.stage_line`, read from the cache,
    so it counts every shard's models) to an open file descriptor, at most every
    :data:`PROGRESS_INTERVAL` seconds unless forced."""

    def __init__(self, fd: int, stage: str, cells: list[str], key: Any, shards: int) -> None:
        import os

        from pnas_core.errors import PnasError

        try:
            self.out = os.fdopen(fd, "w", closefd=False)
        except OSError as exc:
            raise PnasError(f"--progress-fd {fd}: not an open file descriptor ({exc.strerror})") from None
        self.stage, self.cells, self.key, self.shards = stage, cells, key, shards
        self.last = float("-inf")

    def report(self, force: bool = False) -> None:
        """Write the line now if forced or the interval has passed."""
        import time

        from pnas_core.search.status import cached_records, stage_line, stage_status

        if not force and time.monotonic() - self.last < PROGRESS_INTERVAL:
            return
        self.last = time.monotonic()
        status = stage_status(self.stage, len(self.cells), cached_records(self.cells, self.key))
        print(f"pnas: {stage_line(status, self.shards)}", file=self.out, flush=True)


def run_merge(args: argparse.Namespace) -> int:
    """Merge records files into one, sorted by cell."""
    from pnas_core.io.records import merge_records, write_records

    df, meta = merge_records(args.inputs)
    meta.pop("shard", None)
    meta.pop("num_shards", None)
    write_records(args.out, df, meta)
    print(
        f"pnas merge-records: {len(df)} record(s) from {len(args.inputs)} file(s) -> {args.out}",
        file=sys.stderr,
    )
    return 0


def run_promote(args: argparse.Namespace) -> int:
    """Write the rows of the candidates the rung promotes."""
    import pyarrow as pa

    from pnas_core.errors import PnasError
    from pnas_core.io.records import read_records
    from pnas_core.search import beam
    from pnas_core.search.early_stop import promote

    if not 0 < args.keep < 1:
        raise PnasError(f"--keep must be in (0, 1), got {args.keep}")
    candidates = beam.read_cell_table(args.candidates, "candidates")
    records = read_records(args.records)
    texts = candidates.column("cell").to_pylist()
    missing = sorted(set(texts) - set(records["cell"]))
    if missing:
        raise PnasError(f"records {args.records} lack {len(missing)} candidate(s), e.g. {missing[0]!r}")
    records = records.set_index("cell").loc[texts].reset_index()  # candidates order
    chosen = set(promote(records, args.keep))
    beam.write_table(candidates.filter(pa.array([t in chosen for t in texts])), args.out)
    print(f"pnas promote: {len(chosen)} of {len(texts)} candidates -> {args.out}", file=sys.stderr)
    return 0


def run_finish(args: argparse.Namespace) -> int:
    """Merge the rungs' records into the level's (each cell's last record) and drop the checkpoints."""
    from pnas_core.io.records import RECORD_KEY, read_metadata, read_records, write_records
    from pnas_core.search.early_stop import last_records
    from pnas_core.training.cache import ResultCache

    frames = [read_records(path) for path in args.rungs]
    records = last_records(frames)
    meta = read_metadata(args.rungs[-1])  # a merged file: the settings, without shard entries
    meta.pop("stop_at", None)
    write_records(args.out, records.sort_values("cell", kind="mergesort", ignore_index=True), meta)
    cache = ResultCache(args.cache_dir)
    removed = sum(cache.remove_checkpoints(*(row[k] for k in RECORD_KEY)) for _, row in records.iterrows())
    stopped = int((records["status"] == "stopped").sum())
    print(
        f"pnas finish-level: {len(records)} record(s), {stopped} stopped early, {removed} checkpoint(s) "
        f"removed -> {args.out}",
        file=sys.stderr,
    )
    return 0
