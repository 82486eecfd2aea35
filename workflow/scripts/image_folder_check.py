"""Parse-time check of an image folder: its class folders each hold an image (directory listings
only: no image is opened, nothing of pnas_core or torch is imported), so an empty class folder is
refused by the dry run, as ``pnas_core.training.imagefolder`` refuses it in the first job."""

from __future__ import annotations

import os
from pathlib import Path

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
"""pnas_core.training.imagefolder.IMAGE_SUFFIXES (tests/test_workflow.py checks that they agree)."""
SPLITS = ("train", "val", "test")


def holds_an_image(folder: Path) -> bool:
    """Whether ``folder`` holds an image file (stops at the first one)."""
    with os.scandir(folder) as entries:
        return any(os.path.splitext(e.name)[1].lower() in IMAGE_SUFFIXES and e.is_file() for e in entries)


def empty_class_folders(root: Path) -> list[Path]:
    """The class folders under ``root``'s train, val and test folders that hold no image."""
    empty = []
    for split in SPLITS:
        if (root / split).is_dir():
            folders = sorted(p for p in (root / split).iterdir() if p.is_dir())
            empty += [p for p in folders if not holds_an_image(p)]
    return empty
