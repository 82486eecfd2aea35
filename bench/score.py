"""Benchmark: fit rnn+mlp+xgb on 1,160 synthetic records (paper scale: 136 + 4·256), then expand 256
random four-block cells into their 301,056 children, canonicalise and deduplicate them, and score the
distinct cells with all three (5 RNNs, 5 MLPs, XGBoost), building the scored table. Fitting and
scoring run the members on --threads threads (as ``pnas fit-surrogate`` and ``pnas expand-score`` do
in the workflow), then each family is scored alone on one thread to show where the time goes. Prints
wall and process CPU seconds of each step (the machine may be shared: the load average is printed
too) and the process's peak memory (ru_maxrss).

Targets (2-core CPU, issue 18): fit of every default family <= 5 s, expand+score <= 3 s, the
children's exact cost columns <= 1 s more, peak memory <= 4 GiB.
Run: python bench/score.py [--threads 2] [--settings FILE] [--parents 256] [--seed 0] [--skip-costs]
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import resource
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from pnas_core.search import beam, scoring
from pnas_core.space.cells import Space, canonical_tokens, first_rows, insertion_positions, unique_rows
from pnas_core.surrogate import SurrogateSettings
from pnas_core.surrogate.bundle import fit_predictors


class Timer:
    """Wall and process CPU seconds since creation."""

    def __init__(self) -> None:
        self.wall, self.cpu = time.perf_counter(), time.process_time()

    def __str__(self) -> str:
        return f"{time.perf_counter() - self.wall:6.2f} s wall, {time.process_time() - self.cpu:6.2f} s CPU"


OP_EFFECT = np.array([0.03, 0.02, 0.01, -0.01, -0.03, -0.02, 0.0, 0.015])


def synthetic_accuracy(tokens: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """0.7 + mean op effect per block + the share of blocks reading a block output + noise."""
    b = tokens.shape[1] // 4
    ops = OP_EFFECT[tokens[:, 2::4]].sum(1) + OP_EFFECT[tokens[:, 3::4]].sum(1)
    deep = (tokens[:, 0::4] >= 2).mean(1) * 0.02
    return np.clip(0.7 + ops / b + deep + rng.normal(0, 0.005, len(tokens)), 0, 1)


def cost_columns(parents: np.ndarray, space: Space) -> None:
    """Time the exact params/mult-adds columns of all children in the paper's search network (N=2,
    F=24, CIFAR-10 32x32x3): building the per-piece table once, then the vectorised gathers."""
    from pnas_core.training.cost import cost_table, search_network
    from pnas_core.training.train import TrainSettings

    net, shape = search_network(TrainSettings(dataset="cifar10"))
    children, _ = space.expand(parents)
    t0, c0 = time.perf_counter(), time.process_time()
    table = cost_table(net, shape, children.shape[1] // 4)
    t1, c1 = time.perf_counter(), time.process_time()
    params, _ = table.costs(children)
    t2, c2 = time.perf_counter(), time.process_time()
    print(
        f"cost columns of {len(children):,} children (target <= 1 s more): table {t1 - t0:.2f} s "
        f"(once per job) + gathers {t2 - t1:.2f} s = {t2 - t0:.2f} s wall, {c2 - c0:.2f} s CPU "
        f"(table {c1 - c0:.2f}, gathers {c2 - c1:.2f}); params {params.min():,}..{params.max():,}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--parents", type=int, default=256)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2, help="threads fitting and scoring (default 2)")
    parser.add_argument(
        "--settings", default=None, help="surrogate settings, JSON or YAML (default: built-in, the paper's)"
    )
    parser.add_argument("--skip-costs", action="store_true", help="do not time the cost columns")
    args = parser.parse_args()
    space, rng = Space(), np.random.default_rng(args.seed)
    base = SurrogateSettings() if args.settings is None else SurrogateSettings.from_file(args.settings)
    settings = dataclasses.replace(base, seed=args.seed)
    fit_tokens = [space.one_block_tokens()] + [
        space.sample_tokens(b, 256, rng) for b in range(2, space.max_blocks + 1)
    ]
    cells = [row for t in fit_tokens for row in t]
    acc = np.concatenate([synthetic_accuracy(t, rng) for t in fit_tokens])
    print(
        f"{args.threads} thread(s), each member on one torch thread (pnas_core.surrogate.jobs), "
        f"device {'cuda' if torch.cuda.is_available() else 'cpu'}"
    )
    print(
        f"fit data: {len(cells)} cells (1..{space.max_blocks} blocks); epochs {settings.epochs}, "
        f"embed/hidden {settings.embed_dim}/{settings.hidden_dim}, {settings.ensemble_size} members"
    )

    print(f"load average at start: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    t = Timer()
    torch.optim.Adam(torch.nn.Linear(1, 1).parameters())
    print(f"first torch.optim optimizer of the process (imports torch._dynamo, once per process): {t}")
    names, t = ("rnn", "mlp", "xgb"), Timer()
    fit_df = pd.DataFrame({"cell": cells, "val_acc": acc})
    predictors = fit_predictors(fit_df, names, settings, workers=args.threads)
    print(f"fit all three on {args.threads} thread(s): {t} (target <= 5 s)")

    parents = space.sample_tokens(4, args.parents, rng)
    t = Timer()
    table = scoring.expand_and_score(parents, predictors, space, workers=args.threads)
    print(
        f"expand+score the children of {args.parents} parents ({table.num_rows:,} distinct cells, each scored "
        f"on its canonical form) on {args.threads} thread(s): {t} (target <= 3 s)"
    )
    canonical = unique_rows(canonical_tokens(parents))
    children, parent_index, _ = space.canonical_children(canonical)
    keep = first_rows(children)
    children, parent_index = children[keep], parent_index[keep]
    positions = insertion_positions(children, canonical[parent_index])
    ok = positions >= 0
    blocks = children.reshape(len(children), 5, 4)[ok, positions[ok]]
    for name, predictor in predictors.items():
        t = Timer()
        predictor.predict_insertions(canonical, blocks, positions[ok], parent_index[ok])
        print(f"  {name} scoring alone ({ok.sum():,} children on the insertion path): {t}")
    print(f"load average after scoring: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        beam.write_table(table, Path(tmp) / "scored.parquet")
        t_write = time.perf_counter() - t0
        t0 = time.perf_counter()
        top = beam.select(table, 256, "mean")
        print(
            f"write scored.parquet: {t_write:.2f} s; select top {top.num_rows}: {time.perf_counter() - t0:.2f} s"
        )
    if not args.skip_costs:
        cost_columns(parents, space)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    print(f"peak memory (ru_maxrss): {peak:.2f} GiB (target <= 4 GiB)")


if __name__ == "__main__":
    main()
