"""The baselines PNAS is measured against, each one function over an
:class:`~pnas_core.search.progressive.Evaluator`, so the same code replays on a benchmark table (``pnas simulate``)
and trains for real through the result cache (the workflow's ``replicates``; docs/method.md,
"Baselines").

* :func:`random_search`: distinct B-block cells drawn uniformly (:func:`pnas_core.search.beam.sample_cells`,
  the sampler of the workflow's random-search baseline: the same seed draws the same cells).
* :func:`regularized_evolution` (Real et al. 2019): a population of P cells, initially random; each
  cycle draws S members at random, mutates the best of them (one op or one input of one block) and
  adds the child, removing the oldest member.
* :func:`local_search` (best improvement, as White et al. 2021 run it on NAS benchmarks): train every
  one-edit neighbour of the current cell, move to the best one if it beats the current cell, else
  restart from a new random cell.

**What the budget counts.** Every strategy trains ``budget`` distinct cells (the rows it returns, in
training order). A cell a strategy asks for again (an evolution child or a neighbour it trained before)
is not trained again and does not count: its accuracy is the one already observed (the result cache
would return the same record), and an evolution child still enters the population and ages.
"""

from __future__ import annotations

import collections
from collections.abc import Sequence

import numpy as np
import pandas as pd

from pnas_core.errors import PnasError
from pnas_core.limits import MAX_COUNT
from pnas_core.search import beam
from pnas_core.search.progressive import Evaluator
from pnas_core.space.cells import Block, Cell, Space, parse, tokens_to_texts

EVOLUTION_TAG, LOCAL_TAG = 2, 3
"""First entries of the seed sequences of evolution and local search (random search draws with the
plain seed, as ``pnas sample`` does): each strategy's draws are its own for a given seed."""

MAX_REPEATS = 10_000
"""Consecutive already-trained cells an evolution may propose before it is declared stuck."""

ORIGIN = "origin"
"""Column of the returned records saying why a cell was trained: ``random`` (drawn uniformly:
random search, evolution's initial population, local search's starts), ``mutation``, ``neighbour``."""


class _History:
    """The distinct cells trained so far, their records in training order and accuracies."""

    def __init__(self, evaluator: Evaluator, budget: int) -> None:
        if budget < 1:
            raise PnasError(f"budget must be at least 1, got {budget}")
        self.evaluator, self.budget = evaluator, budget
        self.frames: list[pd.DataFrame] = []
        self.accuracy: dict[str, float] = {}

    @property
    def left(self) -> int:
        return self.budget - len(self.accuracy)

    def train(self, cells: Sequence[str], origin: str) -> None:
        """Evaluate the cells not seen before (in order, up to the budget) and remember them."""
        new = list(dict.fromkeys(c for c in cells if c not in self.accuracy))[: self.left]
        if not new:
            return
        records = self.evaluator.evaluate(new).assign(**{ORIGIN: origin})
        for cell, acc, status in zip(records["cell"], records["val_acc"], records["status"], strict=True):
            self.accuracy[cell] = float(acc) if status == "ok" else float("-inf")
        self.frames.append(records)

    def records(self) -> pd.DataFrame:
        return pd.concat(self.frames, ignore_index=True)


def _blocks(space: Space, blocks: int | None) -> int:
    b = space.max_blocks if blocks is None else blocks
    if not 1 <= b <= space.max_blocks:
        raise PnasError(f"cells of {b} blocks are outside this space (1..{space.max_blocks})")
    return b


def random_search(
    space: Space, evaluator: Evaluator, budget: int, seed: int, blocks: int | None = None
) -> pd.DataFrame:
    """Train ``budget`` distinct ``blocks``-block cells (default B) drawn uniformly with ``seed``, as
    the workflow's baseline draws them (all of them when the space holds fewer)."""
    b = _blocks(space, blocks)
    history = _History(evaluator, budget)
    drawn = beam.sample_cells(space, b, space.cap_to_distinct(b, budget), seed)
    history.train(drawn.column("cell").to_pylist(), "random")
    return history.records()


def _draw_new(space: Space, b: int, rng: np.random.Generator, seen: dict[str, float]) -> str:
    """One uniformly drawn distinct b-block cell not in ``seen``."""
    if len(seen) >= space.cap_to_distinct(b, len(seen) + 1):
        raise PnasError(f"every {b}-block cell of the space has been trained")
    while True:
        text = tokens_to_texts(space.sample_distinct(b, 1, rng), canonical=True)[0]
        if text not in seen:
            return text


def edits(cell: Cell, space: Space) -> list[tuple[int, int, str, int]]:
    """Every one-edit change of ``cell``: ``(block, half, "op" | "input", new value)``, with blocks and
    halves as written in the canonical text (0-based) and the new value differing from the old one.
    Block j (1-based) may read inputs 0..j, so every edit leaves a valid cell."""
    out = []
    for j, block in enumerate(cell.blocks):
        for h, (inp, op) in enumerate(((block.in1, block.op1), (block.in2, block.op2))):
            out += [(j, h, "op", o) for o in space.ops if o != op]
            out += [(j, h, "input", i) for i in range(j + 2) if i != inp]
    return out


def apply_edit(cell: Cell, edit: tuple[int, int, str, int]) -> Cell:
    """The canonical cell ``cell`` becomes under one edit of :func:`edits`."""
    j, h, kind, value = edit
    old = cell.blocks[j]
    halves = [[old.in1, old.op1], [old.in2, old.op2]]
    halves[h][0 if kind == "input" else 1] = value
    blocks = list(cell.blocks)
    blocks[j] = Block.make(*halves[0], *halves[1])
    tokens = [t for bl in blocks for t in (bl.in1, bl.in2, bl.op1, bl.op2)]
    return Cell.from_tokens(tokens)


def neighbours(cell: Cell, space: Space) -> list[Cell]:
    """The distinct cells one edit away from ``cell`` (itself excluded), in :func:`edits` order."""
    found = dict.fromkeys(apply_edit(cell, e) for e in edits(cell, space))
    found.pop(cell, None)
    return list(found)


def mutate(cell: Cell, space: Space, rng: np.random.Generator) -> Cell:
    """Real et al.'s mutation: a block and one of its halves drawn uniformly, then its op or its input
    (each with probability 1/2; the other when one has no alternative) set to a different value drawn
    uniformly; redrawn in the rare case the canonical result is the cell itself."""
    while True:
        j = int(rng.integers(cell.num_blocks))
        h = int(rng.integers(2))
        options = [e for e in edits(cell, space) if e[0] == j and e[1] == h]
        kinds = sorted({e[2] for e in options})
        kind = kinds[int(rng.integers(len(kinds)))]
        choices = [e for e in options if e[2] == kind]
        child = apply_edit(cell, choices[int(rng.integers(len(choices)))])
        if child != cell:
            return child


def check_evolution(population: int, sample: int) -> None:
    """Refuse a population outside 2..MAX_COUNT or a tournament size outside 1..population."""
    if not 2 <= population <= MAX_COUNT or not 1 <= sample <= population:
        raise PnasError(
            f"evolution needs a population of 2..{MAX_COUNT} and 1 <= sample <= population, "
            f"got population {population}, sample {sample}"
        )


def regularized_evolution(
    space: Space,
    evaluator: Evaluator,
    budget: int,
    seed: int,
    population: int = 20,
    sample: int = 5,
    blocks: int | None = None,
) -> pd.DataFrame:
    """Real et al.'s regularized (aging) evolution over ``blocks``-block cells (default B): ``population``
    random cells, then cycles of tournament (``sample`` members drawn without replacement, the most
    accurate wins; ties: the older), mutation of the winner (:func:`mutate`), the child added and the
    oldest member removed, until ``budget`` distinct cells are trained."""
    check_evolution(population, sample)
    b = _blocks(space, blocks)
    rng = np.random.default_rng([EVOLUTION_TAG, seed])
    history = _History(evaluator, budget)
    start = space.sample_distinct(b, space.cap_to_distinct(b, min(population, budget)), rng)
    members = collections.deque(tokens_to_texts(start, canonical=True))
    history.train(list(members), "random")
    repeats = 0
    while history.left > 0:
        drawn = sorted(rng.choice(len(members), size=min(sample, len(members)), replace=False))
        parent = max(drawn, key=lambda i: history.accuracy[members[i]])  # max keeps the first (oldest)
        child = mutate(parse(members[parent]), space, rng).text
        repeats = repeats + 1 if child in history.accuracy else 0
        if repeats > MAX_REPEATS:
            raise PnasError(
                f"evolution proposed {MAX_REPEATS} trained cells in a row; the space is exhausted"
            )
        history.train([child], "mutation")
        members.append(child)
        if len(members) > population:
            members.popleft()
    return history.records()


def local_search(
    space: Space, evaluator: Evaluator, budget: int, seed: int, blocks: int | None = None
) -> pd.DataFrame:
    """Best-improvement local search over ``blocks``-block cells (default B): from a random cell, train
    every one-edit neighbour not trained yet (in a seeded random order, so a budget that runs out
    mid-neighbourhood cuts a random part), move to the most accurate neighbour if it beats the
    current cell, else (a local optimum) restart from a new random cell not trained yet."""
    b = _blocks(space, blocks)
    rng = np.random.default_rng([LOCAL_TAG, seed])
    history = _History(evaluator, budget)
    current = _draw_new(space, b, rng, history.accuracy)
    history.train([current], "random")
    while history.left > 0:
        around = [c.text for c in neighbours(parse(current), space)]
        around = [around[i] for i in rng.permutation(len(around))]
        history.train(around, "neighbour")
        known = [c for c in around if c in history.accuracy]
        best = max(known, key=history.accuracy.__getitem__, default=None)  # first in the drawn order
        if best is not None and history.accuracy[best] > history.accuracy[current]:
            current = best
        elif history.left > 0:
            current = _draw_new(space, b, rng, history.accuracy)
            history.train([current], "random")
    return history.records()
