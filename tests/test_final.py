"""Final training (resume after a kill), model files (round trip, mismatch errors), predict, export."""

from __future__ import annotations

import csv
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from pnas_core.cli import main
from pnas_core.errors import PnasError
from pnas_core.figures.curve import draw_curve
from pnas_core.space.cells import parse
from pnas_core.training.data import cutout_batch
from pnas_core.training.domain import far_notes
from pnas_core.training.final import FinalSettings, load_final_settings, run_final
from pnas_core.training.model_io import export_torchscript, load_model, predict, predict_files

CELL = "0:sep3x3,1:max3x3"
# tiny settings: an epoch takes well under a second on one core; every training feature is on
TINY = {
    "dataset": "digits",
    "image_size": 8,
    "val_fraction": 0.25,
    "cells_per_stack": 1,
    "filters": 4,
    "epochs": 2,
    "batch_size": 128,
    "lr": 0.05,
    "drop_path": 0.2,
    "aux_head": True,
    "cutout": 2,
    "label_smoothing": 0.1,
    "grad_clip": 5.0,
    "checkpoint_every": 1,
    "device": "cpu",
}


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny final network trained in-process (2 epochs)."""
    torch.set_num_threads(1)
    out = tmp_path_factory.mktemp("final")
    run_final(parse(CELL), FinalSettings.from_dict(TINY), out, draw_curve=draw_curve, log=lambda m: None)
    return out


def test_outputs_and_metrics(trained: Path) -> None:
    for name in (
        "model.pt",
        "cell.txt",
        "settings.json",
        "metrics.json",
        "curve.parquet",
        "curve.png",
        "curve.pdf",
    ):
        assert (trained / name).is_file(), name
    assert not (trained / "checkpoint.pt").exists()
    metrics = json.loads((trained / "metrics.json").read_text())
    assert metrics["epochs"] == 2 and metrics["test_images"] == 360 and metrics["train_images"] == 1437
    assert 0.0 <= metrics["test_acc"] <= 1.0
    assert metrics["params_with_aux"] > metrics["params"] > 0 and metrics["mult_adds"] > 0
    curve = pd.read_parquet(trained / "curve.parquet")
    assert curve["epoch"].tolist() == [1, 2]
    assert curve["lr"].iloc[0] == pytest.approx(0.05) and curve["lr"].iloc[1] < 0.05
    assert (trained / "cell.txt").read_text().strip() == CELL
    assert FinalSettings.from_dict(
        json.loads((trained / "settings.json").read_text())
    ) == FinalSettings.from_dict(TINY)


def test_load_round_trip_gives_identical_outputs(trained: Path) -> None:
    model, info = load_model(trained)
    again, _ = load_model(trained / "model.pt")
    assert info.cell == CELL and info.classes == [str(i) for i in range(10)] and info.input_shape == (1, 8, 8)
    x = torch.randn(7, 1, 8, 8, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        assert torch.equal(model(x), again(x))
    saved = torch.load(trained / "model.pt", weights_only=True)["state_dict"]
    assert all(torch.equal(saved[k], v) for k, v in model.state_dict().items())


def test_export_matches_model(trained: Path, tmp_path: Path) -> None:
    model, info = load_model(trained)
    out = tmp_path / "net.pt"
    assert main(["export", "--model", str(trained), "--out", str(out)]) == 0
    extra = {"pnas.json": ""}
    scripted = torch.jit.load(str(out), _extra_files=extra)
    carried = json.loads(extra["pnas.json"])
    assert json.loads(carried["classes"]) == info.classes and json.loads(carried["pixel_stats"])["ink"]
    x = torch.randn(11, 1, 8, 8, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        assert torch.allclose(scripted(x), model(x), rtol=0, atol=1e-5)
    assert export_torchscript(model, info, tmp_path / "again.pt") <= 1e-5


def test_export_onnx_matches_model(trained: Path, tmp_path: Path) -> None:
    onnx = pytest.importorskip("onnx")
    onnxruntime = pytest.importorskip("onnxruntime")
    model, _ = load_model(trained)
    assert main(["export", "--model", str(trained), "--format", "onnx"]) == 0
    out = trained / "model.onnx"
    onnx.checker.check_model(onnx.load(str(out)))
    session = onnxruntime.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    assert [i.name for i in session.get_inputs()] == ["images"]
    x = torch.randn(11, 1, 8, 8, generator=torch.Generator().manual_seed(3))  # another batch size
    (logits,) = session.run(["logits"], {"images": x.numpy()})
    with torch.no_grad():
        expected = model(x)
    assert torch.allclose(torch.from_numpy(logits), expected, rtol=0, atol=1e-4)
    assert not torch.allclose(torch.from_numpy(logits), expected.roll(1, dims=0), rtol=0, atol=1e-4)


def _rewrite(src: Path, dst: Path, **changes: object) -> Path:
    payload = torch.load(src / "model.pt", weights_only=True)
    for key, value in changes.items():
        if isinstance(value, dict):
            payload[key] = {**payload[key], **value}
        else:
            payload[key] = value
    torch.save(payload, dst)
    return dst


def test_load_refuses_swapped_cell(trained: Path, tmp_path: Path) -> None:
    f = _rewrite(trained, tmp_path / "swapped.pt", cell="0:sep5x5,1:identity")
    with pytest.raises(
        PnasError, match=r"swapped\.pt.*do not match.*0:sep5x5,1:identity.*(missing|unexpected)"
    ):
        load_model(f)


def test_load_refuses_changed_settings(trained: Path, tmp_path: Path) -> None:
    f = _rewrite(trained, tmp_path / "wider.pt", network={"filters": 8})
    with pytest.raises(PnasError, match=r"wider\.pt.*do not match.*shape differs"):
        load_model(f)
    f = _rewrite(trained, tmp_path / "noaux.pt", network={"aux_head": False})
    with pytest.raises(PnasError, match=r"noaux\.pt.*unexpected \(aux_head\."):
        load_model(f)


def test_load_refuses_bad_cell_text_and_foreign_files(trained: Path, tmp_path: Path) -> None:
    f = _rewrite(trained, tmp_path / "bad.pt", cell="0:sep3x3,9:max3x3")
    with pytest.raises(PnasError, match=r"bad\.pt.*cell text does not parse"):
        load_model(f)
    torch.save({"weights": torch.zeros(3)}, tmp_path / "foreign.pt")
    with pytest.raises(PnasError, match=r"foreign\.pt is not a pnas model"):
        load_model(tmp_path / "foreign.pt")
    with pytest.raises(PnasError, match="not found"):
        load_model(tmp_path / "nowhere")


def _digit_files(folder: Path, images: torch.Tensor, stem: str = "digit") -> list[Path]:
    """Write grey uint8 images (N, 1, H, W) as PNG files ``<stem><i>.png`` in ``folder``."""
    folder.mkdir(exist_ok=True)
    files = [folder / f"{stem}{i}.png" for i in range(len(images))]
    for f, img in zip(files, images, strict=True):
        Image.fromarray(img[0].numpy(), mode="L").save(f)
    return files


def test_predict_prints_a_header_and_the_top_classes(
    trained: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = FinalSettings.from_dict(TINY).load_data()
    images = data.test_x[:5]
    _digit_files(tmp_path / "imgs", images)
    Image.fromarray(np.repeat(images[0][0].numpy()[:, :, None], 3, 2)).resize((16, 16)).save(
        tmp_path / "big.png"
    )
    args = ["predict", "--model", str(trained), str(tmp_path / "imgs"), str(tmp_path / "big.png")]
    assert main([*args, "--top-k", "3"]) == 0
    captured = capsys.readouterr()
    rows = list(csv.reader(captured.out.splitlines()))
    ranks = [f"{name}_{i}" for i in (1, 2, 3) for name in ("class", "probability")]
    assert rows[0] == ["file", *ranks, "in_domain"]
    assert len(rows) == 7
    model, info = load_model(trained)
    expected = predict(model, info, images)
    for i, row in enumerate(rows[1:6]):
        assert row[0].endswith(f"digit{i}.png") and row[-1] == "yes"
        top, idx = expected[i].topk(3)
        assert row[1:7:2] == [str(j) for j in idx.tolist()]
        assert [float(v) for v in row[2:7:2]] == pytest.approx(top.tolist(), abs=1e-4)
    assert rows[6][1] in info.classes
    assert f"model {trained / 'model.pt'}: 10 classes, input 1x8x8 (light ink on a dark background" in (
        captured.err
    )
    assert main([*args, "--format", "json", "--top-k", "2"]) == 0
    parsed = json.loads(capsys.readouterr().out)
    assert [Path(r["file"]).name for r in parsed] == [f"digit{i}.png" for i in range(5)] + ["big.png"]
    assert all(
        len(r["top"]) == 2 and r["top"][0]["probability"] >= r["top"][1]["probability"] for r in parsed
    )
    assert [r["top"][0]["class"] for r in parsed[:5]] == [str(j) for j in expected.argmax(1).tolist()]


def test_model_file_carries_the_training_domain(trained: Path) -> None:
    _, info = load_model(trained)
    assert info.domain is not None and info.domain.ink == "light-on-dark"
    assert info.domain.images == 1437  # train + val, what the final network trained on
    data = FinalSettings.from_dict(TINY).load_data()
    bright = info.domain.ranges["brightness"]
    assert bright.low <= float(data.train_x.float().mean()) <= bright.high


def test_predict_warns_on_inverted_digits_only(
    trained: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Dark ink on white (digits as on paper) is far from the training images; every held-out test
    digit is not."""
    _, info = load_model(trained)
    test_x = FinalSettings.from_dict(TINY).load_data().test_x
    assert info.domain is not None and not any(far_notes(info.domain, test_x))
    assert all(far_notes(info.domain, 255 - test_x))
    normal = _digit_files(tmp_path / "imgs", test_x[:6], "normal")
    inverted = _digit_files(tmp_path / "imgs", 255 - test_x[:6], "inverted")
    assert main(["predict", "--model", str(trained), str(tmp_path / "imgs")]) == 0
    captured = capsys.readouterr()
    warned = [line for line in captured.err.splitlines() if "warning" in line]
    assert len(warned) == len(inverted)
    for f, line in zip(sorted(inverted), warned, strict=True):
        assert f"warning: {f} is far from the training images (brightness" in line and "border" in line
    assert not any(str(f) in captured.err for f in normal)
    rows = {Path(r[0]).name: r[-1] for r in csv.reader(captured.out.splitlines()[1:])}
    assert {rows[f.name] for f in normal} == {"yes"} and {rows[f.name] for f in inverted} == {"no"}


def test_model_file_from_before_the_domain_loads_with_a_note(
    trained: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    f = _rewrite(trained, tmp_path / "old.pt", format="pnas-model-1")
    payload = torch.load(f, weights_only=True)
    del payload["domain"]
    torch.save(payload, f)
    _, info = load_model(f)
    assert info.domain is None
    _digit_files(tmp_path / "imgs", 255 - FinalSettings.from_dict(TINY).load_data().test_x[:2])
    assert main(["predict", "--model", str(f), str(tmp_path / "imgs")]) == 0
    captured = capsys.readouterr()
    notes = [line for line in captured.err.splitlines() if "note" in line]
    assert len(notes) == 1 and f"model file {f} holds no statistics of its training images" in notes[0]
    assert "warning" not in captured.err
    assert [r[-1] for r in csv.reader(captured.out.splitlines()[1:])] == ["unknown", "unknown"]
    bad = _rewrite(trained, tmp_path / "bad.pt", domain={"ink": "sideways"})
    with pytest.raises(PnasError, match=r"bad\.pt: training pixel statistics are malformed"):
        load_model(bad)


def test_onnx_file_alone_preprocesses_and_names_the_class(trained: Path, tmp_path: Path) -> None:
    """Only onnxruntime, Pillow and numpy: the file's metadata say how to read the image and what
    the output's classes are; the answer is pnas predict's."""
    onnxruntime = pytest.importorskip("onnxruntime")
    out = tmp_path / "model.onnx"
    assert main(["export", "--model", str(trained), "--format", "onnx", "--out", str(out)]) == 0
    files = _digit_files(tmp_path / "imgs", FinalSettings.from_dict(TINY).load_data().test_x[:8])

    session = onnxruntime.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    meta = session.get_modelmeta().custom_metadata_map
    prep, classes = json.loads(meta["preprocess"]), json.loads(meta["classes"])
    stats = json.loads(meta["pixel_stats"])
    assert prep["layout"] == "NCHW float32" and prep["ink"] == stats["ink"] == "light-on-dark"
    mean = np.asarray(prep["mean"], dtype=np.float32)[:, None, None]
    std = np.asarray(prep["std"], dtype=np.float32)[:, None, None]
    batch = []
    for f in files:
        with Image.open(f) as im:
            im = im.convert(prep["color_mode"]).resize((prep["width"], prep["height"]), Image.BILINEAR)
            pixels = np.asarray(im, dtype=np.float32).reshape(prep["height"], prep["width"], prep["channels"])
        batch.append((pixels.transpose(2, 0, 1) - mean) / std)
    (logits,) = session.run(["logits"], {"images": np.stack(batch)})
    names = [classes[i] for i in logits.argmax(1)]

    probs = np.exp(logits - logits.max(1, keepdims=True))
    probs /= probs.sum(1, keepdims=True)
    model, info = load_model(trained)
    ours = list(predict_files(model, info, files))
    assert names == [p.top[0][0] for p in ours]
    assert probs.max(1) == pytest.approx([p.top[0][1] for p in ours], abs=1e-5)  # the same preprocessing


def test_final_train_resumes_after_kill(tmp_path: Path) -> None:
    """Kill `pnas final-train` after a checkpoint, rerun: it continues from that epoch, and the result
    equals an uninterrupted run bitwise (CPU, one thread)."""
    settings = {**TINY, "epochs": 8, "checkpoint_every": 2, "aux_head": False}
    (tmp_path / "final.json").write_text(json.dumps(settings))
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "pnas_core", "final-train", "--cell", CELL]
    cmd += ["--settings", str(tmp_path / "final.json"), "--out-dir", str(out), "--threads", "1"]
    env = {**os.environ, "PYTHONHASHSEED": "0"}
    proc = subprocess.Popen(cmd, stderr=subprocess.DEVNULL, stdout=subprocess.DEVNULL, env=env)
    deadline = time.monotonic() + 120
    while not (out / "checkpoint.pt").exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (out / "metrics.json").exists(), "killed after the end: make the run longer"
    done = torch.load(out / "checkpoint.pt", weights_only=False)["epoch"]
    assert 2 <= done < 8 and done % 2 == 0

    rerun = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=120)
    assert rerun.returncode == 0, rerun.stderr
    assert f"resumed from checkpoint {out / 'checkpoint.pt'} at epoch {done}/8" in rerun.stderr
    epochs = [int(e) for e in re.findall(r"epoch (\d+)/8 loss", rerun.stderr)]
    assert epochs == list(range(done + 1, 9))
    assert not (out / "checkpoint.pt").exists()

    torch.set_num_threads(1)
    straight = tmp_path / "straight"
    run_final(
        parse(CELL), FinalSettings.from_dict(settings), straight, draw_curve=draw_curve, log=lambda m: None
    )
    a, b = (pd.read_parquet(d / "curve.parquet").drop(columns="seconds") for d in (out, straight))
    assert a["epoch"].tolist() == list(range(1, 9))
    pd.testing.assert_frame_equal(a, b, check_exact=True)
    ma, mb = (torch.load(d / "model.pt", weights_only=True)["state_dict"] for d in (out, straight))
    assert all(torch.equal(ma[k], mb[k]) for k in mb)
    ja, jb = (json.loads((d / "metrics.json").read_text()) for d in (out, straight))
    assert ja["test_acc"] == jb["test_acc"] and ja["epochs"] == 8


def test_stale_checkpoint_is_ignored(tmp_path: Path) -> None:
    """An unreadable checkpoint, or one written for another cell or settings, does not leak into a run."""
    settings = FinalSettings.from_dict({**TINY, "epochs": 1, "aux_head": False})
    out = tmp_path / "out"
    out.mkdir()
    for content, reason in (
        (b"not a checkpoint", "unreadable"),
        (None, "for another cell, settings or dataset"),
    ):
        if content is None:
            torch.save({"key": {"cell": "0:sep5x5,1:identity"}, "epoch": 1}, out / "checkpoint.pt")
        else:
            (out / "checkpoint.pt").write_bytes(content)
        messages: list[str] = []
        run_final(parse(CELL), settings, out, draw_curve=draw_curve, log=messages.append)
        assert any(reason in m and "starting from epoch 0" in m for m in messages), messages
        assert [m.split()[1] for m in messages if m.startswith("epoch ")] == ["1/1"]
        assert not (out / "checkpoint.pt").exists()


def test_settings_errors_name_the_key(tmp_path: Path) -> None:
    with pytest.raises(PnasError, match=r"unknown final setting.*'cutuot'"):
        FinalSettings.from_dict({"cutuot": 8})
    with pytest.raises(PnasError, match="final setting aux_head must be bool"):
        FinalSettings.from_dict({"aux_head": "yes"})
    with pytest.raises(PnasError, match="final setting checkpoint_every must be at least 1"):
        FinalSettings.from_dict({"checkpoint_every": 0})
    (tmp_path / "f.yaml").write_text("weight_decay: 1e-4\nepochs: 3\n")
    assert load_final_settings(tmp_path / "f.yaml").weight_decay == 1e-4
    (tmp_path / "g.yaml").write_text("lr: -1\n")
    with pytest.raises(PnasError, match=r"g\.yaml.*lr must be positive"):
        load_final_settings(tmp_path / "g.yaml")
    assert (
        main(
            [
                "final-train",
                "--cell",
                "0:bogus,1:max3x3",
                "--settings",
                str(tmp_path / "f.yaml"),
                "--out-dir",
                str(tmp_path / "o"),
            ]
        )
        == 2
    )


def test_cutout_zeroes_one_square_per_image() -> None:
    x = torch.ones(64, 3, 12, 12)
    a = cutout_batch(x, torch.Generator().manual_seed(5), 4)
    b = cutout_batch(x, torch.Generator().manual_seed(5), 4)
    assert torch.equal(a, b)
    holes = (a == 0).all(1)  # (N, H, W): same square on every channel
    assert (holes.sum((1, 2)) <= 16).all() and (holes.sum((1, 2)) >= 4).all()
    assert (holes.sum((1, 2)) == 16).any()
    for mask in holes:
        rows, cols = mask.any(1).nonzero().flatten(), mask.any(0).nonzero().flatten()
        assert mask.sum() == len(rows) * len(cols)  # a rectangle (a square clipped at the border)
        assert torch.equal(rows, torch.arange(rows[0], rows[-1] + 1))
    assert cutout_batch(x, torch.Generator(), 0) is x
