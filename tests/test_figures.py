"""Figures from cached results: every kind through the CLI, byte-stable output, and CSV numbers
checked against independent computations on the inputs."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from scipy.stats import spearmanr

from pnas_core.cli import main
from pnas_core.names import FIGURE_STEMS
from pnas_core.search.quality import QUALITY_SCHEMA
from pnas_core.space.cells import OPS, PNASNET5, Space, cell_id, parse, tokens_to_texts
from pnas_core.stats import best_so_far, top_k_mean_so_far

OP_COST = {name: cost for name, cost in zip(OPS, (3, 5, 7, 6, 0, 0, 0, 4), strict=True)}
KINDS = tuple(FIGURE_STEMS)
STEMS = FIGURE_STEMS


def _fake_train(texts: list[str], rng: np.random.Generator) -> pd.DataFrame:
    """Training-record columns for cells: accuracy grows with size and conv ops, plus noise."""
    rows = []
    for text in texts:
        cell = parse(text)
        ops = [OPS[o] for bl in cell.blocks for o in (bl.op1, bl.op2)]
        cost = sum(OP_COST[o] for o in ops)
        acc = 0.55 + 0.04 * cell.num_blocks + 0.004 * cost + rng.normal(0, 0.02)
        params = 20_000 + 3_000 * cost + int(rng.integers(0, 500))
        status = "ok" if rng.random() > 0.04 else "diverged"
        rows.append(
            {
                "cell": text,
                "cell_id": cell_id(text),
                "num_blocks": cell.num_blocks,
                "val_acc": float(np.clip(acc, 0, 1)) if status == "ok" else None,
                "params": params,
                "mult_adds": params * 40,
                "status": status,
                "train_seconds": 1.0,
            }
        )
    return pd.DataFrame(rows)


def make_inputs(
    root: Path, ops: tuple[str, ...], max_blocks: int, beam: int, n_random: int, seed: int = 0
) -> dict[str, Any]:
    """Write summary, random-search records and candidates, a quality table and best_cell.txt."""
    rng = np.random.default_rng(seed)
    space = Space.from_names(ops, max_blocks)
    frames = []
    parents = space.one_block_tokens()
    level_tokens = parents
    for level in range(1, max_blocks + 1):
        if level > 1:
            children, parent_idx = space.expand(parents)
            pick = rng.choice(len(children), size=min(beam, len(children)), replace=False)
            level_tokens = children[pick]
            parent_texts = tokens_to_texts(parents)
            parent_col = [parent_texts[i] for i in parent_idx[pick]]
        else:
            parent_col = [None] * len(level_tokens)
        texts = tokens_to_texts(level_tokens)
        df = _fake_train(texts, rng)
        df.insert(0, "level", level)
        df["parent"] = parent_col
        truth = df["val_acc"].fillna(0.6).to_numpy()
        for pred, noise in (("rnn", 0.02), ("mlp", 0.03), ("xgb", 0.04)):
            df[f"pred_{pred}"] = truth + rng.normal(0, noise, len(df)) if level > 1 else np.nan
            df[f"std_{pred}"] = rng.uniform(0.002, 0.01, len(df)) if level > 1 else np.nan
        df["pred_mean"] = df[["pred_rnn", "pred_mlp", "pred_xgb"]].mean(axis=1)
        df["score"] = df["pred_mean"]
        pred_columns = [c for c in df.columns if c.startswith(("pred_", "std_")) or c == "score"]
        df[pred_columns] = df[pred_columns].astype("float32")  # as pnas_core.search.beam writes them
        df = df.sort_values("score", ascending=False, kind="stable") if level > 1 else df
        df["rank"] = range(len(df))
        frames.append(df)
        ok = df["status"] == "ok"
        parents = level_tokens[np.argsort(-df["val_acc"].where(ok, 0).to_numpy())[: max(2, beam // 4)]]
    summary = pd.concat(frames, ignore_index=True)
    summary.insert(1, "models_trained", range(1, len(summary) + 1))
    paths = {
        name: root / f"{name}.parquet"
        for name in ("summary", "random_trained", "random_candidates", "quality")
    }
    summary.to_parquet(paths["summary"], index=False)

    sizes = rng.integers(1, max_blocks + 1, n_random)
    texts = [tokens_to_texts(space.sample_tokens(int(b), 1, rng))[0] for b in sizes]
    texts = list(dict.fromkeys(texts))
    cand = pd.DataFrame({"cell": texts, "rank": rng.permutation(len(texts)) + 1})
    cand.to_parquet(paths["random_candidates"], index=False)
    _fake_train(texts, rng).sample(frac=1.0, random_state=1).to_parquet(paths["random_trained"], index=False)

    quality_files = []
    for b in range(1, max_blocks):
        rows = []
        for pred, base in (("rnn", 0.6), ("mlp", 0.55), ("xgb", 0.4), ("mean", 0.62)):
            for split, drop in (("train", 0.0), ("next", 0.2)):
                for repeat in range(3):
                    rho = base - drop + rng.normal(0, 0.05)
                    rows.append(
                        {
                            "predictor": pred,
                            "blocks": b,
                            "repeat": repeat,
                            "split": split,
                            "rho": np.nan if (b, pred, repeat) == (1, "xgb", 2) else rho,
                            "n_train": 40,
                            "n_eval": 12,
                        }
                    )
        quality_files.append(root / f"quality_b{b}.parquet")
        pq.write_table(pa.Table.from_pylist(rows, schema=QUALITY_SCHEMA), quality_files[-1])
    paths["quality"] = quality_files
    paths["best"] = root / "best_cell.txt"
    paths["best"].write_text(f"{PNASNET5}\n# level 5, val_acc 0.9\n")
    return paths


def cli_args(kind: str, paths: dict[str, Any], out: Path) -> list[str]:
    """The ``pnas figures`` argument list of one kind."""
    random = [
        "--random-trained",
        str(paths["random_trained"]),
        "--random-candidates",
        str(paths["random_candidates"]),
    ]
    summary = ["--summary", str(paths["summary"])]
    extra = {
        "quality": ["--quality", *map(str, paths["quality"])],
        "efficiency": [*summary, *random],
        "predictions": summary,
        "distribution": [*summary, *random],
        "pareto": [*summary, *random],
        "cell": ["--best-cell", str(paths["best"])],
    }[kind]
    return ["figures", kind, "--out-dir", str(out), *extra]


@pytest.fixture(scope="module")
def inputs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    return make_inputs(tmp_path_factory.mktemp("inputs"), ("sep3x3", "max3x3", "identity"), 3, 12, 30)


@pytest.fixture(scope="module")
def drawn(inputs: dict[str, Any], tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """Every figure drawn twice: in this process and in a fresh interpreter."""
    first, second = tmp_path_factory.mktemp("first"), tmp_path_factory.mktemp("second")
    for kind in KINDS:
        assert main(cli_args(kind, inputs, first)) == 0
    script = "import sys; from pnas_core.cli import main\n" + "".join(
        f"assert main({cli_args(kind, inputs, second)!r}) == 0\n" for kind in KINDS
    )
    subprocess.run([sys.executable, "-c", script], check=True, capture_output=True)
    return first, second


def test_every_figure_written_and_byte_stable(drawn: tuple[Path, Path]) -> None:
    first, second = drawn
    for stem in STEMS.values():
        for ext in ("png", "pdf", "csv"):
            a, b = first / f"{stem}.{ext}", second / f"{stem}.{ext}"
            assert a.stat().st_size > 0, a
            assert a.read_bytes() == b.read_bytes(), f"{a.name} differs between runs"
    assert not list(first.glob(".*.tmp"))


def test_efficiency_csv_matches_independent_curves(inputs: dict[str, Any], drawn: tuple[Path, Path]) -> None:
    table = pd.read_csv(drawn[0] / "search_efficiency.csv")
    summary = pd.read_parquet(inputs["summary"])
    pnas = table[table["method"] == "PNAS"]
    acc = summary["val_acc"].where(summary["status"] == "ok")
    assert pnas["models_trained"].tolist() == summary["models_trained"].tolist()
    np.testing.assert_array_equal(pnas["best_so_far"].to_numpy(), acc.cummax().ffill().to_numpy())
    expected_top5 = [
        np.mean(sorted(acc[: i + 1].dropna())[-5:]) if acc[: i + 1].notna().sum() >= 5 else np.nan
        for i in range(len(acc))
    ]
    np.testing.assert_allclose(pnas["top_k_mean_so_far"], expected_top5, rtol=0, atol=1e-12)
    assert pnas["level"].tolist() == summary["level"].tolist()

    rand = table[table["method"] == "random"]
    rec = pd.read_parquet(inputs["random_trained"])
    order = pd.read_parquet(inputs["random_candidates"]).sort_values("rank")["cell"]
    assert rand["cell"].tolist() == order.tolist()
    by_cell = rec.set_index("cell")
    racc = by_cell.loc[order, "val_acc"].where(by_cell.loc[order, "status"] == "ok").reset_index(drop=True)
    np.testing.assert_array_equal(rand["best_so_far"].to_numpy(), racc.cummax().ffill().to_numpy())
    assert rand["models_trained"].tolist() == list(range(1, len(order) + 1))


def test_predictions_csv_rho_matches_scipy(inputs: dict[str, Any], drawn: tuple[Path, Path]) -> None:
    table = pd.read_csv(drawn[0] / "predicted_vs_true.csv")
    summary = pd.read_parquet(inputs["summary"])
    # score equals pred_mean in the fixture, so it is drawn once, as the selection score
    assert set(table["predictor"]) == {"score", "rnn", "mlp", "xgb"}
    assert sorted(table["level"].unique()) == [2, 3]
    checked = 0
    for (level, pred), part in table.groupby(["level", "predictor"]):
        rows = summary[(summary["level"] == level) & (summary["status"] == "ok")]
        col = "score" if pred == "score" else f"pred_{pred}"
        expected = spearmanr(rows[col], rows["val_acc"]).statistic
        assert part["spearman_rho"].nunique() == 1
        assert part["spearman_rho"].iloc[0] == pytest.approx(expected, abs=1e-12)
        assert part["n_cells"].iloc[0] == len(rows) == len(part)
        checked += 1
    assert checked == 8


def test_distribution_csv_matches_numpy(inputs: dict[str, Any], drawn: tuple[Path, Path]) -> None:
    table = pd.read_csv(drawn[0] / "accuracy_by_size.csv").set_index(["method", "num_blocks"])
    summary = pd.read_parquet(inputs["summary"])
    for b, part in summary.groupby("num_blocks"):
        ok = part.loc[part["status"] == "ok", "val_acc"]
        row = table.loc[("PNAS", b)]
        assert row["n_trained"] == len(part) and row["n_ok"] == len(ok)
        assert row["median"] == pytest.approx(np.median(ok), abs=1e-12)
        assert row["q1"] == pytest.approx(np.quantile(ok, 0.25), abs=1e-12)
        assert row["max"] == pytest.approx(ok.max(), abs=1e-12)
    assert "random" in table.index.get_level_values("method")


def test_pareto_front_matches_brute_force(drawn: tuple[Path, Path]) -> None:
    table = pd.read_csv(drawn[0] / "accuracy_vs_size.csv")
    for _, part in table.groupby("method"):
        size, acc = part["params"].to_numpy(), part["val_acc"].to_numpy()
        for i in range(len(part)):
            dominated = any(j != i and size[j] <= size[i] and acc[j] >= acc[i] for j in range(len(part)))
            assert part["on_front"].iloc[i] == (not dominated)


def test_quality_csv_is_mean_and_std_over_repeats(inputs: dict[str, Any], drawn: tuple[Path, Path]) -> None:
    table = pd.read_csv(drawn[0] / "predictor_quality.csv")
    quality = pd.concat([pd.read_parquet(p) for p in inputs["quality"]], ignore_index=True)
    assert len(table) == len(quality.groupby(["blocks", "predictor", "split"]))
    assert table["split"].drop_duplicates().tolist() == ["train", "next"]
    for row in table.itertuples():
        rho = quality.loc[
            (quality["blocks"] == row.blocks)
            & (quality["predictor"] == row.predictor)
            & (quality["split"] == row.split),
            "rho",
        ].dropna()
        assert row.rho_mean == pytest.approx(np.mean(rho), abs=1e-12)
        assert row.rho_std == pytest.approx(np.std(rho, ddof=1), abs=1e-12)
        assert row.repeats == len(rho) == (2 if (row.blocks, row.predictor) == (1, "xgb") else 3)


def test_quality_row_given_twice_is_an_error(
    inputs: dict[str, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    first = str(inputs["quality"][0])
    assert main(["figures", "quality", "--quality", first, first, "--out-dir", str(tmp_path)]) == 2
    assert f"appears more than once, in {first}" in capsys.readouterr().err


def test_cell_csv_lists_every_half(drawn: tuple[Path, Path]) -> None:
    table = pd.read_csv(drawn[0] / "best_cell.csv")
    cell = parse(PNASNET5)
    halves = [(i, OPS[o]) for bl in cell.blocks for i, o in ((bl.in1, bl.op1), (bl.in2, bl.op2))]
    assert list(zip(table["input"], table["op"], strict=True)) == halves
    assert table.groupby("block")["depth"].first().tolist() == [1, 1, 1, 1, 2]


def test_missing_predictor_columns_are_skipped(inputs: dict[str, Any], tmp_path: Path) -> None:
    summary = pd.read_parquet(inputs["summary"]).drop(columns=["pred_xgb", "std_xgb", "pred_mean", "score"])
    summary.to_parquet(tmp_path / "summary.parquet")
    assert (
        main(
            [
                "figures",
                "predictions",
                "--summary",
                str(tmp_path / "summary.parquet"),
                "--out-dir",
                str(tmp_path),
            ]
        )
        == 0
    )
    table = pd.read_csv(tmp_path / "predicted_vs_true.csv")
    assert set(table["predictor"]) == {"rnn", "mlp"}


def test_running_curves_skip_failed_runs() -> None:
    acc = np.array([np.nan, 0.5, np.nan, 0.4, 0.7, 0.6])
    np.testing.assert_array_equal(best_so_far(acc), [np.nan, 0.5, 0.5, 0.5, 0.7, 0.7])
    np.testing.assert_allclose(top_k_mean_so_far(acc, 2), [np.nan, np.nan, np.nan, 0.45, 0.6, 0.65])


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (
            ["figures", "predictions", "--summary", "{tmp}/nope.parquet"],
            "summary file {tmp}/nope.parquet does not exist",
        ),
        (
            ["figures", "quality", "--quality", "{tmp}/bad.parquet"],
            "lacks column(s) predictor, blocks, split, n_eval",
        ),
        (
            ["figures", "pareto", "--summary", "{summary}", "--random-trained", "{summary}"],
            "give both or neither",
        ),
        (["figures", "cell", "--cell", "0:sep3x3,1:bogus"], "unknown op 'bogus'"),
        (
            ["figures", "predictions", "--summary", "{tmp}/level1.parquet"],
            "summary {tmp}/level1.parquet holds no predictions",
        ),
        (
            ["figures", "cell", "--best-cell", "{tmp}/none.txt"],
            "best-cell file {tmp}/none.txt does not exist",
        ),
    ],
)
def test_bad_input_is_one_line_error(
    argv: list[str], message: str, inputs: dict[str, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pd.DataFrame({"b": [1], "repeat": [0], "rho": [0.5], "n_train": [3]}).to_parquet(tmp_path / "bad.parquet")
    summary = pd.read_parquet(inputs["summary"])
    summary[summary["level"] == 1].to_parquet(tmp_path / "level1.parquet")
    fill = {"tmp": str(tmp_path), "summary": str(inputs["summary"])}
    argv = [a.format(**fill) for a in argv]
    assert main([*argv, "--out-dir", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message.format(**fill) in err
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("stem", STEMS.values())
def test_report_caption_renders(stem: str) -> None:
    """Each figure's caption renders with the default config (no unknown key) as warning-free RST."""
    import jinja2
    import yaml
    from docutils.core import publish_parts

    root = Path(__file__).resolve().parents[1]
    config = yaml.safe_load((root / "config" / "config.yaml").read_text())
    template = (root / "workflow" / "report" / f"{stem}.rst").read_text()
    text = (
        jinja2.Environment(undefined=jinja2.StrictUndefined)
        .from_string(template)
        .render(snakemake=SimpleNamespace(config=config))
    )
    html = publish_parts(text, writer="html", settings_overrides={"halt_level": 2, "report_level": 2})["body"]
    assert config["name"] in html and "{{" not in html


ACCURACY_STEMS = ("search_efficiency", "accuracy_by_size", "accuracy_vs_size", "predicted_vs_true")


def test_legends_sit_outside_the_data_and_accuracy_reads_in_percent(
    inputs: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pnas_core.figures import style

    ticks: dict[str, list[str]] = {}
    save = style.save_figure

    def checked_save(fig, out_dir, stem, table):
        fig.canvas.draw()
        renderer = fig.canvas.get_renderer()
        assert all(ax.get_legend() is None for ax in fig.axes), f"{stem}: a legend inside an axes"
        for legend in fig.legends:
            box = legend.get_window_extent(renderer)
            assert not any(box.overlaps(ax.get_window_extent(renderer)) for ax in fig.axes), stem
        ticks[stem] = [t.get_text() for ax in fig.axes for t in ax.get_yticklabels() if t.get_text()]
        return save(fig, out_dir, stem, table)

    monkeypatch.setattr(style, "save_figure", checked_save)
    for kind in KINDS:
        assert main(cli_args(kind, inputs, tmp_path)) == 0
    assert set(ticks) == set(STEMS.values())
    for stem in ACCURACY_STEMS:
        assert ticks[stem] and all(t.endswith("%") for t in ticks[stem]), (stem, ticks[stem])


def test_accuracy_bands_stay_within_zero_and_one() -> None:
    from pnas_core.figures.simulation import simulation_figure
    from pnas_core.search.comparison import curves
    from pnas_core.stats import t_interval

    # Two seeds far apart near 1.0: the t interval of their mean reaches past 1 and below 0.
    acc = {
        "random": np.array([[0.90, 0.99, 1.0], [0.10, 0.50, 0.60]]),
        "pnas:mean": np.array([[0.98, 0.999, 1.0], [0.05, 0.30, 0.99]]),
    }
    _, lo, hi = t_interval(np.maximum.accumulate(acc["random"], axis=1))
    assert hi.max() > 1 and lo.min() < 0  # what an unclipped interval gives
    table = curves(acc, top_k=2)
    bands = table[["best_lo", "best_hi", "topk_lo", "topk_hi"]].to_numpy()
    assert np.nanmin(bands) >= 0 and np.nanmax(bands) <= 1
    fig = simulation_figure(table, seeds=2, top_k=2, title="bands")
    drawn = [p.vertices[:, 1] for ax in fig.axes for c in ax.collections for p in c.get_paths()]
    assert drawn and min(v.min() for v in drawn) >= 0 and max(v.max() for v in drawn) <= 1
