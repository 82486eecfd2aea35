"""Image-folder datasets, decoded once in parallel into a memory-mapped cache shared by every job.

Layout: ``<root>/train/<class>/*.png|jpg`` plus optional ``<root>/val/...`` and ``<root>/test/...``
with the same class folders; labels are the class folders in sorted order (:func:`class_folders`). A
class folder without images is refused, naming it, as torchvision's ``ImageFolder`` refuses it (the
workflow refuses it when it parses the config, before any job runs).

The first job that loads a folder decodes every image (RGB, resized to ``image_size`` with Pillow's
bilinear filter; JPEGs are decoded at a reduced scale first with ``Image.draft``) on all allowed cores
into uint8 arrays (N, 3, H, W), one per final split, and stores them as ``.npy`` files with the labels,
the per-channel statistics and the dataset fingerprint. Every later load memory-maps those files
(copy-on-write), so a job reads only the pages it touches and the operating system shares them between
jobs on one machine. The cache entry's key hashes the absolute root, every image's relative path and the
SHA-256 of its bytes, the classes, ``image_size`` and the split settings: adding, removing or changing
an image makes a new entry, whatever its size and modification time say (reading and hashing the files
is the cost of a cached load, on all allowed cores: bench/RESULTS.md). Entries are written to a
temporary folder and renamed into place (a crashed build leaves nothing that is trusted; a full disk is
an error naming the folder); concurrent builders of one entry serialise on a lock file.

Where: ``$PNAS_IMAGE_CACHE`` if set, else ``<root>/.pnas-cache`` when ``root`` is writable, else
``~/.cache/pnas/imagefolder``. Old entries are not removed; delete the folder to reclaim the space.
"""

from __future__ import annotations

import hashlib
import json
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from pnas_core.devices import resolve_threads
from pnas_core.errors import PnasError
from pnas_core.io.atomic import FULL_DISK_ERRNOS, atomic_dir
from pnas_core.locks import locked
from pnas_core.training.splits import fingerprint_arrays, stratified_split

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
SPLITS = ("train", "val", "test")
CACHE_ENV = "PNAS_IMAGE_CACHE"
CACHE_FOLDER = ".pnas-cache"
CACHE_VERSION = 2
"""Bumped whenever decoding or the key changes (2: images keyed by their bytes); part of every key."""
ARRAY_NAMES = ("train_x", "train_y", "val_x", "val_y", "test_x", "test_y")


@dataclass(frozen=True)
class ImageFolderArrays:
    """The six split arrays (memory-mapped images, labels) of an image folder with what describes them."""

    arrays: tuple[np.ndarray, ...]
    """train_x, train_y, val_x, val_y, test_x, test_y; images uint8 (N, 3, H, W), labels int64."""
    classes: list[str]
    mean: list[float]
    std: list[float]
    fingerprint: str
    path: Path
    """The cache entry the arrays are mapped from."""


def has_images(folder: Path) -> bool:
    """Whether ``folder`` holds at least one .png/.jpg/.jpeg file (not recursive)."""
    return any(p.suffix.lower() in IMAGE_SUFFIXES and p.is_file() for p in folder.iterdir())


def split_classes(split_dir: Path) -> list[str]:
    """The class folders of one split folder, sorted; a class folder without images raises
    PnasError naming every such folder."""
    folders = sorted(p for p in split_dir.iterdir() if p.is_dir())
    empty = [p.name for p in folders if not has_images(p)]
    if empty:
        raise PnasError(
            f"imagefolder dataset: class folder(s) {', '.join(empty)} under {split_dir} hold no "
            ".png/.jpg images; add images or remove the folder(s)"
        )
    return [p.name for p in folders]


def class_folders(train_dir: Path) -> list[str]:
    """The class names of an image folder: its ``train/`` sub-folders, sorted (:func:`split_classes`:
    each must hold images); fewer than two classes raise PnasError."""
    if not train_dir.is_dir():
        raise PnasError(
            f"imagefolder dataset: {train_dir} not found (expected {train_dir.parent}/train/<class>/*.png|jpg)"
        )
    classes = split_classes(train_dir)
    if len(classes) < 2:
        raise PnasError(
            f"imagefolder dataset: {train_dir} needs at least two class folders with images, found {classes}"
        )
    return classes


def _list_split(folder: Path, classes: list[str]) -> list[tuple[str, int]]:
    """(image file, label) of one split folder, by class then name."""
    extra = sorted(set(split_classes(folder)) - set(classes))
    if extra:
        raise PnasError(f"imagefolder dataset: {folder} has class folders {extra} not in the train split")
    items = []
    for label, cls in enumerate(classes):
        if not (folder / cls).is_dir():
            continue
        with os.scandir(folder / cls) as it:
            names = sorted(
                e.name for e in it if os.path.splitext(e.name)[1].lower() in IMAGE_SUFFIXES and e.is_file()
            )
        items += [(os.path.join(folder, cls, name), label) for name in names]
    if not items:
        raise PnasError(f"imagefolder dataset: no .png/.jpg images under {folder}")
    return items


def file_digests(paths: list[str], threads: int | None = None) -> list[bytes]:
    """SHA-256 of each file's bytes, hashed on ``threads`` threads (default: the allowed cores; reading
    and hashing release the GIL), each taking a contiguous share of the files."""
    workers = max(1, min(resolve_threads(threads), len(paths)))
    share = -(-len(paths) // workers)

    def hash_share(start: int) -> list[bytes]:
        out = []
        for path in paths[start : start + share]:
            try:
                with open(path, "rb", buffering=0) as fh:  # one read of a whole image: the fastest way
                    out.append(hashlib.sha256(fh.read()).digest())
            except OSError as exc:
                raise PnasError(
                    f"imagefolder dataset: cannot read image {path}: {exc.strerror or exc}"
                ) from exc
        return out

    with ThreadPoolExecutor(max_workers=workers) as pool:
        return [d for part in pool.map(hash_share, range(0, len(paths), share)) for d in part]


def _cache_key(
    root: Path, listing: dict[str, list[tuple[str, int]]], settings: list, threads: int | None
) -> str:
    """The entry of these files and settings: a hash of every image's path, label and bytes."""
    h = hashlib.sha256(json.dumps([CACHE_VERSION, str(root), settings]).encode())
    skip = len(str(root)) + 1
    for split, items in listing.items():
        h.update(json.dumps([split, [(path[skip:], label) for path, label in items]]).encode())
        for digest in file_digests([path for path, _ in items], threads):
            h.update(digest)
    return h.hexdigest()[:24]


def cache_dir(root: Path) -> Path:
    """Where the cache entries of ``root`` live (see the module docstring)."""
    env = os.environ.get(CACHE_ENV, "").strip()
    if env:
        return Path(env)
    if os.access(root, os.W_OK):
        return root / CACHE_FOLDER
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "pnas" / "imagefolder"


def load_imagefolder(
    root: Path,
    image_size: int | None,
    val_fraction: float,
    test_fraction: float,
    split_seed: int,
    threads: int | None = None,
) -> ImageFolderArrays:
    """The image folder at ``root`` as memory-mapped split arrays, decoding it on first use.

    A missing val (test) split is split off the training images by ``val_fraction``
    (``test_fraction``), stratified with ``split_seed``. ``threads`` decoders run in parallel
    (default: the cores this process may use). Unreadable images are named in a PnasError.
    """
    root = Path(root).resolve()
    classes = class_folders(root / "train")
    listing = {s: _list_split(root / s, classes) for s in SPLITS if (root / s).is_dir()}
    key = _cache_key(root, listing, [classes, image_size, val_fraction, test_fraction, split_seed], threads)
    folder = cache_dir(root)
    entry = folder / key
    if not (entry / "meta.json").is_file():
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise PnasError(
                f"imagefolder dataset: cannot create cache folder {folder} ({exc}); set {CACHE_ENV}"
            ) from exc
        with locked(folder / f"{key}.lock"):
            if not (entry / "meta.json").is_file():
                parts = _final_splits(listing, val_fraction, test_fraction, split_seed)
                _build(entry, parts, classes, image_size, threads)
    return _open(entry)


def _final_splits(
    listing: dict[str, list[tuple[str, int]]],
    val_fraction: float,
    test_fraction: float,
    split_seed: int,
) -> dict[str, list[tuple[str, int]]]:
    """The files of the train, val and test splits, splitting missing ones off train (stratified)."""
    train = listing["train"]
    parts = {}
    for split, fraction, seed in (("test", test_fraction, split_seed), ("val", val_fraction, split_seed + 1)):
        if split in listing:
            parts[split] = listing[split]
        else:
            keep, held = stratified_split(np.asarray([item[1] for item in train]), fraction, seed)
            parts[split] = [train[i] for i in held]
            train = [train[i] for i in keep]
    return {"train": train, **parts}


def _decode(path: str, image_size: int | None) -> np.ndarray:
    """One image as uint8 (3, H, W), resized to ``image_size`` (bilinear) when given."""
    with Image.open(path) as im:
        if image_size is not None and im.format == "JPEG":
            im.draft("RGB", (image_size, image_size))  # DCT scaling: decode at >= image_size only
        im = im.convert("RGB")
        if image_size is not None:
            im = im.resize((image_size, image_size), Image.Resampling.BILINEAR)
        return np.asarray(im, dtype=np.uint8).transpose(2, 0, 1)


def _build(
    entry: Path,
    parts: dict[str, list[tuple[str, int]]],
    classes: list[str],
    image_size: int | None,
    threads: int | None,
) -> None:
    """Decode every split into ``.npy`` files in a temporary folder, then rename it to ``entry``."""
    first_path = parts["train"][0][0]
    try:
        shape = _decode(first_path, image_size).shape
    except Exception as exc:
        raise PnasError(f"imagefolder dataset: cannot read image {first_path}: {exc}") from exc
    with atomic_dir(entry) as tmp:
        _write_entry(tmp, parts, classes, shape, image_size, threads)


def _write_entry(
    tmp: Path,
    parts: dict[str, list[tuple[str, int]]],
    classes: list[str],
    shape: tuple[int, ...],
    image_size: int | None,
    threads: int | None,
) -> None:
    """Decode every split into ``tmp``: the arrays, the file lists and ``meta.json`` (written last)."""
    with ThreadPoolExecutor(max_workers=resolve_threads(threads)) as pool:
        for split, items in parts.items():
            _decode_split(pool, tmp / f"{split}_x.npy", [p for p, _ in items], shape, image_size)
            np.save(tmp / f"{split}_y.npy", np.asarray([y for _, y in items], dtype=np.int64))
    arrays = tuple(np.load(tmp / f"{name}.npy", mmap_mode="c") for name in ARRAY_NAMES)
    mean, std = channel_stats(arrays[0])
    meta = {
        "classes": classes,
        "mean": mean,
        "std": std,
        "fingerprint": _fingerprint(arrays),
    }
    (tmp / "files.json").write_text(json.dumps({s: [p for p, _ in items] for s, items in parts.items()}))
    (tmp / "meta.json").write_text(json.dumps(meta))
    del arrays


def _decode_split(
    pool: ThreadPoolExecutor, out: Path, files: list[str], shape: tuple[int, ...], image_size: int | None
) -> None:
    """Decode ``files`` into a new ``.npy`` file of uint8 images (len(files), *shape) on ``pool``."""
    x = np.lib.format.open_memmap(out, "w+", np.uint8, (len(files), *shape))
    reserve(out)
    bad = [m for m in pool.map(lambda i: _decode_into(x, i, files[i], image_size), range(len(files))) if m]
    if bad:
        more = f" and {len(bad) - 5} more" if len(bad) > 5 else ""
        raise PnasError(f"imagefolder dataset: {len(bad)} unreadable image(s): {'; '.join(bad[:5])}{more}")
    x.flush()


def reserve(path: Path) -> None:
    """Allocate every block of ``path`` now, so that filling its memory map on a full disk fails here
    with ENOSPC instead of killing the process with SIGBUS (file systems that cannot preallocate
    are left as they are)."""
    with open(path, "r+b") as fh:
        try:
            os.posix_fallocate(fh.fileno(), 0, os.fstat(fh.fileno()).st_size)
        except OSError as exc:
            if exc.errno in FULL_DISK_ERRNOS:
                raise


def _decode_into(x: np.ndarray, i: int, path: str, image_size: int | None) -> str:
    """Decode ``path`` into ``x[i]``; '' on success, else a description naming the file."""
    try:
        arr = _decode(path, image_size)
    except Exception as exc:
        return f"{path}: {type(exc).__name__}: {exc}"
    if arr.shape != x.shape[1:]:
        return (
            f"{path}: size {arr.shape[2]}x{arr.shape[1]}, others {x.shape[3]}x{x.shape[2]} (set image_size)"
        )
    x[i] = arr
    return ""


def channel_stats(x: np.ndarray, chunk: int = 4096) -> tuple[list[float], list[float]]:
    """Per-channel mean and unbiased std (clamped at 1) of uint8 images (N, C, H, W), in 0..255 units,
    computed in chunks so memory stays a chunk's worth."""
    n = x.shape[0] * x.shape[2] * x.shape[3]
    total = np.zeros(x.shape[1], dtype=np.int64)
    for i in range(0, len(x), chunk):
        total += x[i : i + chunk].sum(axis=(0, 2, 3), dtype=np.int64)
    mean = total / max(n, 1)
    sq = np.zeros(x.shape[1], dtype=np.float64)
    for i in range(0, len(x), chunk):
        d = x[i : i + chunk].astype(np.float64) - mean[None, :, None, None]
        sq += (d * d).sum(axis=(0, 2, 3))
    std = np.maximum(np.sqrt(sq / max(n - 1, 1)), 1.0)
    return [float(v) for v in mean], [float(v) for v in std]


def _fingerprint(arrays: tuple[np.ndarray, ...]) -> str:
    return fingerprint_arrays("imagefolder", [torch.from_numpy(a) for a in arrays])


def _open(entry: Path) -> ImageFolderArrays:
    """Memory-map a finished cache entry (copy-on-write: the files are never written)."""
    try:
        meta = json.loads((entry / "meta.json").read_text())
        arrays = tuple(np.load(entry / f"{name}.npy", mmap_mode="c") for name in ARRAY_NAMES)
    except (OSError, ValueError) as exc:
        raise PnasError(
            f"imagefolder cache entry {entry} is unreadable ({exc}); delete it to rebuild"
        ) from exc
    return ImageFolderArrays(arrays, meta["classes"], meta["mean"], meta["std"], meta["fingerprint"], entry)


@dataclass(frozen=True)
class FolderLayout:
    """What ``pnas init`` reads from an image folder: its classes, images per split and image size."""

    classes: list[str]
    images: dict[str, int]
    """Images per split folder present (train, and val, test when there)."""
    size: tuple[int, int]
    """(width, height) of the first training image."""


def folder_layout(root: Path) -> FolderLayout:
    """Check an image folder's layout as loading it does (:func:`class_folders`, the val and test
    class folders) and count its classes and images; the first training image gives the size."""
    root = Path(root)
    classes = class_folders(root / "train")
    listing = {s: _list_split(root / s, classes) for s in SPLITS if (root / s).is_dir()}
    first = listing["train"][0][0]
    try:
        with Image.open(first) as image:
            size = image.size
    except OSError as exc:
        raise PnasError(f"imagefolder dataset: cannot read image {first}: {exc}") from None
    return FolderLayout(classes, {s: len(items) for s, items in listing.items()}, size)
