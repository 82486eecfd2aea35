"""The search space: canonical text, counts, expansion and tokens (docs/method.md, "The search space" to "Counts")."""

from __future__ import annotations

import itertools
import random

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pnas_core.errors import PnasError
from pnas_core.space import (
    OPS,
    PNASNET5,
    Block,
    Cell,
    CellSyntaxError,
    Space,
    cell_id,
    parse,
    texts_to_tokens,
    tokens_to_cells,
    tokens_to_texts,
    unique_rows,
)

PAPER_COUNTS = [136, 40_800, 21_542_400, 17_664_768_000, 20_773_767_168_000]


@st.composite
def raw_cells(draw: st.DrawFn, max_blocks: int = 5) -> list[tuple[int, int, int, int]]:
    """Blocks as (in1, op1, in2, op2) in arbitrary half order."""
    b = draw(st.integers(1, max_blocks))
    blocks = []
    for j in range(1, b + 1):
        half = st.tuples(st.integers(0, j), st.integers(0, len(OPS) - 1))
        (i1, o1), (i2, o2) = draw(half), draw(half)
        blocks.append((i1, o1, i2, o2))
    return blocks


def raw_text(blocks: list[tuple[int, int, int, int]]) -> str:
    return ";".join(f"{i1}:{OPS[o1]},{i2}:{OPS[o2]}" for i1, o1, i2, o2 in blocks)


def test_paper_counts() -> None:
    space = Space()
    assert [space.count_cells(b) for b in range(1, 6)] == PAPER_COUNTS
    assert [space.blocks_per_position(b) for b in range(1, 6)] == [136, 300, 528, 820, 1176]


def test_pnasnet5_text_is_canonical_and_halves_swap() -> None:
    cell = parse(PNASNET5)
    assert cell.text == PNASNET5
    swapped = ";".join(",".join(reversed(block.split(","))) for block in PNASNET5.split(";"))
    assert swapped != PNASNET5
    assert parse(swapped) == cell
    assert parse(swapped).id == cell.id == cell_id(PNASNET5)
    assert cell.blocks[3] == Block(1, OPS.index("max3x3"), 4, OPS.index("sep3x3"))


@given(raw_cells())
@settings(deadline=None)  # a loaded CI machine must not turn a slow example into a failure
def test_text_round_trip(blocks: list[tuple[int, int, int, int]]) -> None:
    cell = parse(raw_text(blocks))
    assert parse(cell.text) == cell
    assert Cell.from_tokens(cell.tokens()) == cell
    assert cell.num_blocks == len(blocks)
    assert hash(cell) == hash(parse(cell.text))


@given(raw_cells())
@settings(deadline=None)
def test_canonicalisation_idempotent_and_order_insensitive(blocks: list[tuple[int, int, int, int]]) -> None:
    swapped = [(i2, o2, i1, o1) for i1, o1, i2, o2 in blocks]
    a, b = parse(raw_text(blocks)), parse(raw_text(swapped))
    assert a == b
    assert parse(a.text).text == a.text
    for block in a.blocks:
        assert (block.in1, block.op1) <= (block.in2, block.op2)


@given(raw_cells(max_blocks=4))
@settings(max_examples=25, deadline=None)
def test_children_unique_canonical_one_longer(blocks: list[tuple[int, int, int, int]]) -> None:
    parent = parse(raw_text(blocks))
    space = Space()
    kids = space.children(parent)
    assert len(kids) == space.blocks_per_position(parent.num_blocks + 1)
    assert len(set(kids)) == len(kids)
    for kid in kids:
        assert kid.num_blocks == parent.num_blocks + 1
        assert kid.blocks[:-1] == parent.blocks
        assert parse(kid.text) == kid


@pytest.mark.parametrize("ops", [("sep3x3",), ("identity", "max3x3"), ("sep5x5", "avg3x3", "dil3x3")])
def test_counts_match_enumeration_for_small_op_sets(ops: tuple[str, ...]) -> None:
    space = Space.from_names(ops, max_blocks=3)
    ids = space.ops
    for b in (1, 2, 3):
        halves = [(i, o) for i in range(b + 1) for o in ids]
        brute = {Block.make(i1, o1, i2, o2) for (i1, o1), (i2, o2) in itertools.product(halves, repeat=2)}
        assert len(brute) == space.blocks_per_position(b)
    level = space.one_block_tokens()
    assert len({tuple(r) for r in level}) == space.count_cells(1)
    for b in (2, 3):
        level, _ = space.expand(level)
        assert len({tuple(r) for r in level}) == space.count_cells(b)
        assert all(space.contains(c) for c in tokens_to_cells(level[:50]))


def test_one_block_cells() -> None:
    cells = Space().one_block_cells()
    assert len(cells) == 136 == len(set(cells))
    assert all(c.num_blocks == 1 for c in cells)


def test_expand_many_parents_matches_per_cell_children() -> None:
    space = Space.from_names(["sep3x3", "identity", "max3x3"])
    rng = np.random.default_rng(0)
    parents = space.sample_tokens(3, 12, rng)
    parents = np.concatenate([parents, parents[:3]])  # duplicates are dropped
    kids, parent_index = space.expand(parents)
    uniq = unique_rows(parents)
    assert len(uniq) == len(kids) // space.blocks_per_position(4)
    for p, row in enumerate(uniq):
        expected = [c.tokens() for c in space.children(Cell.from_tokens(row))]
        np.testing.assert_array_equal(kids[parent_index == p], np.stack(expected))


def test_tokens_layout_and_texts() -> None:
    cell = parse(PNASNET5)
    t = cell.tokens()
    assert t.shape == (20,)
    # block 4 = (in1=1, in2=4, op1=max3x3, op2=sep3x3)
    assert t[12:16].tolist() == [1, 4, OPS.index("max3x3"), OPS.index("sep3x3")]
    arr = texts_to_tokens([PNASNET5, PNASNET5])
    assert tokens_to_texts(arr) == [PNASNET5, PNASNET5]
    space = Space()
    kids, _ = space.expand(space.sample_tokens(2, 5, np.random.default_rng(1)))
    assert tokens_to_texts(kids) == [c.text for c in tokens_to_cells(kids)]


def test_sample_is_seeded_and_in_space() -> None:
    space = Space.from_names(["sep3x3", "avg3x3"])
    a = space.sample_tokens(5, 40, np.random.default_rng(7))
    b = space.sample_tokens(5, 40, np.random.default_rng(7))
    np.testing.assert_array_equal(a, b)
    assert all(space.contains(c) for c in tokens_to_cells(a))


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("0:sep3x3,1:foo", "block 1 ('0:sep3x3,1:foo'): unknown op 'foo'"),
        ("0:sep3x3,1:sep5x5;0:sep3x3,3:identity", "block 2 ('0:sep3x3,3:identity'): input 3 out of range"),
        ("0:sep3x3;1:sep5x5", "block 1 ('0:sep3x3'): expected two halves"),
        ("0:sep3x3,1:sep5x5;x:sep3x3,1:identity", "block 2"),
        ("0-sep3x3,1:sep5x5", "block 1"),
        ("", "empty cell text"),
        (";".join([PNASNET5.split(";")[0]] * 6), "at most 5 blocks"),
    ],
)
def test_malformed_text_names_the_block(text: str, fragment: str) -> None:
    with pytest.raises(CellSyntaxError) as info:
        parse(text)
    assert fragment in str(info.value)
    assert isinstance(info.value, PnasError)


def test_restricted_space_rejects_foreign_ops() -> None:
    space = Space.from_names(["sep3x3", "identity"])
    with pytest.raises(PnasError, match="max3x3"):
        space.check(parse(PNASNET5))
    with pytest.raises(PnasError, match="unknown op 'conv9x9'"):
        Space.from_names(["conv9x9"])


def test_cell_id_is_stable() -> None:
    # The id is part of every cache key: changing it silently would orphan every cached result.
    assert cell_id(PNASNET5) == "58e7ccdd513023f3"
    ids = {c.id for c in Space().one_block_cells()}
    assert len(ids) == 136


def test_random_cells_are_valid() -> None:
    rnd = random.Random(3)
    space = Space()
    for _ in range(20):
        b = rnd.randint(1, 5)
        tokens = space.sample_tokens(b, 1, np.random.default_rng(rnd.randint(0, 10**6)))[0]
        cell = Cell.from_tokens(tokens)
        assert parse(cell.text) == cell
