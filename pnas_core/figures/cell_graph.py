"""A cell drawn as a graph, like the paper's PNASNet-5 figure: the inputs H^{c-2} and H^{c-1} at the
bottom, each block as its two op boxes feeding a "+" node, and every block concatenated into H^{c}.

Blocks are stacked by depth (a block reading another block's output sits above it), so every edge
points upward. Matplotlib only.
"""

from __future__ import annotations

import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.patches import Circle, FancyBboxPatch

from pnas_core.figures.style import new_figure
from pnas_core.space.cells import OPS, Cell

OP_LABELS = {
    "sep3x3": "sep 3x3",
    "sep5x5": "sep 5x5",
    "sep7x7": "sep 7x7",
    "conv7x1": "conv 1x7+7x1",
    "identity": "identity",
    "avg3x3": "avg pool 3x3",
    "max3x3": "max pool 3x3",
    "dil3x3": "dil conv 3x3",
}
OP_COLORS = {
    "sep3x3": "#c6dbef",
    "sep5x5": "#9ecae1",
    "sep7x7": "#6baed6",
    "conv7x1": "#c7e9c0",
    "identity": "#eeeeee",
    "avg3x3": "#fdd0a2",
    "max3x3": "#fdae6b",
    "dil3x3": "#dadaeb",
}
INPUT_NAMES = ("H^{c-2}", "H^{c-1}")
EDGE_COLORS = ("#b2182b", "#2166ac", "#1b7837", "#762a83", "#8c510a", "#01665e", "#c51b7d")
"""Edge colour by source node: H^{c-2}, H^{c-1}, then blocks 1..5."""

BOX_W, BOX_H = 1.25, 0.5
BLOCK_W = 2 * BOX_W + 0.5
ROW_H = 2.3


def input_label(index: int) -> str:
    """Name of input ``index`` of a block: H^{c-2}, H^{c-1} or ``block j``."""
    return INPUT_NAMES[index] if index < 2 else f"block {index - 1}"


def block_depths(cell: Cell) -> list[int]:
    """Depth of each block: 1 + the deepest block it reads (the cell inputs have depth 0)."""
    depths: list[int] = []
    for bl in cell.blocks:
        depths.append(1 + max(depths[i - 2] if i >= 2 else 0 for i in (bl.in1, bl.in2)))
    return depths


def cell_table(cell: Cell) -> pd.DataFrame:
    """One row per block half: ``block``, ``half``, ``input`` (index), ``input_label``, ``op``, ``depth``."""
    depths = block_depths(cell)
    rows = [
        {
            "block": j,
            "half": h,
            "input": inp,
            "input_label": input_label(inp),
            "op": OPS[op],
            "depth": depths[j - 1],
        }
        for j, bl in enumerate(cell.blocks, start=1)
        for h, (inp, op) in enumerate(((bl.in1, bl.op1), (bl.in2, bl.op2)), start=1)
    ]
    return pd.DataFrame(rows)


def _block_x(cell: Cell, depths: list[int]) -> list[float]:
    """Horizontal centre of each block: one column per block, so no edge into the concatenation
    crosses another block. Depth-1 blocks in order, each block that reads other blocks placed right
    after the last block it reads."""
    after: dict[int, list[int]] = {}
    for j, bl in enumerate(cell.blocks):
        if depths[j] > 1:
            after.setdefault(max(bl.in1, bl.in2) - 2, []).append(j)
    columns: list[int] = []

    def place(j: int) -> None:
        columns.append(j)
        for k in after.get(j, []):
            place(k)

    for j in range(cell.num_blocks):
        if depths[j] == 1:
            place(j)
    xs = [0.0] * cell.num_blocks
    for col, j in enumerate(columns):
        xs[j] = (col - (len(columns) - 1) / 2) * BLOCK_W
    return xs


def _box(ax: Axes, x: float, y: float, w: float, h: float, text: str, color: str, **text_kw) -> None:
    ax.add_patch(
        FancyBboxPatch(
            (x - w / 2, y - h / 2),
            w,
            h,
            boxstyle="round,pad=0.02,rounding_size=0.08",
            facecolor=color,
            edgecolor="black",
            linewidth=0.8,
            zorder=3,
        )
    )
    ax.text(x, y, text, ha="center", va="center", zorder=4, **text_kw)


def _arrow(ax: Axes, start: tuple[float, float], end: tuple[float, float], color: str) -> None:
    ax.annotate(
        "",
        xy=end,
        xytext=start,
        zorder=2,
        arrowprops={
            "arrowstyle": "-|>",
            "color": color,
            "linewidth": 1.0,
            "shrinkA": 0,
            "shrinkB": 0,
            "mutation_scale": 8,
        },
    )


def cell_figure(cell: Cell, title: str) -> Figure:
    """The cell graph: inputs, op boxes, "+" nodes, concatenation and output; title above."""
    depths = block_depths(cell)
    xs = _block_x(cell, depths)
    top = max(depths)
    left = min(xs) - BLOCK_W / 2
    right = max(xs) + BLOCK_W / 2
    in_x = (
        (left + (right - left) * 0.3, left + (right - left) * 0.7) if right - left > BLOCK_W else (-1.0, 1.0)
    )
    op_y = [ROW_H * d - 1.3 for d in depths]
    plus_y = [ROW_H * d - 0.35 for d in depths]
    concat_y = ROW_H * top + 0.45
    out_y = concat_y + 0.9
    width_units = max(right - left, 4.0) + 0.6
    fig = new_figure(0.62 * width_units + 0.4, 0.62 * (out_y + 1.3) + 0.5)
    ax = fig.subplots()
    ax.set_axis_off()
    ax.set_aspect("equal")
    ax.set_xlim(min(left, -2.0) - 0.3, max(right, 2.0) + 0.3)
    ax.set_ylim(-0.6, out_y + 0.5)

    sources = {0: (in_x[0], 0.0 + BOX_H / 2), 1: (in_x[1], 0.0 + BOX_H / 2)}
    for i, name in enumerate(INPUT_NAMES):
        _box(ax, in_x[i], 0.0, 1.5, BOX_H, f"${name}$", "#ffffcc", fontsize=10)
    for j in range(cell.num_blocks):
        sources[j + 2] = (xs[j], plus_y[j] + 0.2)
    for j, bl in enumerate(cell.blocks):
        for k, (inp, op) in enumerate(((bl.in1, bl.op1), (bl.in2, bl.op2))):
            ox = xs[j] + (k - 0.5) * (BOX_W + 0.25)
            _arrow(ax, sources[inp], (ox, op_y[j] - BOX_H / 2), EDGE_COLORS[inp])
            _box(ax, ox, op_y[j], BOX_W, BOX_H, OP_LABELS[OPS[op]], OP_COLORS[OPS[op]], fontsize=7.5)
            _arrow(ax, (ox, op_y[j] + BOX_H / 2), (xs[j] + (k - 0.5) * 0.2, plus_y[j] - 0.2), "black")
        ax.add_patch(
            Circle((xs[j], plus_y[j]), 0.2, facecolor="white", edgecolor="black", linewidth=0.8, zorder=3)
        )
        ax.text(xs[j], plus_y[j], "+", ha="center", va="center", fontsize=10, zorder=4)
        ax.text(
            xs[j] + 0.28,
            plus_y[j],
            f"block {j + 1}",
            ha="left",
            va="center",
            fontsize=7,
            color="dimgrey",
            zorder=4,
        )
        _arrow(ax, sources[j + 2], (xs[j], concat_y - BOX_H / 2), EDGE_COLORS[j + 2])
    _box(
        ax, (left + right) / 2, concat_y, max(right - left - 0.4, 2.0), BOX_H, "concat", "#e5e5e5", fontsize=9
    )
    _arrow(ax, ((left + right) / 2, concat_y + BOX_H / 2), ((left + right) / 2, out_y - BOX_H / 2), "black")
    _box(ax, (left + right) / 2, out_y, 1.5, BOX_H, "$H^{c}$", "#ffffcc", fontsize=10)
    # the title is the user's text: shown as typed, never read as matplotlib's $...$ math markup
    ax.set_title(f"{title}\n{cell.text.replace(';', '; ')}", fontsize=8.5, parse_math=False)
    return fig
