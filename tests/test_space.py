"""The search space: canonical text, counts, expansion and tokens (docs/method.md, "The search space" to "Counts")."""

from __future__ import annotations

import itertools
import random

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pnas_core.errors import PnasError
from pnas_core.space.cells import (
    OPS,
    PNASNET5,
    Block,
    Cell,
    CellSyntaxError,
    Space,
    canonical_tokens,
    cell_id,
    orbit_sizes,
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
    assert [space.count_sequences(b) for b in range(1, 6)] == PAPER_COUNTS
    assert [space.blocks_per_position(b) for b in range(1, 6)] == [136, 300, 528, 820, 1176]
    assert [space.count_distinct(b) for b in (1, 2)] == [136, 31_620]
    with pytest.raises(PnasError, match="estimate_distinct"):
        space.count_distinct(4)


def all_sequences(space: Space, b: int) -> list[list[tuple[int, int, int, int]]]:
    """Every b-block sequence of the space as (in1, op1, in2, op2) blocks."""
    tables = [space.block_table(j) for j in range(1, b + 1)]
    return [
        [(int(r[0]), int(r[2]), int(r[1]), int(r[3])) for r in rows] for rows in itertools.product(*tables)
    ]


@pytest.mark.parametrize(
    ("ops", "b"), [(("sep3x3",), 3), (("sep3x3",), 4), (("identity", "max3x3"), 3), (("avg3x3",), 5)]
)
def test_distinct_counts_match_brute_force(ops: tuple[str, ...], b: int) -> None:
    space = Space.from_names(ops)
    seqs = all_sequences(space, b)
    assert len(seqs) == space.count_sequences(b)
    distinct = {brute_canonical(blocks) for blocks in seqs}
    assert space.count_distinct(b) == len(distinct)
    assert space.cap_to_distinct(b, 10**9) == len(distinct)
    assert space.cap_to_distinct(b, 3) == 3
    # Each cell's sequences sum to one under 1/|orbit|: the identity behind the estimate.
    orbits = orbit_sizes(np.array([[t for i1, o1, i2, o2 in blk for t in (i1, i2, o1, o2)] for blk in seqs]))
    assert np.isclose((1.0 / orbits).sum(), len(distinct))
    estimate, stderr = space.estimate_distinct(b, 4000, seed=1)
    assert 0 < stderr and abs(estimate - len(distinct)) < 5 * stderr


def test_sample_distinct_is_uniform_over_cells() -> None:
    from scipy.stats import chisquare

    space = Space.from_names(["sep3x3"])
    n_cells = space.count_distinct(2)
    every = space.sample_distinct(2, n_cells, np.random.default_rng(0))
    assert len(unique_rows(every)) == n_cells
    np.testing.assert_array_equal(canonical_tokens(every), every)
    with pytest.raises(PnasError, match=f"the space has {n_cells}"):
        space.sample_distinct(2, n_cells + 1, np.random.default_rng(0))
    rng = np.random.default_rng(1)
    draws = [tuple(space.sample_distinct(2, 1, rng)[0]) for _ in range(40 * n_cells)]
    counts = np.array([draws.count(tuple(row)) for row in every])
    assert chisquare(counts).pvalue > 1e-3
    # Drawing sequences uniformly instead favours cells with more block orders: the test can fail.
    seqs = [tuple(r) for r in canonical_tokens(space.sample_tokens(2, 40 * n_cells, rng))]
    assert chisquare(np.array([seqs.count(tuple(row)) for row in every])).pvalue < 1e-3


def test_space_count_cli(capsys: pytest.CaptureFixture[str]) -> None:
    from pnas_core.cli import main
    from pnas_core.cli.space_cmds import distinct_column

    assert main(["space", "count", "--blocks", "3"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[4].split()[-2:] == ["40,800", "31,620"]
    assert lines[5].split()[-2:] == ["21,542,400", "10,979,688"]
    assert distinct_column(Space(), 4, 500, 0).endswith("(estimate)")
    assert main(["space", "count", "--blocks", "4", "--ops", "sep3x3"]) == 0
    out = capsys.readouterr().out
    assert "estimate" not in out and out.splitlines()[6].split()[-1] == f"{Space((0,)).count_distinct(4):,}"


PNASNET5_PAPER_ORDER = (
    "0:sep5x5,0:max3x3;1:sep7x7,1:max3x3;1:sep3x3,1:sep5x5;1:max3x3,4:sep3x3;0:sep3x3,1:identity"
)


def test_pnasnet5_text_is_canonical_and_halves_swap() -> None:
    cell = parse(PNASNET5)
    assert cell.text == PNASNET5
    swapped = ";".join(",".join(reversed(block.split(","))) for block in PNASNET5.split(";"))
    assert swapped != PNASNET5
    assert parse(swapped) == cell
    assert parse(swapped).id == cell.id == cell_id(PNASNET5)
    assert cell.blocks[4] == Block(1, OPS.index("max3x3"), 4, OPS.index("sep3x3"))
    assert parse(PNASNET5_PAPER_ORDER) == cell  # the paper lists the blocks in another order


# --------------------------------------------------------------------------- canonical form, brute force


def relabel(i: int, position: dict[int, int]) -> int:
    """Input index i after the blocks moved to ``position`` (block k at position[k])."""
    return i if i < 2 else position[i - 2] + 2


def brute_canonical(blocks: list[tuple[int, int, int, int]]) -> tuple[tuple[int, int, int, int], ...]:
    """Smallest relabelled, half-sorted block sequence over every permutation that is topological."""
    b = len(blocks)
    best = None
    for perm in itertools.permutations(range(b)):
        position = {k: t for t, k in enumerate(perm)}
        if any(
            relabel(i, position) >= position[k] + 2 for k in range(b) for i in (blocks[k][0], blocks[k][2])
        ):
            continue
        seq = []
        for k in perm:
            i1, o1, i2, o2 = blocks[k]
            lo, hi = sorted([(relabel(i1, position), o1), (relabel(i2, position), o2)])
            seq.append((*lo, *hi))
        best = min(best, tuple(seq)) if best is not None else tuple(seq)
    assert best is not None
    return best


def brute_orbit(blocks: list[tuple[int, int, int, int]]) -> int:
    """Number of distinct half-sorted sequences spelling the cell (over its topological orders)."""
    canon = brute_canonical(blocks)
    seqs = set()
    for perm in itertools.permutations(range(len(blocks))):
        position = {k: t for t, k in enumerate(perm)}
        moved = []
        for k in perm:
            i1, o1, i2, o2 = blocks[k]
            moved.append((relabel(i1, position), o1, relabel(i2, position), o2))
        if all(i < t + 2 for t, (i1, _, i2, _) in enumerate(moved) for i in (i1, i2)):
            assert brute_canonical(moved) == canon
            seqs.add(tuple(tuple(sorted([(a, b), (c, d)])) for a, b, c, d in moved))
    return len(seqs)


def reorder(blocks: list[tuple[int, int, int, int]], seed: int) -> list[tuple[int, int, int, int]]:
    """The cell with its blocks in a random topological order (references relabelled)."""
    rnd, b = random.Random(seed), len(blocks)
    placed: list[int] = []
    while len(placed) < b:
        ready = [
            k
            for k in range(b)
            if k not in placed and all(i < 2 or i - 2 in placed for i in (blocks[k][0], blocks[k][2]))
        ]
        placed.append(rnd.choice(ready))
    position = {k: t for t, k in enumerate(placed)}
    return [
        (relabel(blocks[k][0], position), blocks[k][1], relabel(blocks[k][2], position), blocks[k][3])
        for k in placed
    ]


def as_blocks(cell: Cell) -> tuple[tuple[int, int, int, int], ...]:
    return tuple(tuple(block) for block in cell.blocks)  # type: ignore[misc]


@st.composite
def cells_with_twins(draw: st.DrawFn) -> list[tuple[int, int, int, int]]:
    """Cells over few ops and inputs biased to repeat, so equal blocks (ties) are common."""
    b = draw(st.integers(1, 5))
    blocks: list[tuple[int, int, int, int]] = []
    for j in range(1, b + 1):
        if blocks and draw(st.booleans()):
            i1, o1, i2, o2 = draw(st.sampled_from(blocks))
            if max(i1, i2) <= j:
                blocks.append((i1, o1, i2, o2))
                continue
        half = st.tuples(st.sampled_from(sorted({0, 1, j})), st.integers(0, 1))
        (i1, o1), (i2, o2) = draw(half), draw(half)
        blocks.append((i1, o1, i2, o2))
    return blocks


@given(st.one_of(raw_cells(), cells_with_twins()), st.integers(0, 10**6))
@settings(max_examples=300, deadline=None)
def test_canonical_form_is_the_smallest_topological_order(
    blocks: list[tuple[int, int, int, int]], seed: int
) -> None:
    expected = brute_canonical(blocks)
    cell = parse(raw_text(blocks))
    assert as_blocks(cell) == expected
    other = reorder(blocks, seed)
    assert parse(raw_text(other)) == cell
    assert parse(raw_text(other)).id == cell.id
    assert orbit_sizes(cell.tokens()[None, :])[0] == brute_orbit(blocks)


@pytest.mark.parametrize("b", [1, 2, 3, 4, 5])
def test_canonical_tokens_batch_matches_brute_force(b: int) -> None:
    rng = np.random.default_rng(b)
    space = Space.from_names(["sep3x3", "sep5x5"])  # two ops: many equal blocks, many ties
    tokens = np.concatenate([space.sample_tokens(b, 300, rng), Space().sample_tokens(b, 300, rng)])
    canon = canonical_tokens(tokens)
    for row, out in zip(tokens, canon, strict=True):
        blocks = [(int(r[0]), int(r[2]), int(r[1]), int(r[3])) for r in row.reshape(-1, 4)]
        assert as_blocks(Cell.from_tokens(out)) == brute_canonical(blocks)
    np.testing.assert_array_equal(canonical_tokens(canon), canon)


def test_which_twin_a_block_reads_matters() -> None:
    # Blocks 1 and 2 are identical. Block 3 reading both twins and block 3 reading one twin twice are
    # different networks, though the references differ only in which equal block they name.
    a = parse("0:sep5x5,1:sep5x5;0:sep5x5,1:sep5x5;2:sep5x5,3:sep5x5")
    b = parse("0:sep5x5,1:sep5x5;0:sep5x5,1:sep5x5;2:sep5x5,2:sep5x5")
    assert a != b and a.id != b.id
    # Reading the first twin or the second is the same cell (swap the twins).
    assert parse("0:sep5x5,1:sep5x5;0:sep5x5,1:sep5x5;3:sep5x5,3:sep5x5") == b
    # The tie of the brief: u, v identical, w reads u; the greedy must not place v first.
    c = parse("0:sep3x3,0:sep3x3;0:sep3x3,0:sep3x3;1:sep3x3,3:sep3x3")
    assert c.text == "0:sep3x3,0:sep3x3;0:sep3x3,0:sep3x3;1:sep3x3,2:sep3x3"
    assert parse("0:sep3x3,0:sep3x3;1:sep3x3,2:sep3x3;0:sep3x3,0:sep3x3") == c


def test_cell_constructor_refuses_non_canonical_block_order() -> None:
    cell = parse(PNASNET5)
    with pytest.raises(CellSyntaxError, match="not in canonical order"):
        Cell(tuple(reversed(cell.blocks[:2])))
    assert Cell(cell.blocks) == cell


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
    assert len(set(kids)) == len(kids) <= space.blocks_per_position(parent.num_blocks + 1)
    sequences, _ = space.expand(parent.tokens()[None, :])
    assert set(kids) == set(tokens_to_cells(sequences))
    for kid in kids:
        assert kid.num_blocks == parent.num_blocks + 1
        assert parse(kid.text) == kid


@given(st.lists(st.one_of(raw_cells(max_blocks=3), cells_with_twins()), min_size=1, max_size=6))
@settings(max_examples=30, deadline=None)
def test_canonical_children_fast_path_matches_canonical_tokens(
    cells: list[list[tuple[int, int, int, int]]],
) -> None:
    space = Space()
    by_size: dict[int, list[Cell]] = {}
    for blocks in cells:
        if len(blocks) < 5:
            by_size.setdefault(len(blocks), []).append(parse(raw_text(blocks)))
    for size_cells in by_size.values():
        raw = np.stack([c.tokens() for c in size_cells])
        kids, parent_index, appended = space.canonical_children(raw)
        parents = unique_rows(canonical_tokens(raw))
        sequences, seq_index = space.expand(parents)
        np.testing.assert_array_equal(kids, canonical_tokens(sequences))
        np.testing.assert_array_equal(parent_index, seq_index)
        b4 = parents.shape[1]
        np.testing.assert_array_equal(appended, (kids == sequences).all(axis=1))
        assert (kids[appended, :b4] == parents[parent_index[appended]]).all()


@pytest.mark.parametrize("ops", [("sep3x3",), ("identity", "max3x3"), ("sep5x5", "avg3x3", "dil3x3")])
def test_counts_match_enumeration_for_small_op_sets(ops: tuple[str, ...]) -> None:
    space = Space.from_names(ops, max_blocks=3)
    ids = space.ops
    for b in (1, 2, 3):
        halves = [(i, o) for i in range(b + 1) for o in ids]
        brute = {Block.make(i1, o1, i2, o2) for (i1, o1), (i2, o2) in itertools.product(halves, repeat=2)}
        assert len(brute) == space.blocks_per_position(b)
    level = space.one_block_tokens()
    assert len({tuple(r) for r in level}) == space.count_sequences(1)
    for b in (2, 3):
        level, _ = space.expand(level)
        assert len({tuple(r) for r in level}) == space.count_sequences(b)
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
    table = space.block_table(4)
    assert len(uniq) == len(kids) // len(table)
    for p, row in enumerate(uniq):
        mine = kids[parent_index == p]
        np.testing.assert_array_equal(mine, np.concatenate([np.tile(row, (len(table), 1)), table], 1))
        assert set(tokens_to_cells(mine)) == set(space.children(Cell.from_tokens(row)))


def test_tokens_layout_and_texts() -> None:
    cell = parse(PNASNET5)
    t = cell.tokens()
    assert t.shape == (20,)
    # block 5 = (in1=1, in2=4, op1=max3x3, op2=sep3x3)
    assert t[16:20].tolist() == [1, 4, OPS.index("max3x3"), OPS.index("sep3x3")]
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
    assert cell_id(PNASNET5) == "76c94ce450dbd5be"
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
