"""The PNAS cell search space (SPEC §1): ops, blocks, cells, canonical text, counts and expansion.

Needs only numpy, so the CLI and every workflow job import it fast.

Token layout (the paper's RNN order): a cell of b blocks is an int array of length 4·b holding
``in1, in2, op1, op2`` for each block, blocks in order, each block in canonical order
(``(in1, op1) <= (in2, op2)``, input index first, then op id).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import NamedTuple

import numpy as np

from pnas_core.errors import PnasError

OPS: tuple[str, ...] = (
    "sep3x3",
    "sep5x5",
    "sep7x7",
    "conv7x1",
    "identity",
    "avg3x3",
    "max3x3",
    "dil3x3",
)
"""Op names in id order; the index is the op's id in every encoding."""

OP_IDS: dict[str, int] = {name: i for i, name in enumerate(OPS)}
MAX_BLOCKS = 5
TOKEN_DTYPE = np.int8

PNASNET5 = "0:sep5x5,0:max3x3;1:sep7x7,1:max3x3;1:sep3x3,1:sep5x5;1:max3x3,4:sep3x3;0:sep3x3,1:identity"
"""Canonical text of PNASNet-5, the paper's best cell."""


class CellSyntaxError(PnasError, ValueError):
    """Malformed cell text or tokens; the message names the offending block."""


class Block(NamedTuple):
    """One block: ``op1(in1) + op2(in2)``, stored in canonical order."""

    in1: int
    op1: int
    in2: int
    op2: int

    @classmethod
    def make(cls, in1: int, op1: int, in2: int, op2: int) -> Block:
        """Build a block with its halves put in canonical order."""
        if (in1, op1) <= (in2, op2):
            return cls(in1, op1, in2, op2)
        return cls(in2, op2, in1, op1)

    @property
    def text(self) -> str:
        """``IN1:OP1,IN2:OP2``."""
        return f"{self.in1}:{OPS[self.op1]},{self.in2}:{OPS[self.op2]}"


@dataclass(frozen=True)
class Cell:
    """An immutable, hashable cell: a sequence of canonical blocks."""

    blocks: tuple[Block, ...]

    def __post_init__(self) -> None:
        if not 1 <= len(self.blocks) <= MAX_BLOCKS:
            raise CellSyntaxError(f"a cell has 1 to {MAX_BLOCKS} blocks, got {len(self.blocks)}")
        for b, block in enumerate(self.blocks, start=1):
            _check_block(block, b, block.text)
            if block != Block.make(*block):
                raise CellSyntaxError(f"block {b} ({block.text!r}) is not in canonical order")

    @classmethod
    def parse(cls, text: str) -> Cell:
        """Parse cell text in any half order; see :func:`parse`."""
        return parse(text)

    @property
    def num_blocks(self) -> int:
        return len(self.blocks)

    @cached_property
    def text(self) -> str:
        """The canonical text of SPEC §1."""
        return ";".join(block.text for block in self.blocks)

    @property
    def id(self) -> str:
        """Stable id: the first 16 hex digits of the SHA-256 of the canonical text."""
        return cell_id(self.text)

    def tokens(self) -> np.ndarray:
        """Token array of length 4·b (in1, in2, op1, op2 per block)."""
        return np.array(
            [t for bl in self.blocks for t in (bl.in1, bl.in2, bl.op1, bl.op2)], dtype=TOKEN_DTYPE
        )

    @classmethod
    def from_tokens(cls, tokens: Sequence[int] | np.ndarray) -> Cell:
        """Inverse of :meth:`tokens`; halves are canonicalised."""
        t = [int(x) for x in np.asarray(tokens).ravel()]
        if len(t) == 0 or len(t) % 4:
            raise CellSyntaxError(f"a token sequence has 4 per block, got {len(t)} tokens")
        blocks = []
        for b in range(len(t) // 4):
            in1, in2, op1, op2 = t[4 * b : 4 * b + 4]
            raw = f"{in1}:{op1},{in2}:{op2} (tokens)"
            _check_block(Block(in1, op1, in2, op2), b + 1, raw)
            blocks.append(Block.make(in1, op1, in2, op2))
        return cls(tuple(blocks))

    def __str__(self) -> str:
        return self.text


def cell_id(text: str) -> str:
    """Stable id of a canonical cell text (16 hex digits of SHA-256)."""
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _check_block(block: Block, b: int, raw: str) -> None:
    for inp in (block.in1, block.in2):
        if not 0 <= inp <= b:
            raise CellSyntaxError(
                f"block {b} ({raw!r}): input {inp} out of range (block {b} may read 0..{b})"
            )
    for op in (block.op1, block.op2):
        if not 0 <= op < len(OPS):
            raise CellSyntaxError(f"block {b} ({raw!r}): op id {op} out of range 0..{len(OPS) - 1}")


def _parse_half(half: str, b: int, raw: str) -> tuple[int, int]:
    parts = half.split(":")
    if len(parts) != 2:
        raise CellSyntaxError(f"block {b} ({raw!r}): expected 'IN:OP', got {half.strip()!r}")
    inp_text, op_text = parts[0].strip(), parts[1].strip()
    if not (inp_text.isascii() and inp_text.isdigit()):  # str.isdigit alone takes '٣'
        raise CellSyntaxError(f"block {b} ({raw!r}): input {inp_text!r} is not a non-negative integer")
    if op_text not in OP_IDS:
        raise CellSyntaxError(f"block {b} ({raw!r}): unknown op {op_text!r} (known: {', '.join(OPS)})")
    return int(inp_text), OP_IDS[op_text]


def parse(text: str) -> Cell:
    """Parse ``IN1:OP1,IN2:OP2;...`` (halves in any order) into a canonical :class:`Cell`.

    Raises :class:`CellSyntaxError` naming the offending block.
    """
    if not isinstance(text, str) or not text.strip():
        raise CellSyntaxError("empty cell text")
    raw_blocks = text.strip().split(";")
    if len(raw_blocks) > MAX_BLOCKS:
        raise CellSyntaxError(f"a cell has at most {MAX_BLOCKS} blocks, got {len(raw_blocks)}")
    blocks = []
    for b, raw in enumerate(raw_blocks, start=1):
        halves = raw.split(",")
        if len(halves) != 2:
            raise CellSyntaxError(f"block {b} ({raw!r}): expected two halves 'IN1:OP1,IN2:OP2'")
        (in1, op1), (in2, op2) = (_parse_half(h, b, raw) for h in halves)
        _check_block(Block(in1, op1, in2, op2), b, raw)
        blocks.append(Block.make(in1, op1, in2, op2))
    return Cell(tuple(blocks))


def format_cell(cell: Cell) -> str:
    """Canonical text of a cell."""
    return cell.text


def canonical(text: str) -> str:
    """Canonical text of any valid cell text."""
    return parse(text).text


# --------------------------------------------------------------------------- the space


def ops_from_names(names: Iterable[str]) -> tuple[int, ...]:
    """Sorted op ids for op names; unknown names raise an error naming them."""
    ids = []
    for name in names:
        if name not in OP_IDS:
            raise PnasError(f"unknown op {name!r} (known: {', '.join(OPS)})")
        ids.append(OP_IDS[name])
    if not ids:
        raise PnasError("the op set is empty")
    return tuple(sorted(set(ids)))


@dataclass(frozen=True)
class Space:
    """The cells over an op subset (ids keep their global meaning)."""

    ops: tuple[int, ...] = tuple(range(len(OPS)))
    max_blocks: int = MAX_BLOCKS

    def __post_init__(self) -> None:
        if (
            not self.ops
            or any(not 0 <= o < len(OPS) for o in self.ops)
            or len(set(self.ops)) != len(self.ops)
        ):
            raise PnasError(f"invalid op id set {self.ops!r}")
        if not 1 <= self.max_blocks <= MAX_BLOCKS:
            raise PnasError(f"max_blocks must be in 1..{MAX_BLOCKS}, got {self.max_blocks}")
        object.__setattr__(self, "ops", tuple(sorted(self.ops)))

    @classmethod
    def from_names(cls, names: Iterable[str] | None = None, max_blocks: int = MAX_BLOCKS) -> Space:
        """Space over the named ops (all eight if ``names`` is None)."""
        return cls(tuple(range(len(OPS))) if names is None else ops_from_names(names), max_blocks)

    @property
    def op_names(self) -> tuple[str, ...]:
        return tuple(OPS[o] for o in self.ops)

    def halves_per_block(self, b: int) -> int:
        """n = (b+1)·|ops|: choices for one half of block b."""
        return (b + 1) * len(self.ops)

    def blocks_per_position(self, b: int) -> int:
        """Distinct canonical blocks at position b: n(n+1)/2."""
        n = self.halves_per_block(b)
        return n * (n + 1) // 2

    def count_cells(self, b: int) -> int:
        """Distinct cells of exactly b blocks (Python int, exact)."""
        total = 1
        for j in range(1, b + 1):
            total *= self.blocks_per_position(j)
        return total

    def block_table(self, b: int) -> np.ndarray:
        """All canonical blocks at position b as an int8 array (m, 4) of (in1, in2, op1, op2),
        ordered by (in1, op1, in2, op2)."""
        return _block_table(self.ops, b)

    def contains(self, cell: Cell) -> bool:
        """Whether every op of the cell is in this space and its size fits."""
        allowed = set(self.ops)
        return cell.num_blocks <= self.max_blocks and all(
            bl.op1 in allowed and bl.op2 in allowed for bl in cell.blocks
        )

    def check(self, cell: Cell) -> Cell:
        """Return ``cell`` or raise an error naming the op or size outside this space."""
        allowed = set(self.ops)
        if cell.num_blocks > self.max_blocks:
            raise PnasError(
                f"cell {cell.text!r} has {cell.num_blocks} blocks; this space allows {self.max_blocks}"
            )
        for b, bl in enumerate(cell.blocks, start=1):
            for op in (bl.op1, bl.op2):
                if op not in allowed:
                    raise PnasError(
                        f"block {b} ({bl.text!r}) of cell {cell.text!r} uses op {OPS[op]!r}, "
                        f"not in this search space ({', '.join(self.op_names)})"
                    )
        return cell

    def one_block_tokens(self) -> np.ndarray:
        """Tokens of all 1-block cells, shape (m, 4)."""
        return self.block_table(1).copy()

    def one_block_cells(self) -> list[Cell]:
        """All 1-block cells (136 with all eight ops)."""
        return tokens_to_cells(self.one_block_tokens())

    def expand(self, parents: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """All children of equal-size parents (tokens (P, 4b)), vectorised.

        Duplicate parents are dropped first (children of distinct parents are distinct).
        Returns ``(children (P·m, 4(b+1)), parent_index (P·m,))``: the children of parent p
        are the rows ``p·m .. p·m+m-1`` in block-table order, ``parent_index`` indexing the
        deduplicated parents as returned by :func:`unique_rows`.
        """
        parents = np.asarray(parents, dtype=TOKEN_DTYPE)
        if parents.ndim != 2 or parents.shape[1] % 4 or parents.shape[1] == 0:
            raise PnasError(f"parents must be a token array of shape (P, 4·b), got {parents.shape}")
        b = parents.shape[1] // 4
        if b + 1 > self.max_blocks:
            raise PnasError(f"cannot expand {b}-block cells: this space allows {self.max_blocks} blocks")
        parents = unique_rows(parents)
        table = self.block_table(b + 1)
        p, m = len(parents), len(table)
        children = np.empty((p * m, 4 * (b + 1)), dtype=TOKEN_DTYPE)
        children[:, : 4 * b] = np.repeat(parents, m, axis=0)
        children[:, 4 * b :] = np.tile(table, (p, 1))
        return children, np.repeat(np.arange(p), m)

    def children(self, cell: Cell) -> list[Cell]:
        """All children of one cell (one more block), canonical and distinct."""
        kids, _ = self.expand(cell.tokens()[None, :])
        return tokens_to_cells(kids)

    def sample_tokens(self, b: int, n: int, rng: np.random.Generator) -> np.ndarray:
        """n cells of b blocks drawn uniformly from this space (with replacement)."""
        if not 1 <= b <= self.max_blocks:
            raise PnasError(f"cannot sample {b}-block cells from a space of at most {self.max_blocks} blocks")
        out = np.empty((n, 4 * b), dtype=TOKEN_DTYPE)
        for j in range(1, b + 1):
            table = self.block_table(j)
            out[:, 4 * (j - 1) : 4 * j] = table[rng.integers(0, len(table), size=n)]
        return out


_TABLE_CACHE: dict[tuple[tuple[int, ...], int], np.ndarray] = {}


def _block_table(ops: tuple[int, ...], b: int) -> np.ndarray:
    key = (ops, b)
    if key not in _TABLE_CACHE:
        halves = [(i, o) for i in range(b + 1) for o in ops]  # sorted by (input, op)
        rows = [
            (halves[x][0], halves[y][0], halves[x][1], halves[y][1])
            for x in range(len(halves))
            for y in range(x, len(halves))
        ]
        table = np.array(rows, dtype=TOKEN_DTYPE)
        table.setflags(write=False)
        _TABLE_CACHE[key] = table
    return _TABLE_CACHE[key]


def unique_rows(tokens: np.ndarray) -> np.ndarray:
    """Distinct rows of a token array, first occurrence kept, order preserved."""
    tokens = np.ascontiguousarray(tokens)
    if len(tokens) == 0:
        return tokens
    view = tokens.view(np.dtype((np.void, tokens.dtype.itemsize * tokens.shape[1]))).ravel()
    _, first = np.unique(view, return_index=True)
    return tokens[np.sort(first)]


# --------------------------------------------------------------------------- tokens


def cells_to_tokens(cells: Sequence[Cell]) -> np.ndarray:
    """Token array (n, 4·b) of equal-size cells."""
    if not cells:
        raise PnasError("no cells to encode")
    sizes = {c.num_blocks for c in cells}
    if len(sizes) != 1:
        raise PnasError(f"cells_to_tokens needs cells of one size, got sizes {sorted(sizes)}")
    return np.stack([c.tokens() for c in cells])


def tokens_to_cells(tokens: np.ndarray) -> list[Cell]:
    """Inverse of :func:`cells_to_tokens`."""
    return [Cell.from_tokens(row) for row in np.asarray(tokens)]


def texts_to_tokens(texts: Sequence[str]) -> np.ndarray:
    """Token array of equal-size cells given as text (any half order)."""
    return cells_to_tokens([parse(t) for t in texts])


def tokens_to_texts(tokens: np.ndarray) -> list[str]:
    """Canonical texts of canonical token rows, vectorised through per-block lookup tables."""
    tokens = np.asarray(tokens)
    if tokens.ndim != 2 or tokens.shape[1] % 4 or tokens.shape[1] == 0:
        raise PnasError(f"expected a token array of shape (n, 4·b), got {tokens.shape}")
    n_ops = len(OPS)
    half_names = np.array(
        [f"{i}:{OPS[o]}" for i in range(MAX_BLOCKS + 1) for o in range(n_ops)], dtype=object
    )
    parts = []
    for j in range(tokens.shape[1] // 4):
        t = tokens[:, 4 * j : 4 * j + 4].astype(np.int64)
        left = half_names[t[:, 0] * n_ops + t[:, 2]]
        right = half_names[t[:, 1] * n_ops + t[:, 3]]
        parts.append(left + "," + right)
    out = parts[0]
    for p in parts[1:]:
        out = out + ";" + p
    return list(out)


def num_blocks_of(text: str) -> int:
    """Number of blocks in a cell text (no full parse)."""
    return text.count(";") + 1
