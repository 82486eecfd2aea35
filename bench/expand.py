"""Expansion speed: all children of 256 random four-block cells, as canonical token arrays.

The issue's target: all 301,056 children, canonicalised up to block order and deduplicated, in under
2 s on one core. Prints the best of several runs (these machines are noisy) and, for comparison in
the same run, the general canonicaliser on the same rows and the per-cell Python path on a few
parents.

    python bench/expand.py
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np

from pnas_core.space.cells import Space, canonical_tokens, first_rows, tokens_to_cells, tokens_to_texts


def best_of(fn: Callable[[], object], repeats: int = 5) -> float:
    """Smallest wall time of ``repeats`` calls."""
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def canonical_distinct(space: Space, parents: np.ndarray) -> np.ndarray:
    """The distinct canonical children of the parents (what the beam scores)."""
    children, _, _ = space.canonical_children(parents)
    return children[first_rows(children)]


def main() -> None:
    space = Space()
    parents = space.sample_tokens(4, 256, np.random.default_rng(0))
    sequences, _ = space.expand(parents)
    assert sequences.shape == (301_056, 20), sequences.shape
    _, _, appended = space.canonical_children(parents)
    distinct = canonical_distinct(space, parents)
    t_seq = best_of(lambda: space.expand(parents))
    t_canon = best_of(lambda: canonical_distinct(space, parents))
    t_general = best_of(lambda: canonical_tokens(sequences), repeats=2)
    t_text = best_of(lambda: tokens_to_texts(distinct, canonical=True), repeats=2)
    few = tokens_to_cells(parents[:4])
    t_loop = best_of(lambda: [space.children(c) for c in few], repeats=2) / 4
    print(
        f"children of 256 four-block parents: {len(sequences):,} sequences, {len(distinct):,} distinct cells"
    )
    print(f"  canonical form = parent + new block for {appended.mean():.1%} of them")
    print(f"parent + block sequences (token arrays):        {t_seq * 1e3:8.1f} ms")
    print(f"canonical children, deduplicated (fast path):   {t_canon * 1e3:8.1f} ms   (target < 2000 ms)")
    print(f"canonical_tokens on all sequences (general):    {t_general * 1e3:8.1f} ms")
    print(f"canonical texts of the distinct children:       {t_text * 1e3:8.1f} ms")
    print(
        f"per-parent Cell objects (loop path):            {t_loop * 1e3:8.1f} ms per parent "
        f"-> {t_loop * 256:.1f} s for 256 ({t_loop * 256 / t_canon:,.0f}x the vectorised path)"
    )


if __name__ == "__main__":
    main()
