"""Bad inputs end in one line naming them (exit code 2), NaN and infinity are refused where they
enter, and files a user may be handed are never unpickled."""

from __future__ import annotations

import json
import math
import os
import stat
from pathlib import Path

import pytest
import torch
from synthetic import valid_record

from pnas_core.cli import main
from pnas_core.errors import PnasError
from pnas_core.space.cells import parse
from pnas_core.surrogate import SurrogateSettings
from pnas_core.training.cache import CorruptCacheEntry, ResultCache
from pnas_core.training.final import FinalSettings
from pnas_core.training.train import TrainSettings

CELL = "0:sep3x3,1:identity"


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    """Exit code and stderr of ``pnas argv`` (argparse's exit included)."""
    try:
        code = main(list(argv))
    except SystemExit as exc:
        code = int(exc.code or 0)
    return code, capsys.readouterr().err


def test_non_ascii_digits_in_cell_text_are_refused() -> None:
    with pytest.raises(PnasError, match="not a non-negative integer"):
        parse("٣:sep3x3,1:identity")
    with pytest.raises(PnasError, match="not a non-negative integer"):
        parse("0:sep3x3,¹:identity")


@pytest.mark.parametrize(
    ("cls", "data", "message"),
    [
        (TrainSettings, {"lr": math.inf}, "lr must be a finite number"),
        (TrainSettings, {"momentum": math.nan}, "momentum must be a finite number"),
        (TrainSettings, {"lr": "1e999"}, "lr must be a finite number"),
        (TrainSettings, {"seed": -1}, "seed must be >= 0"),
        (TrainSettings, {"val_fraction": 1.0}, "val_fraction must be below 1"),
        (TrainSettings, {"filters": 2}, "filters must be >= 4"),
        (FinalSettings, {"drop_path": 1.5}, "drop_path must be below 1"),
        (FinalSettings, {"weight_decay": -math.inf}, "weight_decay must be a finite number"),
        (SurrogateSettings, {"lr": math.nan}, "lr must be a finite number"),
        (SurrogateSettings, {"xgb": {"learning_rate": math.inf}}, r"xgb\.learning_rate"),
    ],
)
def test_settings_refuse_non_finite_and_out_of_range(cls: type, data: dict, message: str) -> None:
    with pytest.raises(PnasError, match=message):
        cls.from_dict(data)


def test_settings_file_that_is_not_text(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    binary = tmp_path / "settings.json"
    binary.write_bytes(b"\x89PNG\r\n\x1a\n\xff\xfe\x00")
    nan = tmp_path / "nan.json"
    nan.write_text('{"lr": NaN}')
    for path, message in (
        (binary, "is not UTF-8 text"),
        (nan, "NaN is not a finite number"),
        (tmp_path, "is a folder"),
    ):
        code, err = run_cli(
            capsys, "final-train", "--cell", CELL, "--settings", str(path), "--out-dir", str(tmp_path / "o")
        )
        assert code == 2
        assert message in err and str(path) in err and len(err.strip().splitlines()) == 1, err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["sample", "--blocks", "2", "--n", "5", "--seed", "-1", "--out", "{tmp}/c.parquet"], "--seed"),
        (["sample", "--blocks", "5", "--n", "1000000000000", "--out", "{tmp}/c.parquet"], "--n"),
        (["sample", "--blocks", "2", "--n", "0", "--out", "{tmp}/c.parquet"], "--n"),
        (["sample", "--blocks", "9", "--n", "3", "--out", "{tmp}/c.parquet"], "--blocks"),
        (["enumerate", "--out", "{tmp}"], "is a folder"),
        (["select", "--scored", "{tmp}/s.parquet", "--k", "-3", "--out", "{tmp}/o.parquet"], "--k"),
        (
            ["train", "--candidates", "{tmp}/c.parquet", "--settings", "{tmp}/s.json", "--out", "{tmp}"],
            "is a folder",
        ),
        (
            [
                "train",
                "--candidates",
                "{tmp}/c.parquet",
                "--settings",
                "{tmp}/s.json",
                "--out",
                "{tmp}/o",
                "--threads",
                "0",
            ],
            "--threads",
        ),
        (
            ["final-train", "--cell", CELL, "--settings", "{tmp}/s.json", "--out-dir", "{tmp}/file.txt"],
            "is a file",
        ),
        (
            ["figures", "efficiency", "--summary", "{tmp}/s.parquet", "--top-k", "0", "--out-dir", "{tmp}"],
            "--top-k",
        ),
        (["space", "count", "--blocks", "0"], "--blocks"),
        (["cell", "show", "1:sep3x3,٠:identity"], "not a non-negative integer"),
        (["figures", "cell", "--best-cell", "{tmp}/binary.txt", "--out-dir", "{tmp}"], "not UTF-8 text"),
    ],
)
def test_cli_bad_inputs_are_one_line_errors(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    (tmp_path / "file.txt").write_text("x")
    (tmp_path / "binary.txt").write_bytes(b"\xff\xfe\x00\x01")
    code, err = run_cli(capsys, *(a.replace("{tmp}", str(tmp_path)) for a in argv))
    assert code == 2, err
    assert message in err and len(err.strip().splitlines()) == 1, err


def test_corrupt_surrogate_folder(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = tmp_path / "surrogate"
    (folder / "xgb").mkdir(parents=True)
    parents = tmp_path / "parents.parquet"
    assert main(["enumerate", "--ops", "sep3x3", "identity", "--out", str(parents)]) == 0
    cases = [
        ("manifest.json", b"{not json", "not valid JSON"),
        ("manifest.json", b'{"predictors": 3}', "lists no predictors"),
        ("xgb/config.json", b'{"predictor": "xgb", "settings": {}, "meta": {}}', "is corrupt"),
        ("xgb/config.json", b"\xff\xfe", "not UTF-8 text"),
    ]
    for name, content, message in cases:
        (folder / "manifest.json").write_text('{"predictors": ["xgb"]}')
        (folder / name).write_bytes(content)
        argv = [
            "expand-score",
            "--parents",
            str(parents),
            "--surrogate",
            str(folder),
            "--ops",
            "sep3x3",
            "identity",
        ]
        code, err = run_cli(capsys, *argv, "--out", str(tmp_path / "scored.parquet"))
        assert code == 2 and message in err and len(err.strip().splitlines()) == 1, (name, err)


ID = parse(CELL).id


def test_cache_refuses_nan_and_folders_and_reads_read_only(tmp_path: Path) -> None:
    cache = ResultCache(tmp_path / "cache")
    path = cache.put(valid_record(CELL))
    assert cache.get(ID, "h", "d", 0)["val_acc"] == 0.5
    entry = json.loads(path.read_text())
    entry["record"]["val_acc"] = float("nan")
    path.write_text(json.dumps(entry))  # json writes NaN
    with pytest.warns(CorruptCacheEntry, match="not a finite number"):
        assert cache.get(ID, "h", "d", 0) is None
    path.unlink()
    path.mkdir()
    with pytest.raises(PnasError, match="is not a file"):
        cache.get(ID, "h", "d", 0)
    path.rmdir()
    cache.put(valid_record(CELL))
    if os.geteuid() == 0:
        pytest.skip("root ignores file modes: the read-only part needs an ordinary user")
    for p in [cache.root, *cache.root.rglob("*")]:
        p.chmod(p.stat().st_mode & ~(stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH))
    try:
        assert cache.get(ID, "h", "d", 0)["val_acc"] == 0.5
    finally:
        for p in [cache.root, *cache.root.rglob("*")]:
            p.chmod(p.stat().st_mode | stat.S_IWUSR)


def test_model_with_nan_weights_is_refused(tmp_path: Path) -> None:
    from pnas_core.training.model_io import load_model, save_model
    from pnas_core.training.network import NetworkSettings, build_network

    settings = NetworkSettings(num_classes=3, in_channels=1, cells_per_stack=1, filters=4)
    model = build_network(parse(CELL), settings)
    info = {
        "cell": parse(CELL).text,
        "network": __import__("dataclasses").asdict(settings),
        "settings": {},
        "classes": ["a", "b", "c"],
        "mean": [0.0],
        "std": [1.0],
        "input_shape": [1, 8, 8],
    }
    save_model(tmp_path / "ok.pt", model, info)
    load_model(tmp_path / "ok.pt")
    with torch.no_grad():
        next(model.parameters()).fill_(float("nan"))
    save_model(tmp_path / "nan.pt", model, info)
    with pytest.raises(PnasError, match="NaN or infinity"):
        load_model(tmp_path / "nan.pt")


def test_final_checkpoint_is_not_unpickled(tmp_path: Path) -> None:
    # A planted checkpoint whose unpickling would run code is refused (weights_only), not executed.
    from pnas_core.training.final import resume

    marker = tmp_path / "ran"

    class Planted:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    torch.save({"key": {}, "payload": Planted()}, tmp_path / "checkpoint.pt")
    messages: list[str] = []
    state = resume(tmp_path / "checkpoint.pt", None, messages.append)  # refused before any run is touched
    assert state.epoch == 0 and not marker.exists()
    assert "unreadable" in messages[0]


def test_outputs_follow_the_umask(tmp_path: Path) -> None:
    from pnas_core.surrogate import fit_data, make_predictor
    from pnas_core.surrogate.bundle import save_predictors

    cells = ["0:sep3x3,1:identity", "0:max3x3,1:identity", "1:sep3x3,0:avg3x3", "0:identity,1:identity"]
    import pandas as pd

    data = fit_data(
        pd.DataFrame({"cell": cells, "num_blocks": 1, "val_acc": [0.5, 0.6, 0.7, 0.4], "status": "ok"})
    )
    xgb = make_predictor("xgb", SurrogateSettings(xgb={"n_estimators": 5})).fit(
        data["cell"].tolist(), data["val_acc"].to_numpy()
    )
    old = os.umask(0o022)
    try:
        save_predictors({"xgb": xgb}, tmp_path / "surrogate")
    finally:
        os.umask(old)
    for path in [tmp_path / "surrogate", *(tmp_path / "surrogate").rglob("*")]:
        want = 0o755 if path.is_dir() else 0o644
        assert stat.S_IMODE(path.stat().st_mode) == want, path
