"""Datasets, splits and the batch pipeline (pnas_core.training.data)."""

from __future__ import annotations

import json
import os
import pickle
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from pnas_core.errors import PnasError
from pnas_core.training.data import (
    CIFAR_FOLDER,
    _digits_arrays,
    augment_batch,
    crop_padding,
    load_dataset,
    normalize,
    resize_uint8,
    stratified_split,
)
from pnas_core.training.imagefolder import CACHE_ENV, load_imagefolder


def _class_counts(y: torch.Tensor) -> np.ndarray:
    return np.bincount(y.numpy(), minlength=10)


def test_digits_splits_are_stratified_disjoint_and_documented_sizes() -> None:
    d = load_dataset("digits", test_fraction=0.2, val_fraction=0.2, split_seed=0)
    assert d.sizes == (1149, 288, 360)
    assert sum(d.sizes) == 1797
    assert d.image_shape == (1, 8, 8)
    assert d.train_x.dtype == torch.uint8 and d.train_y.dtype == torch.int64
    assert d.num_classes == 10 and not d.allow_flip
    # the three splits partition the dataset: as multisets of (image, label) they add up to it exactly
    raw_x, raw_y = _digits_arrays()
    everything = sorted(x.tobytes() + bytes([int(y)]) for x, y in zip(raw_x, raw_y, strict=True))
    parts = [(d.train_x, d.train_y), (d.val_x, d.val_y), (d.test_x, d.test_y)]
    split_rows = sorted(
        x.numpy().tobytes() + bytes([int(y)]) for xs, ys in parts for x, y in zip(xs, ys, strict=True)
    )
    assert split_rows == everything
    # stratified: every class's share in each split is within one image of the overall share
    total = _class_counts(torch.cat([d.train_y, d.val_y, d.test_y]))
    for y in (d.train_y, d.val_y, d.test_y):
        expected = total * len(y) / total.sum()
        assert np.all(np.abs(_class_counts(y) - expected) <= 1.5)


def test_digits_split_indices_disjoint_and_cover() -> None:
    y = np.random.default_rng(0).integers(0, 10, size=500)
    keep, held = stratified_split(y, 0.2, seed=3)
    assert len(set(keep) & set(held)) == 0
    assert sorted(np.concatenate([keep, held])) == list(range(500))
    _, held2 = stratified_split(y, 0.2, seed=3)
    assert np.array_equal(held, held2)
    _, held3 = stratified_split(y, 0.2, seed=4)
    assert not np.array_equal(held, held3)


def test_digits_fingerprint_tracks_content_and_upsampling() -> None:
    a = load_dataset("digits", val_fraction=0.2)
    b = load_dataset("digits", val_fraction=0.2, split_seed=1)
    c = load_dataset("digits", val_fraction=0.2, image_size=16)
    assert a.fingerprint.startswith("digits-1x8x8-1149/288/360-")
    assert len({a.fingerprint, b.fingerprint, c.fingerprint}) == 3
    assert c.image_shape == (1, 16, 16) and c.train_x.dtype == torch.uint8
    assert load_dataset("digits", val_fraction=0.2).fingerprint == a.fingerprint


def test_resize_keeps_dtype_and_range() -> None:
    x = torch.randint(0, 256, (3, 2, 8, 8), dtype=torch.uint8)
    y = resize_uint8(x, 16)
    assert y.shape == (3, 2, 16, 16) and y.dtype == torch.uint8
    assert resize_uint8(x, 8) is x


def test_augment_keeps_shape_dtype_and_is_deterministic() -> None:
    x = torch.randint(0, 256, (64, 3, 16, 16), dtype=torch.uint8)
    a = augment_batch(x, torch.Generator().manual_seed(7), padding=2, flip=True)
    b = augment_batch(x, torch.Generator().manual_seed(7), padding=2, flip=True)
    c = augment_batch(x, torch.Generator().manual_seed(8), padding=2, flip=True)
    assert a.shape == x.shape and a.dtype == torch.uint8
    assert torch.equal(a, b)
    assert not torch.equal(a, c)
    assert not torch.equal(a, x)


def test_augment_is_a_shifted_window_of_the_padded_image() -> None:
    x = torch.arange(2 * 1 * 6 * 6, dtype=torch.uint8).reshape(2, 1, 6, 6)
    out = augment_batch(x, torch.Generator().manual_seed(0), padding=1, flip=False)
    padded = torch.nn.functional.pad(x, (1, 1, 1, 1))
    for i in range(2):
        windows = [padded[i, :, r : r + 6, c : c + 6] for r in range(3) for c in range(3)]
        assert any(torch.equal(out[i], w) for w in windows)


def test_flip_only_mirrors() -> None:
    x = torch.randint(0, 256, (32, 1, 5, 5), dtype=torch.uint8)
    out = augment_batch(x, torch.Generator().manual_seed(1), padding=0, flip=True)
    for i in range(32):
        assert torch.equal(out[i], x[i]) or torch.equal(out[i], x[i].flip(-1))
    flipped = sum(not torch.equal(out[i], x[i]) for i in range(32))
    assert 0 < flipped < 32


def test_normalize_and_padding() -> None:
    x = torch.full((2, 1, 4, 4), 100, dtype=torch.uint8)
    z = normalize(x, torch.tensor([50.0]), torch.tensor([25.0]))
    assert z.dtype == torch.float32 and torch.allclose(z, torch.full_like(z, 2.0))
    assert crop_padding(32) == 4 and crop_padding(8) == 1 and crop_padding(16) == 2


def write_fake_cifar(root: Path, per_batch: int = 40, test: int = 30) -> None:
    """A CIFAR-10 folder in torchvision's on-disk pickle format, random pixels, balanced labels."""
    folder = root / CIFAR_FOLDER
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)

    def dump(name: str, n: int) -> None:
        entry = {
            "batch_label": name,
            "data": rng.integers(0, 256, size=(n, 3072), dtype=np.uint8),
            "labels": [int(i % 10) for i in range(n)],
            "filenames": [f"{name}_{i}.png" for i in range(n)],
        }
        with open(folder / name, "wb") as fh:
            pickle.dump(entry, fh)

    for i in range(1, 6):
        dump(f"data_batch_{i}", per_batch)
    dump("test_batch", test)
    with open(folder / "batches.meta", "wb") as fh:
        pickle.dump({"label_names": [f"class{i}" for i in range(10)], "num_cases_per_batch": per_batch}, fh)


def test_cifar10_from_fake_pickles(tmp_path: Path) -> None:
    write_fake_cifar(tmp_path)
    d = load_dataset("cifar10", root=tmp_path, val_fraction=0.1)
    assert d.sizes == (180, 20, 30)
    assert d.image_shape == (3, 32, 32) and d.allow_flip and d.num_classes == 10
    assert np.all(_class_counts(d.val_y) == 2)
    # pixels survive the pickle round trip in CHW order
    with open(tmp_path / CIFAR_FOLDER / "test_batch", "rb") as fh:
        raw = pickle.load(fh, encoding="latin1")["data"]
    assert torch.equal(d.test_x.reshape(30, -1), torch.from_numpy(raw))
    small = load_dataset("cifar10", root=tmp_path, val_fraction=0.1, image_size=16)
    assert small.image_shape == (3, 16, 16)


def test_cifar10_missing_folder_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(PnasError, match=r"cifar-10-batches-py.*data_batch_1.*test_batch"):
        load_dataset("cifar10", root=tmp_path / "nowhere")


def test_cifar10_incomplete_folder_names_missing_files(tmp_path: Path) -> None:
    write_fake_cifar(tmp_path)
    (tmp_path / CIFAR_FOLDER / "data_batch_3").unlink()
    with pytest.raises(PnasError, match=r"lacks data_batch_3"):
        load_dataset("cifar10", root=tmp_path)


def test_cifar10_corrupt_batch_names_file(tmp_path: Path) -> None:
    write_fake_cifar(tmp_path)
    (tmp_path / CIFAR_FOLDER / "data_batch_2").write_bytes(b"not a pickle")
    with pytest.raises(PnasError, match=r"corrupt CIFAR-10 batch file .*data_batch_2"):
        load_dataset("cifar10", root=tmp_path)


def _write_png_tree(root: Path, splits: tuple[str, ...], per_class: int, size: int = 12) -> None:
    from PIL import Image

    rng = np.random.default_rng(1)
    for split in splits:
        for cls in ("cat", "dog", "eel"):
            folder = root / split / cls
            folder.mkdir(parents=True)
            for i in range(per_class):
                arr = rng.integers(0, 256, size=(size, size, 3), dtype=np.uint8)
                Image.fromarray(arr).save(folder / f"{i}.png")


def test_imagefolder_with_all_splits(tmp_path: Path) -> None:
    _write_png_tree(tmp_path, ("train", "val", "test"), per_class=4)
    d = load_dataset("imagefolder", root=tmp_path)
    assert d.sizes == (12, 12, 12)
    assert d.image_shape == (3, 12, 12) and d.num_classes == 3
    assert d.fingerprint.startswith("imagefolder-3x12x12-12/12/12-")
    resized = load_dataset("imagefolder", root=tmp_path, image_size=8)
    assert resized.image_shape == (3, 8, 8)


def test_imagefolder_splits_val_and_test_from_train(tmp_path: Path) -> None:
    _write_png_tree(tmp_path, ("train",), per_class=10)
    d = load_dataset("imagefolder", root=tmp_path, val_fraction=0.2, test_fraction=0.2)
    assert sum(d.sizes) == 30
    assert d.sizes == (19, 5, 6)  # test: 20% of 30; val: 20% of the remaining 24, rounded up
    assert sorted(d.test_y.tolist()) == [0, 0, 1, 1, 2, 2]
    assert np.bincount(d.val_y.numpy(), minlength=3).tolist() in ([2, 2, 1], [2, 1, 2], [1, 2, 2])


def test_imagefolder_errors(tmp_path: Path) -> None:
    with pytest.raises(PnasError, match=r"train not found"):
        load_dataset("imagefolder", root=tmp_path)
    _write_png_tree(tmp_path, ("train",), per_class=2)
    (tmp_path / "val" / "fox").mkdir(parents=True)
    shutil.copy(tmp_path / "train" / "cat" / "0.png", tmp_path / "val" / "fox" / "0.png")
    with pytest.raises(PnasError, match=r"'fox'"):
        load_dataset("imagefolder", root=tmp_path)


def test_imagefolder_is_decoded_once_then_memory_mapped(tmp_path: Path) -> None:
    from PIL import Image

    _write_png_tree(tmp_path, ("train", "val", "test"), per_class=4)
    first = load_imagefolder(tmp_path, None, 0.1, 0.2, 0)
    # label order is the sorted class folders; images are the files in name order, pixel for pixel
    assert first.classes == ["cat", "dog", "eel"]
    expected = np.asarray(Image.open(tmp_path / "val" / "dog" / "1.png").convert("RGB")).transpose(2, 0, 1)
    assert np.array_equal(first.arrays[2][5], expected) and first.arrays[3][5] == 1
    assert first.path.parent == tmp_path / ".pnas-cache"
    again = load_imagefolder(tmp_path, None, 0.1, 0.2, 0)
    assert again.path == first.path and again.fingerprint == first.fingerprint
    assert all(isinstance(a, np.memmap) for a in again.arrays)
    # stats computed in chunks equal the in-memory formula of DataSplits.channel_stats
    x = torch.from_numpy(np.array(first.arrays[0])).to(torch.float64)
    assert np.allclose(first.mean, x.mean(dim=(0, 2, 3)).numpy(), rtol=0, atol=1e-9)
    assert np.allclose(first.std, x.std(dim=(0, 2, 3)).clamp_min(1.0).numpy(), rtol=0, atol=1e-9)
    # a changed image (new content, size and modification time) makes a new entry with the new pixels
    rng = np.random.default_rng(5)
    Image.fromarray(rng.integers(0, 256, size=(12, 12, 3), dtype=np.uint8)).save(
        tmp_path / "val" / "dog" / "1.png"
    )
    os.utime(tmp_path / "val" / "dog" / "1.png", ns=(1, 1))
    changed = load_imagefolder(tmp_path, None, 0.1, 0.2, 0)
    assert changed.path != first.path and changed.fingerprint != first.fingerprint
    assert not np.array_equal(changed.arrays[2][5], expected)
    # one decoding thread or two: the same arrays
    os.environ[CACHE_ENV] = str(tmp_path / "other")
    try:
        serial = load_imagefolder(tmp_path, 8, 0.1, 0.2, 0, threads=1)
        shutil.rmtree(tmp_path / "other")
        parallel = load_imagefolder(tmp_path, 8, 0.1, 0.2, 0, threads=2)
    finally:
        del os.environ[CACHE_ENV]
    assert serial.path.parent == tmp_path / "other"
    assert serial.fingerprint == parallel.fingerprint and serial.arrays[0].shape == (12, 3, 8, 8)


def test_imagefolder_cache_follows_the_bytes_not_the_modification_time(tmp_path: Path) -> None:
    from PIL import Image

    rng = np.random.default_rng(3)
    for cls in ("cat", "dog"):
        (tmp_path / "train" / cls).mkdir(parents=True)
        for i in range(5):  # stored uncompressed: every image of this size has the same file size
            pixels = rng.integers(0, 256, size=(8, 8, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(tmp_path / "train" / cls / f"{i}.png", compress_level=0)
    first = load_imagefolder(tmp_path, None, 0.2, 0.2, 0)
    target = tmp_path / "train" / "dog" / "3.png"
    before = target.stat()
    os.utime(target, ns=(before.st_atime_ns, before.st_mtime_ns + 10**9))  # touched: the same entry
    assert load_imagefolder(tmp_path, None, 0.2, 0.2, 0).path == first.path
    new = rng.integers(0, 256, size=(8, 8, 3), dtype=np.uint8)
    Image.fromarray(new).save(target, compress_level=0)
    os.utime(target, ns=(before.st_atime_ns, before.st_mtime_ns))  # the old size and time, new pixels
    assert target.stat().st_size == before.st_size and target.stat().st_mtime_ns == before.st_mtime_ns
    again = load_imagefolder(tmp_path, None, 0.2, 0.2, 0)
    assert again.path != first.path and again.fingerprint != first.fingerprint  # the training cache key too
    files = json.loads((again.path / "files.json").read_text())
    split = next(s for s, paths in files.items() if str(target) in paths)
    row = files[split].index(str(target))
    arrays = dict(zip(("train", "val", "test"), again.arrays[::2], strict=True))
    assert np.array_equal(arrays[split][row], new.transpose(2, 0, 1))


def test_imagefolder_refuses_empty_class_folders_and_names_bad_images(tmp_path: Path) -> None:
    _write_png_tree(tmp_path, ("train", "val"), per_class=10)
    (tmp_path / "train" / "aardvark").mkdir()
    (tmp_path / "train" / "zebra").mkdir()
    (tmp_path / "train" / "zebra" / "notes.txt").write_text("no image here")
    with pytest.raises(PnasError, match=r"class folder\(s\) aardvark, zebra under .*train hold no"):
        load_dataset("imagefolder", root=tmp_path, val_fraction=0.2, test_fraction=0.2)
    shutil.rmtree(tmp_path / "train" / "aardvark")
    shutil.rmtree(tmp_path / "train" / "zebra")
    (tmp_path / "val" / "dog" / "0.png").rename(tmp_path / "val" / "dog" / "0.txt")
    for i in range(1, 10):
        (tmp_path / "val" / "dog" / f"{i}.png").unlink()
    with pytest.raises(PnasError, match=r"class folder\(s\) dog under .*val hold no"):
        load_dataset("imagefolder", root=tmp_path, val_fraction=0.2, test_fraction=0.2)
    shutil.rmtree(tmp_path / "val")
    (tmp_path / "train" / "dog" / "broken.png").write_bytes(b"not a png")
    with pytest.raises(PnasError, match=r"1 unreadable image.*dog/broken\.png"):
        load_imagefolder(tmp_path, None, 0.2, 0.2, 0)
    assert not list((tmp_path / ".pnas-cache").glob(".*"))  # the failed build left no temporary folder


def test_imagefolder_jpeg_draft_decoding_is_close_to_full_decoding(tmp_path: Path) -> None:
    from PIL import Image

    yy, xx = np.mgrid[0:64, 0:64]
    for cls, phase in (("a", 0), ("b", 1)):
        (tmp_path / "train" / cls).mkdir(parents=True)
        for i in range(5):
            img = np.stack([(xx * 4 + i * 10) % 256, (yy * 4) % 256, ((xx + yy) * 2 + phase * 50) % 256], -1)
            Image.fromarray(img.astype(np.uint8)).save(tmp_path / "train" / cls / f"{i}.jpg", quality=95)
    d = load_imagefolder(tmp_path, 16, 0.2, 0.2, 0)
    first = Path(json.loads((d.path / "files.json").read_text())["train"][0])
    full = Image.open(first).convert("RGB").resize((16, 16), Image.Resampling.BILINEAR)
    diff = np.abs(d.arrays[0][0].astype(int) - np.asarray(full).transpose(2, 0, 1).astype(int))
    assert d.arrays[0].shape[1:] == (3, 16, 16) and diff.mean() < 6


def test_unknown_dataset_and_bad_fraction() -> None:
    with pytest.raises(PnasError, match="unknown dataset 'mnist'"):
        load_dataset("mnist")
    with pytest.raises(PnasError, match="val_fraction"):
        load_dataset("digits", val_fraction=1.5)
