"""One source of truth for what a config may hold: the dry run's check (workflow/scripts/config_check.py,
run by rules/validate.smk) refuses exactly the configs the workflow's jobs would refuse.

The jobs' side is modelled by :func:`job_refusal`: the settings files the rules write (read back by
the settings dataclasses, as every job reads them), every ``pnas`` command line the rules build from
config values (parsed by the real ``pnas`` parser; a job must read back the config's value itself, so
``"7"`` where a number belongs is refused, as its shell word would lose the type), the library checks
the jobs make, and the Snakefile's own reads. :func:`test_commands_are_the_workflows` checks that
the command lines modelled are the ones a real dry run prints. The property test then draws hostile
values for every key and compares, in-process; a few real ``snakemake -n`` runs show the same check
guards the workflow. The rules only a dry run makes (documented in config/README.md: unknown keys, keys
the workflow fills in itself, ``quality.train_size`` at most ``quality.cells_per_size``) are spelled out in
:func:`dry_run_only`; the form of ``name`` (a folder name no job reads) is left out.
"""

from __future__ import annotations

import contextlib
import copy
import importlib.util
import io
import json
import math
import os
import re
import shlex
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from workflow_project import REPO, TINY, make_project, snakemake

from pnas_core import limits
from pnas_core.cli import build_parser
from pnas_core.cli.settings_schema import FILLED_BY_WORKFLOW
from pnas_core.errors import PnasError
from pnas_core.search.early_stop import EarlyStop
from pnas_core.search.selection import SELECTION_KEYS, Selection, load_selection
from pnas_core.search.strategies import parse_strategy
from pnas_core.space.cells import Space
from pnas_core.surrogate import SurrogateSettings
from pnas_core.training.final import FinalSettings
from pnas_core.training.train import TrainSettings

SPEC = importlib.util.spec_from_file_location(
    "config_check", REPO / "workflow" / "scripts" / "config_check.py"
)
config_check = importlib.util.module_from_spec(SPEC)
SPEC.loader.exec_module(config_check)

SCHEMAS = REPO / "workflow" / "schemas"
TOP = yaml.safe_load((SCHEMAS / "config.schema.yaml").read_text())
SECTIONS = {
    s: json.loads((SCHEMAS / f"{s}.schema.json").read_text()) for s in ("train", "surrogate", "final")
}
BASE = yaml.safe_load(TINY.read_text())
RICH = {
    **copy.deepcopy(BASE),
    "search": {
        **BASE["search"],
        "select_by": "ucb",
        "max_params": 10**6,
        "pareto": True,
        "early_stop": {"rungs": [1], "keep": 0.5, "fit_on": "all"},
    },
    "train": {**BASE["train"], "epochs": 2, "workers": 2},
    "benchmark": {"seeds": [0, 3]},
}
"""The tiny config with every optional part on: UCB, a budget, Pareto picks, early stopping, benchmark seeds."""
FINAL_DATA_KEYS = ("image_size", "val_fraction", "test_fraction", "split_seed")  # rules/common.smk


def dry_run(config: dict) -> str | None:
    """The dry run's verdict: None, or its one-line error."""
    try:
        config_check.check_config(copy.deepcopy(config))
    except config_check.ConfigError as exc:
        return str(exc)
    return None


# ------------------------------------------------------------------ the jobs' side


def with_defaults(value: Any, schema: dict) -> Any:
    """``value`` with the schema's defaults filled in where keys are missing (Snakemake's config)."""
    if not isinstance(value, dict):
        return value
    out = dict(value)
    for key, prop in schema.get("properties", {}).items():
        if key not in out and "default" in prop:
            out[key] = copy.deepcopy(prop["default"])
        if key in out and isinstance(out[key], dict) and prop.get("type") in ("object", ["object", "null"]):
            out[key] = with_defaults(out[key], prop)
    return out


def as_written(settings: dict) -> dict:
    """What a settings file written by rules/settings.smk (JSON) reads back as."""
    return json.loads(json.dumps(settings, allow_nan=False))


def settings_files(cfg: dict) -> Iterator[tuple[type, dict]]:
    """(settings class, content) of every settings file the rules write (rules/settings.smk, final.smk,
    benchmark.smk)."""
    data = {"dataset": cfg["dataset"], **({"data_root": cfg["data_root"]} if cfg.get("data_root") else {})}
    bench_seeds = cfg.get("benchmark", {}).get("seeds", [cfg["seed"]])
    for seed in [cfg["seed"], *bench_seeds, *cfg["replicates"]["seeds"]]:
        yield TrainSettings, {**cfg["train"], **data, "seed": seed}
    yield (
        SurrogateSettings,
        {**cfg["surrogate"], "max_blocks": cfg["search"]["max_blocks"], "seed": cfg["seed"]},
    )
    train = cfg["train"]
    yield (
        FinalSettings,
        {
            **{k: train[k] for k in FINAL_DATA_KEYS if k in train},
            **cfg["final"],
            **data,
            "seed": cfg["seed"],
        },
    )


def selection_file(search: dict) -> dict:
    """What settings/selection.json holds (rules/settings.smk, common.smk's SELECTION_KEYS)."""
    return as_written({key: search[key] for key in SELECTION_KEYS.values()})


def read_selection_file(search: dict) -> Selection:
    """What pnas select and pnas replicate read from settings/selection.json (load_selection)."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "selection.json"
        path.write_text(json.dumps(selection_file(search)))
        return load_selection(path)


def pnas_text(search: dict) -> str:
    """The configured search as a ``pnas replicate --strategy`` text (rules/common.smk, pnas_strategy_text);
    its selection comes from settings/selection.json."""
    by, predictors = search["select_by"], "+".join(map(str, search["predictors"]))
    head, early = f"pnas:{by}:{predictors}", search["early_stop"]
    if early is not None:
        rungs = "+".join(str(r) for r in early["rungs"])
        head = f"pnas-es:{rungs}:{early['keep']}:{early.get('fit_on', 'full')}:{by}:{predictors}"
    return head


def commands(cfg: dict) -> Iterator[tuple[list[str], dict[str, Any]]]:
    """Every ``pnas`` command line the rules build from ``cfg`` (paths as placeholders), each as if its
    part of the workflow were on (a key's value is checked whether or not it is in use), with the
    values each option must read back: (argv, {dest: config value})."""
    search, quality, rnd, train = cfg["search"], cfg["quality"], cfg["random_search"], cfg["train"]
    ops, preds = [str(op) for op in search["ops"]], [str(p) for p in search["predictors"]]
    big_b, k, seed = search["max_blocks"], search["beam_size"], cfg["seed"]
    workers = train.get("workers", 1)
    epochs = train.get("epochs", config_check.section_default("train", "epochs"))
    early = search["early_stop"]
    cache = [f"--cache-dir={cfg['cache_dir']}"]  # the `=` form: a path may start with '-'
    yield ["enumerate", "--ops", *ops, "--out", "o"], {"ops": search["ops"]}
    train_argv = ["train", "--candidates", "c", "--settings", "s", "--shard", "0"]
    shards = ["--num-shards", str(search["train_shards"]), *cache]
    threads = ["--threads", str(cfg["train_threads"] * workers), "--workers", str(workers)]
    want = {"num_shards": search["train_shards"], "workers": workers, "cache_dir": cfg["cache_dir"]}
    progress = [
        "--stage",
        "level1",
        "--progress-fd",
        "3",
    ]  # the stage's line to the terminal (rules/train.smk)
    yield [*train_argv, *shards, *threads, "--out", "o", *progress], want
    if early is not None:
        rungs = [*early["rungs"], epochs]
        for j, r in enumerate(rungs):
            resume = ["--resume-from", str(rungs[j - 1])] if j else []
            yield (
                [*train_argv, *shards, *threads, "--stop-at", str(r), *resume, "--out", "o", *progress],
                want,
            )
        yield (
            ["promote", "--candidates", "c", "--records", "r", "--keep", str(early["keep"]), "--out", "o"],
            {"keep": early["keep"]},
        )
        yield ["finish-level", *cache, "--out", "o", "r"], {"cache_dir": cfg["cache_dir"]}
    fit_on = "full" if early is None else early.get("fit_on", "full")
    st_ = ["--threads", str(cfg["surrogate_threads"])]
    yield [
        "fit-surrogate", "--records", "r", "--predictors", *preds, "--fit-on", str(fit_on), "--settings", "s", *st_,
        "--out", "o",
    ], {"predictors": search["predictors"], "fit_on": fit_on, "threads": cfg["surrogate_threads"]}  # fmt: skip
    yield (
        [
            "expand-score",
            "--parents",
            "p",
            "--surrogate",
            "s",
            "--ops",
            *ops,
            "--settings",
            "s",
            *st_,
            "--out",
            "o",
        ],
        {"ops": search["ops"]},
    )
    yield ["select", "--scored", "s", "--k", str(k), "--selection", "s", "--out", "o"], {"k": k}
    blocks = big_b if rnd["blocks"] is None else rnd["blocks"]
    n = "auto" if rnd["budget"] is None else rnd["budget"]
    argv = [
        "sample",
        "--blocks",
        str(blocks),
        "--n",
        str(n),
        "--beam-size",
        str(k),
        "--max-blocks",
        str(big_b),
    ]
    yield [*argv, "--seed", str(seed), "--ops", *ops, "--out", "o"], {
        "blocks": blocks, "n": None if n == "auto" else n, "beam_size": k, "max_blocks": big_b, "seed": seed
    }  # fmt: skip
    sizes = list(range(1, big_b)) if quality["sizes"] is None else quality["sizes"]
    for b in {*sizes, *(b + 1 for b in sizes)}:
        yield ["sample", "--blocks", str(b), "--n", str(quality["cells_per_size"]), "--seed", str(seed + 1000 * b),
               "--ops", *ops, "--out", "o"], {"blocks": b, "n": quality["cells_per_size"]}  # fmt: skip
    for b in sizes:
        yield ["eval-surrogate", "--records", "r", "r", "--blocks", str(b), "--predictors", *preds, "--settings", "s",
               "--repeats", str(quality["repeats"]), "--train-size", str(quality["train_size"]), "--seed", str(seed),
               "--out", "o"], {"blocks": b, "repeats": quality["repeats"], "train_size": quality["train_size"]}  # fmt: skip
    yield ["figures", "quality", "--quality", *["r" for _ in sizes], "--out-dir", "d"], {}
    yield (
        [
            "final-train",
            "--cell-file",
            "c",
            "--settings",
            "s",
            "--out-dir",
            "d",
            "--threads",
            str(cfg["train_threads"]),
        ],
        {"threads": cfg["train_threads"]},
    )
    rep = cfg["replicates"]  # rules/replicates.smk and common.smk's REPLICATE_STRATEGIES
    budget = [] if rep["budget"] is None else ["--budget", str(rep["budget"])]
    evolution = "evolution@population={population},sample={sample}".format(**rep["evolution"])
    for name in ["pnas", *rep["baselines"]]:  # a name no rule makes has no job: the DAG refuses it
        assert name in ("pnas", "random", "evolution", "local"), f"no rule makes replicates of {name!r}"
    for name, text in [
        ("pnas", pnas_text(search)),
        ("random", "random"),
        ("evolution", evolution),
        ("local", "local"),
    ]:
        selection = read_selection_file(search) if name == "pnas" else None
        strategy = parse_strategy(text, selection)  # pnas replicate reads its strategy text first
        if name == "evolution":
            for key in ("population", "sample"):
                if not same(getattr(strategy, key), rep["evolution"][key]):
                    raise PnasError(
                        f"pnas replicate --strategy {text!r} read {key} {getattr(strategy, key)!r}"
                    )
        yield [
            "replicate", "--strategy", text, *(["--selection", "s"] if selection else []), "--name", name, "--settings", "s", "--surrogate-settings", "s",
            "--ops", *ops, "--max-blocks", str(big_b), "--beam-size", str(k), *budget, *cache,
            "--threads", str(cfg["train_threads"]), "--out", "o",
        ], {"max_blocks": big_b, "beam_size": k, "budget": rep["budget"], "threads": cfg["train_threads"]}  # fmt: skip
    runs = ["r" for _ in rep["seeds"] for _ in ["pnas", *rep["baselines"]]]
    assert len(set(rep["seeds"])) == len(rep["seeds"]), "read_runs: a strategy has a seed twice"
    yield ["compare-replicates", "--runs", *runs, "--reference", "pnas", "--out-dir", "d"], {}
    yield ["bench-cells", "--ops", *ops, "--max-blocks", str(big_b), "--out", "o"], {"max_blocks": big_b}
    trained = ["r" for _ in cfg.get("benchmark", {}).get("seeds", [seed])]
    per_training = ["--threads", str(cfg["train_threads"])]
    yield (
        [
            "bench-table",
            "--trained",
            *trained,
            "--ops",
            *ops,
            "--max-blocks",
            str(big_b),
            *per_training,
            "--out",
            "o",
        ],
        {"threads": cfg["train_threads"]},
    )


PARSER = build_parser()


def same(parsed: Any, wanted: Any) -> bool:
    """Whether an option read back the config's value: equal and of its type (an int may stand for a
    float option; a bool is no number)."""
    if isinstance(parsed, Path):
        return isinstance(wanted, str) and Path(wanted) == parsed
    if isinstance(parsed, list):
        return isinstance(wanted, list) and len(parsed) == len(wanted) and all(map(same, parsed, wanted))
    if isinstance(parsed, bool) or isinstance(wanted, bool):
        return parsed is wanted
    if isinstance(parsed, float):
        return isinstance(wanted, int | float) and float(wanted) == parsed
    return type(parsed) is type(wanted) and parsed == wanted


def parse(argv: list[str], wanted: dict[str, Any]) -> None:
    """Parse one command line as its job does; raise unless every option reads back its value."""
    with contextlib.redirect_stderr(io.StringIO()) as err:
        try:
            args = PARSER.parse_args(argv)
        except SystemExit:
            raise PnasError(err.getvalue().strip()) from None
    for dest, value in wanted.items():
        if not same(getattr(args, dest), value):
            raise PnasError(f"pnas {argv[0]} --{dest} read {getattr(args, dest)!r} for {value!r}")


def path_refused(path: str) -> bool:
    """Whether the operating system refuses ``path`` (what every job's first open of it meets)."""
    try:
        os.lstat(os.fsencode(path))
    except (ValueError, UnicodeEncodeError):
        return True
    except OSError as exc:
        return exc.errno == 36  # ENAMETOOLONG
    return False


def dry_run_only(cfg: dict) -> None:
    """The rules no job makes, which the dry run adds (config/README.md): no unknown key outside the
    settings sections (whose jobs refuse their own), no key the workflow fills in set in a section,
    and ``quality.train_size`` at most ``quality.cells_per_size`` (else no cell is held out)."""

    def known(value: Any, schema: dict) -> None:
        if isinstance(value, dict) and schema.get("additionalProperties") is False:
            assert set(value) <= set(schema["properties"]), (
                f"unknown key {set(value) - set(schema['properties'])}"
            )
            for key, prop in schema["properties"].items():
                known(value.get(key), prop)

    known(cfg, TOP)
    for section, filled in config_check.FILLED_FROM_TOP.items():
        assert not set(filled) & set(cfg[section]), "a key the workflow fills in"
    assert cfg["quality"]["train_size"] <= cfg["quality"]["cells_per_size"], "train_size above cells_per_size"


def job_refusal(config: dict) -> str | None:
    """What the workflow's jobs (and the Snakefile's own reads) would refuse in ``config``, or None;
    with :func:`dry_run_only`'s rules too."""
    try:
        cfg = with_defaults(config, TOP)
        dry_run_only(cfg)
        for cls, values in settings_files(cfg):
            cls.from_dict(as_written(values))
        for argv, wanted in commands(cfg):
            parse(argv, wanted)
        search = cfg["search"]
        Space.from_names(search["ops"])  # every job that reads --ops
        read_selection_file(search)  # pnas select
        if search["select_by"] not in [*search["predictors"], "mean", "ucb"]:
            raise PnasError("pnas select: the scored table has no column of that predictor")
        if len(set(search["predictors"])) != len(search["predictors"]):
            raise PnasError("pnas fit-surrogate: predictor names repeat")  # surrogate.bundle.fit_predictors
        if search["early_stop"] is not None:
            early = EarlyStop.from_dict(search["early_stop"])
            assert isinstance(search["early_stop"]["rungs"], list) and isinstance(
                search["early_stop"]["keep"], float
            )
            early.budgets(
                TrainSettings.from_dict(as_written(cfg["train"])).epochs, cfg["train"].get("eval_every", 1)
            )
        tracking = [cfg["tracking"][key] for key in ("mlflow", "tensorboard")]  # common.smk's TRACK_FLAGS
        for key in (cfg["random_search"]["enabled"], cfg["quality"]["enabled"], search["pareto"], *tracking):
            assert isinstance(key, bool), "the Snakefile reads it as a condition"
        for key in ("data_root", "cache_dir"):
            if cfg[key] is not None and path_refused(cfg[key]):
                raise PnasError(f"{key}: the operating system refuses the path")
        if cfg["dataset"] in ("cifar10", "imagefolder") and not (
            cfg["data_root"] and Path(cfg["data_root"]).is_dir()
        ):
            raise PnasError(
                "the dataset's folder is missing"
            )  # pnas_core.training.data, in the first training job
    except (PnasError, AssertionError, TypeError, ValueError, KeyError, AttributeError, OverflowError) as exc:
        return f"{type(exc).__name__}: {exc}"
    return None


# ------------------------------------------------------------------ hostile values


def schema_keys() -> dict[tuple[str, ...], dict]:
    """Every key the schemas define (nested sections and xgb included), with its schema."""
    keys: dict[tuple[str, ...], dict] = {}

    def walk(prefix: tuple[str, ...], schema: dict) -> None:
        for key, prop in schema.get("properties", {}).items():
            keys[(*prefix, key)] = prop
            walk((*prefix, key), prop)

    walk((), TOP)
    for section, schema in SECTIONS.items():
        walk((section,), schema)
    return keys


KEYS = schema_keys()
DRY_RUN_ONLY = {("name",)}
"""Keys whose rule no job makes: the name is the folder of the outputs (its form is the workflow's convention)."""
PROPERTY_KEYS = sorted(k for k in KEYS if k not in DRY_RUN_ONLY)
GENERIC = [
    None, True, False, 0, 1, -1, 2, 7, 1.0, 0.5, 2.0, -0.0, 1e-4, float("nan"), float("inf"), 10**400, 2**63, 2**64,
    "", "7", "1.0", "1e-4", "cpu\n", "x\n", "rnn+rnn", "sep3x3", "a b", "x{{ 7*7 }}", [], [1], [0, 1], ["rnn", "rnn"],
    {}, {"rungs": [1], "keep": 0.5},
]  # fmt: skip
"""Values tried at every key."""


def near_bounds(prop: dict) -> list[Any]:
    """Values at and just beyond the key's own bounds, its enum members and default, slightly off."""
    values: list[Any] = []
    for keyword in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"):
        if keyword in prop:
            b = prop[keyword]
            values += [b, b - 1, b + 1, float(b), math.nextafter(b, -math.inf), math.nextafter(b, math.inf)]
    for choice in prop.get("enum", []):
        values += [choice, f"{choice}\n", f" {choice}", choice.upper()]
    if "default" in prop:
        d = prop["default"]
        values += [d, str(d), [d], f"{d}\n"]
        if isinstance(d, int) and not isinstance(d, bool):
            values += [float(d), d + 0.5]
    if "items" in prop:
        values += [[v] for v in near_bounds(prop["items"])]
    return values


PATHS = [
    "a\0b",
    "x" * 255,
    "x" * 256,
    "/".join(["y" * 255] * 16),
    "é" * 128,
    "\udc80",
    "\ud800",
    " x ",
    "a\nb",
]
"""Path-like strings: a NUL, a folder name at and beyond 255 bytes, a path beyond 4095, unencodable."""
DEVICES = ["cuda:0", "cuda:999", "cuda:1000", "cuda:٣", "cuda:-1", "cuda:", "CPU", "auto\n", "mps"]


def values_for(key: tuple[str, ...]) -> st.SearchStrategy:
    extra = PATHS if key[-1] in ("data_root", "cache_dir") else DEVICES if key[-1] == "device" else []
    return st.sampled_from([*GENERIC, *near_bounds(KEYS[key]), *extra]) | st.text(max_size=12)


def with_value(config: dict, key: tuple[str, ...], value: Any) -> dict:
    out = copy.deepcopy(config)
    node = out
    for part in key[:-1]:
        if not isinstance(node.get(part), dict):
            node[part] = {}
        node = node[part]
    node[key[-1]] = copy.deepcopy(value)
    return out


edits = st.lists(
    st.sampled_from(PROPERTY_KEYS).flatmap(lambda key: st.tuples(st.just(key), values_for(key))),
    min_size=1,
    max_size=3,
    unique_by=lambda edit: edit[0],
)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(base=st.sampled_from([BASE, RICH]), changes=edits)
def test_the_dry_run_refuses_exactly_what_a_job_would(base: dict, changes: list) -> None:
    config = base
    for key, value in changes:
        config = with_value(config, key, value)
    refused, job = dry_run(config), job_refusal(config)
    assert (refused is None) == (job is None), f"dry run: {refused}; jobs: {job}"
    if refused is not None:  # one line, naming a key it holds
        assert "\n" not in refused and len(refused) <= 520
        assert any(".".join(k) in refused or k[-1] in refused for k, _ in changes) or "search" in refused, (
            refused
        )


def test_the_check_imports_nothing_heavy() -> None:
    """The workflow imports the check at parse time (every SLURM job re-parses it): no torch, numpy or
    pandas, and of pnas_core only its standard-library rules (pnas_core.limits, pnas_core.rungs)."""
    code = (
        "import sys; sys.path.insert(0, sys.argv[1]); import config_check; "
        "print(' '.join(sorted(m for m in sys.modules if m.split('.')[0] in "
        "('torch', 'numpy', 'pandas', 'pyarrow', 'pnas_core'))))"
    )
    scripts = str(REPO / "workflow" / "scripts")
    loaded = subprocess.run([sys.executable, "-c", code, scripts], capture_output=True, text=True, check=True)
    assert loaded.stdout.split() == ["pnas_core", "pnas_core.limits", "pnas_core.rungs"]


def test_the_shipped_configs_pass_both() -> None:
    for name in ("config/config.yaml", "config/paper.yaml", "config/bench_digits.yaml"):
        config = yaml.safe_load((REPO / name).read_text())
        if config.get("dataset", "cifar10") == "cifar10":
            config["dataset"] = "digits"  # no CIFAR-10 folder here: the rest of the config is what is checked
        assert dry_run(config) is None and job_refusal(config) is None, name
    assert dry_run(RICH) is None and job_refusal(RICH) is None


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [  # the cases: each passed `snakemake -n`, and the seed one trained all of level 1 first
        (("seed",), 2**63, "seed: 9223372036854775808 is greater than the maximum of 2147483647"),
        (("surrogate", "xgb", "subsample"), 2, "surrogate.xgb.subsample: 2 is greater than the maximum of 1"),
        (("train", "image_size"), 100000, "train.image_size: 100000 is greater than the maximum of 1024"),
        (("train", "epochs"), 1.0, "train.epochs: 1.0 is not of type integer"),
        (("train", "device"), "cpu\n", "train.device: 'cpu\\n' is not valid"),
        (("name",), "tiny\n", "name: 'tiny\\n' is not valid"),
        (("search", "beam_size"), 10**7, "search.beam_size: 10000000 is greater than the maximum of 1000000"),
        (("random_search", "blocks"), 0, "random_search.blocks: 0 is less than the minimum of 1"),
        (("cache_dir",), "a\0b", "cache_dir: 'a\\x00b' is not a usable path"),
        (("surrogate", "weighted_of"), "rnn+rnn", "surrogate.weighted_of: 'rnn+rnn' is not valid"),
    ],
)
def test_bad_values_are_refused_naming_the_key(key: tuple[str, ...], value: Any, message: str) -> None:
    config = with_value(BASE, key, value)
    assert message in (dry_run(config) or "")
    assert job_refusal(config) is not None or key == ("name",)


def test_bounds_of_every_key() -> None:
    # Every integer key has an upper bound.
    for key, prop in KEYS.items():
        types = prop.get("type", [])
        if "integer" in types or (prop.get("items", {}).get("type") == "integer"):
            assert "maximum" in prop or "maximum" in prop.get("items", {}), key
    assert {s: tuple(keys) for s, keys in config_check.FILLED_FROM_TOP.items()} == FILLED_BY_WORKFLOW
    assert TOP["properties"]["seed"]["maximum"] == limits.MAX_SEED
    assert TOP["properties"]["benchmark"]["properties"]["seeds"]["items"]["maximum"] == limits.MAX_SEED
    assert TOP["properties"]["replicates"]["properties"]["seeds"]["items"]["maximum"] == limits.MAX_SEED


def printed_commands(root: Path, config: dict) -> list[list[str]]:
    """The ``pnas`` command lines of every job a real dry run plans for ``config`` (all targets)."""
    (root / "cfg.yaml").write_text(yaml.safe_dump(config))
    proc = snakemake(
        root, "-n", "-p", "--forceall", "all", "bench_table", "replicates", configs=("cfg.yaml",)
    )
    lines = [line.removeprefix("Shell command: ") for line in proc.stdout.splitlines()]
    commands = [re.split(" 2?> ", line)[0] for line in lines if line.startswith("pnas ")]
    redirection = re.compile(r"\d>&\d")  # train's `3>&2`: bash's, not an argument
    return [
        [word for word in shlex.split(command) if not redirection.fullmatch(word)] for command in commands
    ]


PLACEHOLDERS = {"o", "c", "s", "r", "p", "d"}
"""The paths :func:`commands` writes in place of the workflow's."""


def normalised(argv: list[str]) -> tuple[str, ...]:
    """A command line without its paths, shard index and stage name: what the config decides."""
    words, skip = [], False
    for word in argv:
        if skip or word in ("--shard", "--stage"):
            skip = not skip
            continue
        if not word.startswith("results/") and word not in PLACEHOLDERS:
            words.append(word)
    return tuple(words)


def test_commands_are_the_workflows(tmp_path: Path) -> None:
    # The command lines job_refusal parses are those a real dry run of the workflow prints.
    root = make_project(tmp_path)
    printed = {normalised(argv[1:]) for argv in printed_commands(root, RICH)}
    modelled = {normalised(argv) for argv, _ in commands(with_defaults(RICH, TOP))}
    assert modelled <= printed, modelled - printed
    only_paths = {"merge-records", "summarize", "export"}
    assert {words[0] for words in printed} - {words[0] for words in modelled} == only_paths


@pytest.mark.slow
def test_a_real_dry_run_makes_the_same_check(tmp_path: Path) -> None:
    # The cases through `snakemake -n` itself: refused before any job, one line naming the key.
    root = make_project(tmp_path)
    for key, value, message in [
        (("seed",), 2**63, "seed: 9223372036854775808 is greater than the maximum"),
        (("train", "epochs"), 1.0, "train.epochs: 1.0 is not of type integer"),
        (("surrogate", "device"), "cpu\n", "surrogate.device: 'cpu\\n' is not valid"),
    ]:
        (root / "bad.yaml").write_text(yaml.safe_dump(with_value(BASE, key, value)))
        proc = snakemake(root, "-n", check=False, configs=("bad.yaml",))
        lines = [line for line in (proc.stdout + proc.stderr).splitlines() if line.startswith("pnas config:")]
        assert proc.returncode != 0 and len(lines) == 1 and message in lines[0], proc.stderr[-2000:]
    assert not (root / "results").exists()


def alias_bomb(levels: int = 12) -> str:
    """YAML of a few hundred bytes whose aliases expand to 10**levels strings."""
    lines = ['a0: &a0 ["x", "x", "x", "x", "x", "x", "x", "x", "x", "x"]']
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]" for i in range(1, levels)]
    return "\n".join(lines) + "\n"


@pytest.mark.slow
def test_an_alias_bomb_config_is_refused_at_once(tmp_path: Path) -> None:
    # It hung the check at 100% CPU (formatting the value for the error), ignoring Ctrl-C.
    root = make_project(tmp_path)
    (root / "bomb.yaml").write_text("train:\n" + "".join(f"  {line}\n" for line in alias_bomb().splitlines()))
    proc = snakemake(root, "-n", check=False, configs=("bomb.yaml",), timeout=120)
    assert proc.returncode != 0
    assert (
        "pnas config: the config holds more than 10,000 values (YAML aliases?)" in proc.stdout + proc.stderr
    )
    big = root / "big.yaml"
    big.write_text(f"name: big\n# {'x' * (2 << 20)}\n")
    proc = snakemake(root, "-n", check=False, configs=("big.yaml",))
    assert f"pnas config: config file {big} is {big.stat().st_size:,} bytes" in proc.stdout + proc.stderr


def test_the_check_is_bounded_in_process() -> None:
    bomb = yaml.safe_load(alias_bomb())
    for config in ({**BASE, "train": bomb}, {**BASE, "name": ["x" * 200_000] * 10}):
        message = dry_run(config)
        assert message is not None and "(YAML aliases?)" in message and len(message) < 200


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        ({"search": {"ops": ["sep3x3", "conv9x9"]}}, "conv9x9"),
        ({"search": {"beam_size": 0}}, "search.beam_size: 0 is less than the minimum of 1"),
        ({"search": {"max_blocks": 6}}, "search.max_blocks"),
        ({"search": {"train_shards": "two"}}, "search.train_shards: 'two' is not of type integer"),
        ({"seed": 1.5}, "seed: 1.5 is not of type integer"),
        ({"final": {"epoch": 3}}, "final.epoch: unknown key"),
        ({"surrogate": {"hiden_dim": 3}}, "surrogate.hiden_dim: unknown key"),
        ({"train": {"filtres": 8}}, "train.filtres: unknown key"),
        ({"train": {"lr": float("inf")}}, "train.lr: inf is not a finite number"),
        ({"train": {"lr": 10**400}}, "train.lr: 1000"),
        ({"train": {"lr": -0.1}}, "train.lr"),
        ({"final": {"drop_path": 1.5}}, "final.drop_path"),
        ({"surrogate": {"xgb": {"max_depht": 2}}}, "surrogate.xgb.max_depht: unknown key"),
        ({"train": {"seed": 3}}, "train.seed: set by the key seed"),
        ({"quality": {"train_size": 50}}, "quality.train_size"),
        ({"dataset": "imagefolder"}, "dataset 'imagefolder' needs data_root"),
    ],
)
def test_bad_config_messages(edit: dict, message: str) -> None:
    config = copy.deepcopy(BASE)
    for key, value in edit.items():
        config[key] = {**config.get(key, {}), **value} if isinstance(value, dict) else value
    assert message in (dry_run(config) or "")


HOSTILE_STRINGS = [
    "x{% endraw %}{{ self.__init__.__globals__ }}{% raw %}",
    "{{ 7*7 }}{# c #}",
    ".. raw:: html\n\n   <script>alert(1)</script>",
    "`x`_ |sub| :math:`1`",
    "$(touch MARKER); `touch MARKER`; 'q' \"dq\"",
    "cpu\n",
]
FREE_STRINGS = {("data_root",), ("cache_dir",)}
"""The keys that take any string (a path): test_report_text shows they stay literal in shell and report."""


def test_every_string_key_refuses_hostile_strings_or_takes_any() -> None:
    # A string-valued key either takes any string (a path, quoted wherever it is used) or the dry run
    # refuses template, markup and shell syntax in it, so nothing reaches a report, caption or shell.
    string_keys = {
        k
        for k, p in KEYS.items()
        if "string" in p.get("type", []) or p.get("items", {}).get("type") == "string"
    }
    assert FREE_STRINGS <= string_keys and len(string_keys) >= 15
    for key in sorted(string_keys - FREE_STRINGS):
        list_valued = KEYS[key].get("type") == "array"
        for text in HOSTILE_STRINGS:
            config = with_value(RICH, key, [text] if list_valued else text)
            message = dry_run(config)
            assert message is not None and ".".join(key) in message and "\n" not in message, (key, text)
    for key in FREE_STRINGS:
        for text in HOSTILE_STRINGS:
            assert dry_run(with_value(BASE, key, text)) is None


def test_unknown_and_filled_keys_stay_dry_run_checks() -> None:
    assert "typo_key: unknown key" in dry_run({**BASE, "typo_key": 1})
    assert re.search(r"train\.seed: set by the key seed", dry_run(with_value(BASE, ("train", "seed"), 3)))
    assert "final.epoch: unknown key" in dry_run(with_value(BASE, ("final", "epoch"), 3))
    assert "surrogate.xgb.max_depht: unknown key" in dry_run(
        with_value(BASE, ("surrogate", "xgb"), {"max_depht": 2})
    )
