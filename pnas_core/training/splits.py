"""Dataset splits and fingerprints shared by the dataset loaders (:mod:`pnas_core.training.data`,
:mod:`pnas_core.training.imagefolder`)."""

from __future__ import annotations

import hashlib

import numpy as np
import torch

from pnas_core.errors import PnasError


def fingerprint_arrays(name: str, arrays: list[torch.Tensor]) -> str:
    """``name-CxHxW-ntrain/nval/ntest-hash`` of (train_x, train_y, val_x, val_y, test_x, test_y)."""
    h = hashlib.sha256()
    for t in arrays:
        arr = np.ascontiguousarray(t.cpu().numpy())
        h.update(str((arr.dtype.str, arr.shape)).encode())
        h.update(arr.tobytes())
    c, hh, w = arrays[0].shape[1:]
    sizes = "/".join(str(len(t)) for t in arrays[1::2])
    return f"{name}-{c}x{hh}x{w}-{sizes}-{h.hexdigest()[:16]}"


def split_sizes(fingerprint: str) -> tuple[int, int, int]:
    """(train, validation, test) images of a dataset, read from its :func:`fingerprint_arrays`."""
    parts = fingerprint.split("-")
    try:
        sizes = tuple(int(n) for n in parts[-2].split("/"))
    except (IndexError, ValueError):
        sizes = ()
    if len(sizes) != 3:
        raise PnasError(f"dataset fingerprint {fingerprint!r} is not name-CxHxW-train/val/test-hash")
    return sizes  # type: ignore[return-value]


def stratified_split(y: np.ndarray, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices ``(keep, held_out)`` with about ``fraction`` of each class held out, both sorted."""
    from sklearn.model_selection import train_test_split

    idx = np.arange(len(y))
    try:
        keep, held = train_test_split(idx, test_size=fraction, random_state=seed, stratify=y)
    except ValueError as exc:
        raise PnasError(
            f"cannot split {len(y)} images into a stratified {fraction:g} fraction: {exc}"
        ) from exc
    return np.sort(keep), np.sort(held)
