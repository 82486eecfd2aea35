"""Shared look and byte-stable output of every figure.

Figures are built on :class:`matplotlib.figure.Figure` directly (no pyplot, so no global figure
state and no interactive backend) under fixed rcParams, and saved with fixed dpi and without
timestamps, so a rerun on the same inputs writes byte-identical PNG and PDF files.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

import matplotlib
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.axis import Axis
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import PercentFormatter

from pnas_core import __version__
from pnas_core.io.atomic import atomic_path
from pnas_core.names import DEFAULT_PREDICTORS, PREDICTORS

DPI = 150
RC_PARAMS: dict[str, object] = {
    "font.family": "DejaVu Sans",
    "font.size": 9,
    "axes.titlesize": 9.5,
    "axes.labelsize": 9,
    "legend.fontsize": 8,
    "xtick.labelsize": 8,
    "ytick.labelsize": 8,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "grid.linewidth": 0.6,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "lines.linewidth": 1.6,
    "savefig.dpi": DPI,
    "savefig.bbox": "standard",
    "pdf.fonttype": 42,
    "svg.hashsalt": "pnas",
    "path.simplify": False,
}
"""Fixed rcParams applied while a figure is built and saved (independent of any matplotlibrc)."""

PREDICTOR_COLORS = {
    "score": "#d62728",
    "rnn": "#1f77b4",
    "mlp": "#ff7f0e",
    "xgb": "#2ca02c",
    "mean": "#444444",
    "gnn": "#9467bd",
    "weighted": "#8c564b",
}
PREDICTOR_LABELS = {
    "score": "selection score",
    "rnn": "RNN ensemble",
    "mlp": "MLP ensemble",
    "xgb": "XGBoost",
    "mean": "mean of predictors",
    "gnn": "graph encoder",
    "weighted": "rho-weighted families",
}
PLOT_PREDICTORS = (*DEFAULT_PREDICTORS, "mean", *(p for p in PREDICTORS if p not in DEFAULT_PREDICTORS))
"""Predictor names in plotting order (the ``pred_<name>`` columns of a summary)."""

METHOD_COLORS = {"PNAS": "#1f77b4", "random": "#ff7f0e"}
METHOD_LABELS = {"PNAS": "PNAS", "random": "random search"}

PNG_METADATA = {"Software": None}
PDF_METADATA = {"CreationDate": None, "ModDate": None, "Producer": f"pnas {__version__}", "Creator": None}


@contextlib.contextmanager
def figure_style() -> Iterator[None]:
    """Apply :data:`RC_PARAMS` on top of matplotlib's defaults for the duration of the block."""
    with matplotlib.rc_context():
        matplotlib.rcdefaults()
        matplotlib.rcParams.update(RC_PARAMS)
        yield


def new_figure(width: float, height: float) -> Figure:
    """A figure of ``width`` x ``height`` inches with an Agg canvas and constrained layout."""
    fig = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def percent_axis(*axes: Axis) -> None:
    """Show accuracy axes (fractions) in percent: 0.93 as 93%."""
    for axis in axes:
        axis.set_major_formatter(PercentFormatter(xmax=1.0, decimals=None))


def legend_below(fig: Figure, ax: Axes, max_cols: int = 5) -> None:
    """The legend of ``ax``'s lines under the figure's axes, outside the data (constrained layout
    makes room for it)."""
    handles, labels = ax.get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncols=max(1, min(len(labels), max_cols)))


def figure_paths(out_dir: str | Path, stem: str) -> list[Path]:
    """The files :func:`save_figure` writes: ``out_dir/stem.png``, ``.pdf`` and ``.csv``."""
    return [Path(out_dir) / f"{stem}.{ext}" for ext in ("png", "pdf", "csv")]


def save_figure(fig: Figure, out_dir: str | Path, stem: str, table: pd.DataFrame) -> list[Path]:
    """Write ``out_dir/stem.png``, ``.pdf`` and ``.csv`` (the plotted numbers), each atomically.

    PNG and PDF carry no timestamps or version strings that change between runs, so identical
    inputs give byte-identical files. Returns the three paths.
    """
    paths = figure_paths(out_dir, stem)
    with atomic_path(paths[0]) as tmp:
        fig.savefig(tmp, format="png", dpi=DPI, metadata=PNG_METADATA)
    with atomic_path(paths[1]) as tmp:
        fig.savefig(tmp, format="pdf", dpi=DPI, metadata=PDF_METADATA)
    with atomic_path(paths[2]) as tmp:
        table.to_csv(tmp, index=False, lineterminator="\n")
    return paths
