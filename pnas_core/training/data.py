"""Datasets as whole uint8 tensors with fixed, seeded, stratified splits, and batch-wise augmentation.

Every dataset gives three disjoint splits held in memory as ``uint8`` tensors of shape (N, C, H, W)
plus ``int64`` labels: ``train`` (the search trains on it), ``val`` (the search scores on it) and
``test`` (the search never touches it). Splits depend only on the data and ``split_seed``.

Supported datasets (:data:`DATASETS`):

- ``digits``: scikit-learn's ``load_digits`` (1,797 real 8x8 grey digits, shipped with scikit-learn).
  Pixel values 0..16 are scaled to 0..255. Test = ``test_fraction`` (default 20%) of all images, val =
  ``val_fraction`` of the rest, both stratified by class. Horizontal flips are off (they change a
  digit's meaning).
- ``cifar10``: the python pickles of CIFAR-10 under ``<root>/cifar-10-batches-py/`` (``data_batch_1..5``,
  ``test_batch``), read directly; ``download=True`` fetches and md5-checks them through torchvision
  first. Val = ``val_fraction`` (default 10%: the paper's 45,000/5,000) of the 50,000 training images,
  stratified; test = the official 10,000 test images.
- ``imagefolder``: ``<root>/train/<class>/*.png|jpg`` plus optional ``<root>/val/...`` and
  ``<root>/test/...`` with the same class folders; a missing val (test) split is split off the
  training images by ``val_fraction`` (``test_fraction``), stratified. Images are read as RGB, decoded
  once (in parallel, at ``image_size``) into a cache, found by the images' bytes, that every later load
  memory-maps; a class folder without images is refused (:mod:`pnas_core.training.imagefolder`).

``image_size`` resizes every split to a square size (bilinear); ``None`` keeps the native size.
The :attr:`DataSplits.fingerprint` (name, shape, split sizes and a content hash of every array) goes
into every training record and cache key.
"""

from __future__ import annotations

import pickle
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from pnas_core.errors import PnasError
from pnas_core.training.imagefolder import IMAGE_SUFFIXES as IMAGE_SUFFIXES  # re-exported for model_io
from pnas_core.training.imagefolder import load_imagefolder
from pnas_core.training.splits import fingerprint_arrays as fingerprint_arrays  # re-exported
from pnas_core.training.splits import stratified_split as stratified_split  # re-exported

DATASETS = ("digits", "cifar10", "imagefolder")
CIFAR_FOLDER = "cifar-10-batches-py"
CIFAR_TRAIN_FILES = tuple(f"data_batch_{i}" for i in range(1, 6))
CIFAR_TEST_FILE = "test_batch"


@dataclass(frozen=True)
class DataSplits:
    """Three disjoint splits of one dataset, uint8 images (N, C, H, W) and int64 labels (N,)."""

    name: str
    train_x: torch.Tensor
    train_y: torch.Tensor
    val_x: torch.Tensor
    val_y: torch.Tensor
    test_x: torch.Tensor
    test_y: torch.Tensor
    num_classes: int
    allow_flip: bool
    fingerprint: str
    """``name-CxHxW-train/val/test-hash``: identifies the exact arrays the search sees."""
    stats: tuple[list[float], list[float]] | None = None
    """Precomputed (mean, std) per channel (image folders: computed once, in chunks, when cached)."""

    @property
    def image_shape(self) -> tuple[int, int, int]:
        """(C, H, W) of every image."""
        c, h, w = self.train_x.shape[1:]
        return int(c), int(h), int(w)

    @property
    def sizes(self) -> tuple[int, int, int]:
        """Number of train, val and test images."""
        return len(self.train_y), len(self.val_y), len(self.test_y)

    def channel_stats(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-channel mean and std of the training images, in 0..255 units (float32, shape (C,))."""
        if self.stats is not None:
            return torch.tensor(self.stats[0]), torch.tensor(self.stats[1])
        x = self.train_x.to(torch.float64)
        mean = x.mean(dim=(0, 2, 3))
        std = x.std(dim=(0, 2, 3)).clamp_min(1.0)
        return mean.to(torch.float32), std.to(torch.float32)


def load_dataset(
    name: str,
    root: str | Path = "data",
    image_size: int | None = None,
    val_fraction: float = 0.1,
    test_fraction: float = 0.2,
    split_seed: int = 0,
    download: bool = False,
) -> DataSplits:
    """Load ``name`` (one of :data:`DATASETS`) with its fixed splits; see the module docstring.

    Results are memoised per argument tuple, so a shard that trains many candidates loads once.
    """
    key = (name, str(root), image_size, float(val_fraction), float(test_fraction), int(split_seed), download)
    if key not in _LOADED:
        _LOADED.clear()  # keep at most one dataset in memory
        _LOADED[key] = _load(name, Path(root), image_size, val_fraction, test_fraction, split_seed, download)
    return _LOADED[key]


_LOADED: dict[tuple, DataSplits] = {}


def _load(
    name: str,
    root: Path,
    image_size: int | None,
    val_fraction: float,
    test_fraction: float,
    split_seed: int,
    download: bool,
) -> DataSplits:
    if name not in DATASETS:
        raise PnasError(f"unknown dataset {name!r} (known: {', '.join(DATASETS)})")
    for key, frac in (("val_fraction", val_fraction), ("test_fraction", test_fraction)):
        if not 0.0 < frac < 1.0:
            raise PnasError(f"{key} must be in (0, 1), got {frac}")
    if image_size is not None and image_size < 4:
        raise PnasError(f"image_size must be at least 4 (or null for native size), got {image_size}")
    if name == "digits":
        x, y = _digits_arrays()
        rest, test = stratified_split(y, test_fraction, split_seed)
        train, val = stratified_split(y[rest], val_fraction, split_seed + 1)
        parts = (x[rest][train], y[rest][train], x[rest][val], y[rest][val], x[test], y[test])
        allow_flip, num_classes = False, 10
    elif name == "cifar10":
        x, y, tx, ty = _cifar10_arrays(root, download)
        train, val = stratified_split(y, val_fraction, split_seed)
        parts = (x[train], y[train], x[val], y[val], tx, ty)
        allow_flip, num_classes = True, 10
    else:
        folder = load_imagefolder(root, image_size, val_fraction, test_fraction, split_seed)
        tensors = [torch.from_numpy(a) for a in folder.arrays]
        stats = (folder.mean, folder.std)
        return DataSplits(name, *tensors, len(folder.classes), True, folder.fingerprint, stats)
    tensors = [torch.from_numpy(np.ascontiguousarray(a)) for a in parts]
    if image_size is not None:
        for i in (0, 2, 4):
            tensors[i] = resize_uint8(tensors[i], image_size)
    fingerprint = fingerprint_arrays(name, tensors)
    return DataSplits(name, *tensors, num_classes=num_classes, allow_flip=allow_flip, fingerprint=fingerprint)


def resize_uint8(x: torch.Tensor, size: int | tuple[int, int]) -> torch.Tensor:
    """Bilinear resize of uint8 images (N, C, H, W) to (N, C, size, size) (or ``size=(h, w)``), rounded
    back to uint8."""
    hw = (size, size) if isinstance(size, int) else tuple(size)
    if tuple(x.shape[2:]) == hw or len(x) == 0:
        return x
    out = F.interpolate(x.float(), size=hw, mode="bilinear", align_corners=False, antialias=True)
    return out.round_().clamp_(0, 255).to(torch.uint8)


def _digits_arrays() -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits

    d = load_digits()
    x = np.rint(d.images * (255.0 / 16.0)).astype(np.uint8)[:, None, :, :]
    return x, d.target.astype(np.int64)


def _cifar10_arrays(root: Path, download: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    folder = root / CIFAR_FOLDER
    if download:
        from torchvision.datasets import CIFAR10

        try:
            CIFAR10(str(root), train=True, download=True)
        except Exception as exc:
            raise PnasError(f"could not download CIFAR-10 into {root}: {exc}") from exc
    expected = (*CIFAR_TRAIN_FILES, CIFAR_TEST_FILE)
    missing = [f for f in expected if not (folder / f).is_file()]
    if missing:
        raise PnasError(
            f"CIFAR-10 not found or incomplete: folder {folder} lacks {', '.join(missing)} (expected "
            f"{CIFAR_FOLDER}/data_batch_1..5 and test_batch, the python version of CIFAR-10; set "
            f"data_root to the folder holding {CIFAR_FOLDER}, or download=true)"
        )
    xs, ys = zip(*(_read_cifar_batch(folder / f) for f in CIFAR_TRAIN_FILES), strict=True)
    tx, ty = _read_cifar_batch(folder / CIFAR_TEST_FILE)
    return np.concatenate(xs), np.concatenate(ys), tx, ty


def _read_cifar_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    try:
        with open(path, "rb") as fh:
            entry = pickle.load(fh, encoding="latin1")
        data = np.asarray(entry["data"], dtype=np.uint8).reshape(-1, 3, 32, 32)
        labels = np.asarray(entry["labels"], dtype=np.int64)
    except Exception as exc:
        raise PnasError(f"corrupt CIFAR-10 batch file {path}: {type(exc).__name__}: {exc}") from exc
    if len(data) != len(labels) or (len(labels) and not 0 <= labels.min() <= labels.max() < 10):
        raise PnasError(f"corrupt CIFAR-10 batch file {path}: {len(data)} images but {len(labels)} labels")
    return data, labels


# --------------------------------------------------------------------------- batch pipeline


def crop_padding(image_size: int) -> int:
    """Padding for random crops: 4 pixels at 32x32 (the usual CIFAR setting), scaled with size, >= 1."""
    return max(1, round(image_size / 8))


def augment_batch(x: torch.Tensor, generator: torch.Generator, padding: int, flip: bool) -> torch.Tensor:
    """Random crop with zero padding and (if ``flip``) random horizontal flip of a uint8 batch.

    Vectorised over the batch (no per-sample Python loop); runs on ``x``'s device; deterministic
    for a given generator state. Returns a new uint8 tensor of the same shape.
    """
    n, _, h, w = x.shape
    dev = x.device
    if padding > 0:
        padded = F.pad(x, (padding, padding, padding, padding))
        shifts = torch.randint(0, 2 * padding + 1, (2, n), generator=generator, device=dev)
        rows = (shifts[0][:, None] + torch.arange(h, device=dev))[:, None, :, None]
        cols = (shifts[1][:, None] + torch.arange(w, device=dev))[:, None, None, :]
        batch = torch.arange(n, device=dev)[:, None, None, None]
        chan = torch.arange(x.shape[1], device=dev)[None, :, None, None]
        x = padded[batch, chan, rows, cols]
    if flip:
        mask = torch.rand(n, generator=generator, device=dev) < 0.5
        x = torch.where(mask[:, None, None, None], x.flip(-1), x)
    return x


def cutout_batch(x: torch.Tensor, generator: torch.Generator, size: int) -> torch.Tensor:
    """Cutout (DeVries & Taylor 2017): zero one ``size`` x ``size`` square per image (clipped at the
    borders, centre uniform over the image) of a normalised float batch, so the square holds the mean.

    Vectorised over the batch; deterministic for a given generator state; ``size=0`` returns ``x``.
    """
    if size <= 0:
        return x
    n, _, h, w = x.shape
    dev = x.device
    cy = torch.randint(0, h, (n, 1), generator=generator, device=dev)
    cx = torch.randint(0, w, (n, 1), generator=generator, device=dev)
    rows = torch.arange(h, device=dev)[None, :]
    cols = torch.arange(w, device=dev)[None, :]
    in_rows = (rows >= cy - size // 2) & (rows < cy - size // 2 + size)
    in_cols = (cols >= cx - size // 2) & (cols < cx - size // 2 + size)
    hole = in_rows[:, None, :, None] & in_cols[:, None, None, :]
    return x.masked_fill(hole, 0.0)


def normalize(x: torch.Tensor, mean: torch.Tensor, std: torch.Tensor) -> torch.Tensor:
    """uint8 (N, C, H, W) → float32 standardised with per-channel ``mean`` and ``std`` (0..255 units)."""
    return (x.float() - mean.view(1, -1, 1, 1)) / std.view(1, -1, 1, 1)


@dataclass(frozen=True)
class DatasetSettings:
    """The dataset fields shared by the search's and the final training's settings.

    Attributes:
        dataset: ``digits``, ``cifar10`` or ``imagefolder`` (see the module docstring).
        data_root: folder holding the dataset (``cifar-10-batches-py/`` or ``train/``...); None: ``data``.
        download: fetch CIFAR-10 through torchvision when missing (needs internet).
        image_size: square size images are resized to; None keeps the native size.
        val_fraction: share of the training images held out for validation (0.1: 45,000/5,000).
        test_fraction: share held out for test when a dataset has no test split (digits).
        split_seed: seed of the stratified splits.
    """

    dataset: str = "cifar10"
    data_root: str | None = None
    download: bool = False
    image_size: int | None = None
    val_fraction: float = 0.1
    test_fraction: float = 0.2
    split_seed: int = 0

    def load_data(self) -> DataSplits:
        """The dataset with these splits (memoised by :func:`load_dataset`)."""
        return load_dataset(
            self.dataset,
            "data" if self.data_root is None else self.data_root,
            self.image_size,
            self.val_fraction,
            self.test_fraction,
            self.split_seed,
            self.download,
        )
