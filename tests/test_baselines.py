"""The baselines (pnas_core.search.baselines): one-edit changes give valid canonical cells, regularized
evolution and local search do what their papers say over any evaluator, the budget counts distinct
trainings, and random search draws what the workflow's ``pnas sample`` draws."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import pytest
from synthetic import op_accuracy

from pnas_core.errors import PnasError
from pnas_core.search import baselines, beam
from pnas_core.search.progressive import Evaluator
from pnas_core.search.strategies import EvolutionStrategy, LocalStrategy, parse_strategy
from pnas_core.space.cells import Space, cell_id, parse, texts_to_tokens

SPACE = Space.from_names(None, 3)
CELL = parse("0:sep3x3,1:identity;0:conv7x1,2:max3x3;2:dil3x3,3:sep5x5")


class OpEvaluator(Evaluator):
    """Synthetic accuracy (tests/synthetic.py) plus below 1e-6 from the cell id, so no two cells tie;
    it records every cell it is asked to evaluate."""

    epochs = 1

    def __init__(self) -> None:
        self.asked: list[str] = []

    def evaluate(self, cells: Sequence[str], stop=None) -> pd.DataFrame:
        self.asked += list(cells)
        acc = [float(op_accuracy(texts_to_tokens([c]))[0]) + int(cell_id(c), 16) / 2**70 for c in cells]
        return pd.DataFrame(
            {"cell": list(cells), "num_blocks": [parse(c).num_blocks for c in cells], "val_acc": acc}
        ).assign(status="ok", epochs=1)


def test_every_edit_gives_a_valid_canonical_cell_one_change_away() -> None:
    edits = baselines.edits(CELL, SPACE)
    # block j (1-based) reads 0..j: per half 7 other ops and j other inputs
    assert len(edits) == sum(2 * (7 + j) for j in (1, 2, 3))
    for edit in edits:
        child = baselines.apply_edit(CELL, edit)
        assert parse(child.text) == child and child.num_blocks == 3 and SPACE.contains(child)
        # the written halves differ in exactly one value
        before = sorted(h for b in CELL.blocks for h in ((b.in1, b.op1), (b.in2, b.op2)))
        after = sorted(h for b in child.blocks for h in ((b.in1, b.op1), (b.in2, b.op2)))
        assert before != after
    neighbours = baselines.neighbours(CELL, SPACE)
    assert CELL not in neighbours and len(set(neighbours)) == len(neighbours) <= len(edits)


def test_mutation_is_one_edit_and_respects_the_op_subset() -> None:
    space = Space.from_names(["sep3x3", "identity", "max3x3"], 2)
    cell = parse("0:sep3x3,1:identity;2:max3x3,0:sep3x3")
    around = set(baselines.neighbours(cell, space))
    rng = np.random.default_rng(0)
    children = [baselines.mutate(cell, space, rng) for _ in range(200)]
    assert set(children) <= around and len(set(children)) > len(around) // 2
    assert all(space.contains(c) for c in children)


def test_random_search_draws_what_pnas_sample_draws() -> None:
    ev = OpEvaluator()
    records = baselines.random_search(SPACE, ev, 30, seed=4)
    assert records["cell"].tolist() == beam.sample_cells(SPACE, 3, 30, 4).column("cell").to_pylist()
    assert set(records[baselines.ORIGIN]) == {"random"}


def test_evolution_follows_real_et_al() -> None:
    ev = OpEvaluator()
    records = baselines.regularized_evolution(SPACE, ev, 120, seed=1, population=10, sample=3)
    assert len(records) == 120 and records["cell"].is_unique and (records["num_blocks"] == 3).all()
    assert records[baselines.ORIGIN].tolist() == ["random"] * 10 + ["mutation"] * 110
    # every child is one edit from a cell trained before it (its parent; a repeated child is not a
    # row but joins the population, so the parent is not always among the last 10 rows)
    cells = records["cell"].tolist()
    around = [{n.text for n in baselines.neighbours(parse(c), SPACE)} for c in cells]
    assert all(any(cells[i] in around[j] for j in range(i)) for i in range(10, len(cells)))
    # tournaments select: the children beat the random start on average, and the best improves
    acc = records["val_acc"].to_numpy()
    assert acc[10:].mean() > acc[:10].mean() and acc.max() > acc[:10].max()
    # the same seed replays the same run; another seed another
    again = baselines.regularized_evolution(SPACE, OpEvaluator(), 120, seed=1, population=10, sample=3)
    assert again["cell"].tolist() == records["cell"].tolist()
    other = baselines.regularized_evolution(SPACE, OpEvaluator(), 120, seed=2, population=10, sample=3)
    assert other["cell"].tolist() != records["cell"].tolist()


def test_a_repeated_cell_is_not_trained_again_and_not_counted() -> None:
    # two ops, one block: 10 distinct cells; evolution must propose repeats long before it trains all
    space = Space.from_names(["sep3x3", "identity"], 1)
    ev = OpEvaluator()
    records = baselines.regularized_evolution(space, ev, 10, seed=0, population=3, sample=2)
    assert sorted(records["cell"]) == sorted(t.text for t in space.one_block_cells())
    assert ev.asked == records["cell"].tolist()  # each asked once, in training order
    with pytest.raises(PnasError, match="every 1-block cell of the space has been trained"):
        baselines.local_search(space, OpEvaluator(), 11, seed=0)


def test_local_search_moves_to_the_best_neighbour_and_restarts_when_stuck() -> None:
    space = Space.from_names(["sep3x3", "identity", "max3x3"], 2)  # small: optima come soon
    records = baselines.local_search(space, OpEvaluator(), 150, seed=3)
    assert len(records) == 150 and records["cell"].is_unique
    cells, origin = records["cell"].tolist(), records[baselines.ORIGIN].tolist()
    acc = dict(zip(cells, records["val_acc"], strict=True))
    # follow the walk: after each cell come its untrained neighbours, then a move to the best
    # neighbour if it beats the cell, else a restart from a random cell
    current, i, moves, restarts = cells[0], 1, 0, 0
    assert origin[0] == "random"
    while i < len(cells):
        around = [c.text for c in baselines.neighbours(parse(current), space)]
        new = [c for c in around if c not in cells[:i]]
        block = cells[i : i + len(new)]
        assert set(block) <= set(new) and (len(block) == len(new) or i + len(block) == len(cells))
        assert all(o == "neighbour" for o in origin[i : i + len(block)])
        i += len(block)
        if i == len(cells):
            break
        best = max((c for c in around if c in cells[:i]), key=acc.__getitem__)
        if acc[best] > acc[current]:
            current, moves = best, moves + 1
        else:
            assert origin[i] == "random"
            current, i, restarts = cells[i], i + 1, restarts + 1
    assert moves >= 2 and restarts >= 2  # the synthetic accuracy has local optima


@pytest.mark.parametrize(
    "text, expected",
    [
        ("evolution", EvolutionStrategy(20, 5)),
        ("evolution@population=8,sample=8", EvolutionStrategy(8, 8)),
        ("local", LocalStrategy()),
    ],
)
def test_baseline_texts_parse(text: str, expected) -> None:
    assert parse_strategy(text) == expected


@pytest.mark.parametrize(
    "text, message",
    [
        ("evolution@population=4,sample=5", "sample <= population"),
        ("evolution@population=1", r"population of 2\.\.1000000"),
        ("evolution@size=4", "KEY one of population, sample"),
        ("local@population=3", "KEY one of \\(none\\)"),
        ("local:x", "local takes no arguments"),
    ],
)
def test_bad_baseline_texts_are_refused(text: str, message: str) -> None:
    with pytest.raises(PnasError, match=message):
        parse_strategy(text)
