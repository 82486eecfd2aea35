"""A trained network as one file: weights together with the cell text and settings that build it.

``model.pt`` is a ``torch.save`` dict: ``format`` (:data:`MODEL_FORMAT`), ``state_dict``, ``cell``
(canonical cell text), ``network`` (:class:`pnas_core.training.network.NetworkSettings` fields), ``settings``
(the training settings), ``classes`` (names in label order), ``mean``/``std`` (per-channel
normalisation in 0..255 units), ``input_shape`` (C, H, W), ``domain`` (the training images' pixel
statistics and ink polarity, :class:`pnas_core.training.domain.PixelStats`; format ``pnas-model-2``
on), ``metrics`` and ``pnas_version``. :func:`load_model` rebuilds the network from the stored cell and
settings and refuses a file whose weights do not fit it; a ``pnas-model-1`` file (written before the
domain was stored) loads with ``domain`` None. :func:`predict_files`, :func:`export_torchscript` and
:func:`export_onnx` use a loaded model; both exports carry :func:`export_metadata` (preprocessing,
class names, pixel statistics).
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from pnas_core import __version__
from pnas_core.errors import PnasError
from pnas_core.io.atomic import atomic_path, write_serialized
from pnas_core.space.cells import parse
from pnas_core.training.data import IMAGE_SUFFIXES, normalize, resize_uint8
from pnas_core.training.domain import INK_POLARITIES, PixelStats, far_notes
from pnas_core.training.network import NetworkSettings, build_network

MODEL_FILE = "model.pt"
MODEL_FORMAT = "pnas-model-2"
READABLE_FORMATS = ("pnas-model-1", MODEL_FORMAT)
"""Model file formats :func:`load_model` reads (``pnas-model-1``: before the input domain was stored)."""
COLOR_MODES = {1: "L", 3: "RGB"}
"""Pillow's image mode for each number of input channels an image is converted to."""
REQUIRED_KEYS = ("state_dict", "cell", "network", "settings", "classes", "mean", "std", "input_shape")
EXPORT_TOLERANCE = 1e-5
PREDICT_BATCH = 256
"""Images ``pnas predict`` reads and scores at a time."""
ONNX_TOLERANCE = 1e-4


@dataclass(frozen=True)
class ModelInfo:
    """What travels with the weights of a saved model."""

    path: Path
    cell: str
    network: dict[str, Any]
    settings: dict[str, Any]
    classes: list[str]
    mean: list[float]
    std: list[float]
    input_shape: tuple[int, int, int]
    metrics: dict[str, Any]
    pnas_version: str
    domain: PixelStats | None = None
    """The training images' pixel statistics; None in a file written before they were stored."""


def save_model(path: str | os.PathLike[str], model: torch.nn.Module, info: dict[str, Any]) -> None:
    """Write ``model``'s weights (moved to CPU, contiguous) with ``info`` (the keys of the module
    docstring) to ``path`` atomically."""
    state = {
        k: v.detach().to("cpu", memory_format=torch.contiguous_format) for k, v in model.state_dict().items()
    }
    payload = {
        "format": MODEL_FORMAT,
        "state_dict": state,
        "pnas_version": __version__,
        "metrics": {},
        **info,
    }
    missing = [k for k in REQUIRED_KEYS if k not in payload]
    if missing:
        raise PnasError(f"save_model: info lacks {', '.join(missing)}")
    write_serialized(path, lambda fh: torch.save(payload, fh))


def model_file(dir_or_file: str | os.PathLike[str]) -> Path:
    """``dir/model.pt`` for a folder, else the path itself; PnasError when it does not exist."""
    p = Path(dir_or_file)
    f = p / MODEL_FILE if p.is_dir() else p
    if not f.is_file():
        raise PnasError(f"model file {f} not found (give a final-train output folder or its {MODEL_FILE})")
    return f


def load_model(
    dir_or_file: str | os.PathLike[str], device: str | torch.device = "cpu"
) -> tuple[torch.nn.Module, ModelInfo]:
    """The trained network (eval mode, on ``device``) and its :class:`ModelInfo`, in one call.

    Raises PnasError naming the file when it is not a pnas model, its cell text does not parse, its
    settings are invalid, or its weights (keys or shapes) differ from the network they build.
    """
    f = model_file(dir_or_file)
    try:
        payload = torch.load(f, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise PnasError(f"model file {f} is not a readable torch file: {type(exc).__name__}: {exc}") from exc
    if not isinstance(payload, dict) or payload.get("format") not in READABLE_FORMATS:
        raise PnasError(
            f"model file {f} is not a pnas model (format {' or '.join(READABLE_FORMATS)} expected)"
        )
    missing = [k for k in REQUIRED_KEYS if k not in payload]
    if missing:
        raise PnasError(f"model file {f} lacks {', '.join(missing)}")
    try:
        cell = parse(payload["cell"])
    except PnasError as exc:
        raise PnasError(f"model file {f}: stored cell text does not parse: {exc}") from exc
    try:
        known = {fl.name for fl in dataclasses.fields(NetworkSettings)}
        unknown = sorted(set(payload["network"]) - known)
        if unknown:
            raise PnasError(f"unknown network setting(s) {', '.join(unknown)}")
        net_settings = NetworkSettings(**payload["network"])
    except (PnasError, TypeError) as exc:
        raise PnasError(f"model file {f}: stored network settings are invalid: {exc}") from exc
    with torch.device("meta"):
        reference = build_network(cell, net_settings).state_dict()
    state = payload["state_dict"]
    problems = _state_mismatch(reference, state)
    if problems:
        raise PnasError(
            f"model file {f}: weights do not match the network of its stored cell {cell.text!r} and "
            f"settings: {problems}"
        )
    bad = [k for k, v in state.items() if v.is_floating_point() and not bool(torch.isfinite(v).all())]
    if bad:
        raise PnasError(f"model file {f}: weights hold NaN or infinity ({', '.join(bad[:3])})")
    model = build_network(cell, net_settings)
    model.load_state_dict(state)
    model.to(device).eval()
    shape = tuple(int(d) for d in payload["input_shape"])
    info = ModelInfo(
        path=f,
        cell=cell.text,
        network=dict(payload["network"]),
        settings=dict(payload["settings"]),
        classes=[str(c) for c in payload["classes"]],
        mean=[float(v) for v in payload["mean"]],
        std=[float(v) for v in payload["std"]],
        input_shape=(shape[0], shape[1], shape[2]),
        metrics=dict(payload.get("metrics") or {}),
        pnas_version=str(payload.get("pnas_version", "unknown")),
        domain=None
        if payload.get("domain") is None
        else PixelStats.from_dict(payload["domain"], f"model file {f}"),
    )
    if not all(math.isfinite(v) for v in info.mean) or not all(math.isfinite(v) and v > 0 for v in info.std):
        raise PnasError(
            f"model file {f}: normalisation mean {info.mean} / std {info.std} is not finite and positive"
        )
    if len(info.classes) != net_settings.num_classes or len(info.mean) != net_settings.in_channels:
        raise PnasError(
            f"model file {f}: {len(info.classes)} class names and {len(info.mean)} channel means for a "
            f"network of {net_settings.num_classes} classes and {net_settings.in_channels} channels"
        )
    return model, info


def _state_mismatch(reference: dict[str, torch.Tensor], state: dict[str, torch.Tensor]) -> str:
    """A short description of how ``state``'s keys and shapes differ from ``reference``'s ('' if not)."""
    missing = [k for k in reference if k not in state]
    unexpected = [k for k in state if k not in reference]
    shapes = [
        f"{k} {tuple(state[k].shape)} vs {tuple(v.shape)}"
        for k, v in reference.items()
        if k in state and tuple(state[k].shape) != tuple(v.shape)
    ]
    parts = []
    for label, items in (("missing", missing), ("unexpected", unexpected), ("shape differs", shapes)):
        if items:
            more = f" and {len(items) - 3} more" if len(items) > 3 else ""
            parts.append(f"{len(items)} {label} ({', '.join(items[:3])}{more})")
    return "; ".join(parts)


# --------------------------------------------------------------------------- using a model


def image_files(paths: list[str | os.PathLike[str]]) -> list[Path]:
    """Image files (.png/.jpg/.jpeg) given directly or found (recursively, sorted) in folders."""
    found: list[Path] = []
    for item in map(Path, paths):
        if item.is_dir():
            found += sorted(p for p in item.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
        elif item.is_file():
            found.append(item)
        else:
            raise PnasError(f"image path {item} does not exist")
    if not found:
        raise PnasError(f"no .png/.jpg images in {', '.join(map(str, paths))}")
    return found


def read_images(files: list[Path], info: ModelInfo) -> torch.Tensor:
    """The images as one uint8 batch (N, C, H, W) in the model's channels and size (bilinear resize)."""
    c, h, w = info.input_shape
    mode = COLOR_MODES.get(c)
    if mode is None:
        raise PnasError(f"model {info.path} takes {c}-channel images; predict reads only 1 or 3 channels")
    batch = []
    for path in files:
        try:
            with Image.open(path) as im:
                arr = np.asarray(im.convert(mode), dtype=np.uint8)
        except Exception as exc:
            raise PnasError(f"cannot read image {path}: {exc}") from exc
        t = torch.from_numpy(arr.reshape(arr.shape[0], arr.shape[1], c).transpose(2, 0, 1).copy())
        batch.append(resize_uint8(t[None], (h, w))[0])
    return torch.stack(batch)


@torch.no_grad()
def predict(model: torch.nn.Module, info: ModelInfo, images: torch.Tensor) -> torch.Tensor:
    """Class probabilities (N, classes) of uint8 images (N, C, H, W) normalised like training."""
    device = next(model.parameters()).device
    mean = torch.tensor(info.mean, device=device)
    std = torch.tensor(info.std, device=device)
    model.eval()
    return torch.softmax(model(normalize(images.to(device), mean, std)).float(), dim=1).cpu()


@dataclass(frozen=True)
class Prediction:
    """One image's result: its ``top`` (class name, probability) pairs, most probable first, and
    ``far``: how its pixel statistics lie outside the training images' (empty: inside, or unchecked
    when the model file holds no statistics)."""

    file: Path
    top: list[tuple[str, float]]
    far: list[str]


def predict_files(
    model: torch.nn.Module,
    info: ModelInfo,
    paths: list[str | os.PathLike[str]],
    top_k: int = 1,
    batch_size: int = PREDICT_BATCH,
) -> Iterator[Prediction]:
    """A :class:`Prediction` (the ``top_k`` most probable classes) for every image file under
    ``paths``, in order, read and scored ``batch_size`` images at a time: memory stays one batch's
    worth however many images there are, and each image's result does not depend on the batch it is in."""
    files = image_files(paths)
    k = min(top_k, len(info.classes))
    for start in range(0, len(files), batch_size):
        batch = files[start : start + batch_size]
        images = read_images(batch, info)
        probs, idx = predict(model, info, images).topk(k, dim=1)
        far = far_notes(info.domain, images) if info.domain is not None else [[] for _ in batch]
        for file, p, i, notes in zip(batch, probs.tolist(), idx.tolist(), far, strict=True):
            yield Prediction(file, [(info.classes[j], q) for j, q in zip(i, p, strict=True)], notes)


def domain_note(info: ModelInfo) -> str | None:
    """The one line that says a model file predates its input-domain statistics (None when it has them)."""
    if info.domain is not None:
        return None
    return (
        f"model file {info.path} holds no statistics of its training images (written before pnas stored "
        "them): images are not checked against the training data; run pnas final-train again to add them"
    )


def preprocessing(info: ModelInfo) -> dict[str, Any]:
    """How to turn an image file into the network's input, as data (the exports' metadata)."""
    c, h, w = info.input_shape
    ink = info.domain.ink if info.domain is not None else None
    return {
        "color_mode": COLOR_MODES.get(c, f"{c} channels"),
        "channels": c,
        "height": h,
        "width": w,
        "resize": "bilinear, antialiased, to height x width",
        "pixel_range": [0, 255],
        "mean": info.mean,
        "std": info.std,
        "normalize": "(pixel - mean[channel]) / std[channel], pixels in 0..255",
        "layout": "NCHW float32",
        "ink": ink,
        "ink_words": INK_POLARITIES.get(ink or "", "none"),
    }


def export_metadata(info: ModelInfo) -> dict[str, str]:
    """The key/value strings both exports carry (ONNX ``metadata_props``, TorchScript's ``pnas.json``
    extra file): ``preprocess`` (JSON of :func:`preprocessing`), ``classes`` (JSON list in label
    order), ``pixel_stats`` (JSON of the training images' statistics, ``null`` for a file that predates
    them), ``cell``, ``metrics`` (JSON) and ``pnas_version``."""
    return {
        "preprocess": json.dumps(preprocessing(info)),
        "classes": json.dumps(info.classes),
        "pixel_stats": json.dumps(info.domain.to_dict() if info.domain is not None else None),
        "cell": info.cell,
        "metrics": json.dumps({k: info.metrics[k] for k in ("test_acc", "dataset") if k in info.metrics}),
        "pnas_version": info.pnas_version,
    }


def export_torchscript(model: torch.nn.Module, info: ModelInfo, out: str | os.PathLike[str]) -> float:
    """Trace ``model`` (eval, CPU, float32) to TorchScript at ``out`` atomically, taking normalised
    images (N, C, H, W). Checks the saved file against the model on a seeded random batch of another
    batch size; returns the largest absolute difference (PnasError above :data:`EXPORT_TOLERANCE`).
    The file carries :func:`export_metadata` as the extra file ``pnas.json``."""
    model = model.to("cpu").eval()
    gen = torch.Generator().manual_seed(0)
    example = torch.randn((2, *info.input_shape), generator=gen)
    check = torch.randn((5, *info.input_shape), generator=gen)
    with torch.no_grad(), warnings.catch_warnings():
        warnings.filterwarnings(
            "ignore", category=FutureWarning, message=r".*torch\.jit"
        )  # deprecated, still works
        traced = torch.jit.trace(model, example, check_inputs=[(check,)])
        extra = {"pnas.json": json.dumps(export_metadata(info))}
        write_serialized(out, lambda fh: torch.jit.save(traced, fh, _extra_files=extra))
        loaded = torch.jit.load(str(out), map_location="cpu")
        diff = float((loaded(check) - model(check)).abs().max())
    if not diff <= EXPORT_TOLERANCE:
        raise PnasError(
            f"TorchScript export {out} differs from the model by {diff:.3g} (> {EXPORT_TOLERANCE})"
        )
    return diff


def export_onnx(model: torch.nn.Module, info: ModelInfo, out: str | os.PathLike[str]) -> float:
    """Export ``model`` (eval, CPU, float32) to ONNX at ``out`` atomically with torch's exporter
    (``torch.export``), one input ``images`` (normalised, (N, C, H, W), any N) and one output
    ``logits``. Runs the saved file in onnxruntime on a seeded random batch of another batch size than
    the export's; returns the largest absolute difference to the model (PnasError above
    :data:`ONNX_TOLERANCE`). The file's ``metadata_props`` hold :func:`export_metadata`: with them the
    file alone preprocesses an image and names its class. Needs the ``onnx`` extra
    (``pip install -e '.[onnx]'``)."""
    try:
        import onnx
        import onnxruntime
        import onnxscript  # noqa: F401 (torch's exporter needs it)
    except ImportError as exc:
        raise PnasError(
            f"ONNX export needs onnx, onnxscript and onnxruntime ({exc}): pip install -e '.[onnx]'"
        ) from exc
    model = model.to("cpu").eval()
    gen = torch.Generator().manual_seed(0)
    example = torch.randn((2, *info.input_shape), generator=gen)
    check = torch.randn((5, *info.input_shape), generator=gen)
    with torch.no_grad(), atomic_path(out) as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the exporter's own notes on decompositions
        program = torch.onnx.export(
            model,
            (example,),
            input_names=["images"],
            output_names=["logits"],
            dynamic_shapes=({0: torch.export.Dim("batch")},),
            dynamo=True,
            verbose=False,
        )
        if program is None:
            raise PnasError("torch.onnx.export returned no program")
        program.save(str(tmp), external_data=False)
        proto = onnx.load(str(tmp))
        onnx.helper.set_model_props(proto, export_metadata(info))
        onnx.save(proto, str(tmp))
    session = onnxruntime.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    (logits,) = session.run(["logits"], {"images": check.numpy()})
    with torch.no_grad():
        diff = float((torch.from_numpy(logits) - model(check)).abs().max())
    if not diff <= ONNX_TOLERANCE:
        raise PnasError(f"ONNX export {out} differs from the model by {diff:.3g} (> {ONNX_TOLERANCE})")
    return diff
