"""Starter configs for a user's own image folder (``pnas init``): the layout checked as a run loads it,
the classes counted, the image size read, and a config at one of two scales.

``quick`` is the quick preset's search and training (``config/config.yaml``: B = 3, K = 32, four ops,
a small network for a few epochs; tests check the two agree) with images resized to at most
:data:`QUICK_MAX_SIZE` pixels; ``paper`` sets only the data and leaves every other key to the documented
defaults, which are the paper's (B = 5, K = 256, every op: over a thousand models).
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import yaml

from pnas_core.errors import PnasError
from pnas_core.io.atomic import write_text
from pnas_core.names import INIT_SCALES
from pnas_core.training.imagefolder import FolderLayout, folder_layout

QUICK_MAX_SIZE = 32
"""The quick scale's largest image side (pixels): larger images are resized down to it."""
QUICK = {
    "search": {
        "max_blocks": 3,
        "beam_size": 32,
        "train_shards": 2,
        "ops": ["sep3x3", "conv7x1", "identity", "max3x3"],
    },
    "quality": {"cells_per_size": 40, "train_size": 24, "repeats": 3},
    "train": {"cells_per_stack": 1, "filters": 8, "epochs": 4, "batch_size": 64, "lr": 0.05},
    "final": {"cells_per_stack": 2, "filters": 16, "epochs": 40, "batch_size": 64, "lr": 0.05},
}
"""The quick scale's keys: the quick preset's values (config/config.yaml)."""


def run_name(folder: Path) -> str:
    """A config ``name`` from a folder's name: its letters, digits, '.', '_' and '-' (others become '-')."""
    name = re.sub(r"[^A-Za-z0-9._-]", "-", folder.resolve().name).lstrip("._-")[:100]
    return name or "my-data"


def starter_config(root: Path, scale: str) -> tuple[dict[str, Any], FolderLayout]:
    """The starter config of the image folder ``root`` at ``scale``, and the folder's layout."""
    if scale not in INIT_SCALES:
        raise PnasError(f"unknown scale {scale!r}: choose {' or '.join(INIT_SCALES)}")
    layout = folder_layout(root)
    width, height = layout.size
    config: dict[str, Any] = {
        "name": run_name(root),
        "dataset": "imagefolder",
        "data_root": str(Path(root).resolve()),
        "train": {"image_size": max(width, height)},
    }
    if scale == "quick":
        config.update({k: dict(v) for k, v in QUICK.items()})
        config["train"]["image_size"] = min(max(width, height), QUICK_MAX_SIZE)
    return config, layout


def config_text(config: dict[str, Any], layout: FolderLayout, scale: str, path: Path) -> str:
    """The config as YAML under a header (comments: counts only, no text from the folder) saying what
    was read, what the scale means and how to run it."""
    images = ", ".join(f"{n} {split}" for split, n in layout.images.items())
    width, height = layout.size
    what = (
        "the quick preset's search (B = 3, K = 32, four ops: about 100 models, plus the baselines) and a small network"
        if scale == "quick"
        else "the paper's settings: every key left out takes its documented default (B = 5, K = 256, eight ops)"
    )
    header = [
        f"# Starter config written by `pnas init --scale {scale}` for an image folder with",
        f"# {len(layout.classes)} classes ({images} images), images {width}x{height} (the first one read).",
        f"# Scale {scale}: {what}.",
        "# Every key: config/README.md. Check it, then run (the run prints its plan first):",
        f"#   snakemake -n --configfile {path}",
        f"#   snakemake --cores 2 --configfile {path}",
    ]
    return "\n".join(header) + "\n" + yaml.safe_dump(config, sort_keys=False, default_flow_style=None)


def write_config(path: str | os.PathLike[str], text: str) -> None:
    """Write the config atomically; an existing file is refused (a starter config never replaces one)."""
    path = Path(path)
    if path.exists():
        raise PnasError(f"{path} exists; pass another --out or remove it (pnas init never overwrites)")
    write_text(path, text)
