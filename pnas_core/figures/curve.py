"""The final network's training curve: loss, training accuracy and learning rate per epoch."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from pnas_core.figures.style import figure_style, new_figure, percent_axis, save_figure


def draw_curve(out: Path, curve: pd.DataFrame, title: str) -> None:
    """``curve.png``/``.pdf``/``.csv`` in ``out`` from ``curve.parquet``'s frame (one row per epoch)."""
    with figure_style():
        fig = new_figure(7.5, 2.9)
        fig.suptitle(title, fontsize="medium")
        axes = fig.subplots(1, 3)
        for ax, column, label in zip(
            axes,
            ("loss", "train_acc", "lr"),
            ("training loss", "training accuracy", "learning rate"),
            strict=True,
        ):
            ax.plot(curve["epoch"], curve[column], color="#1f77b4")
            ax.set_xlabel("epoch")
            ax.set_title(label)
        percent_axis(axes[1].yaxis)
        save_figure(fig, out, "curve", curve)
