# Shared by every rule: paths, code hashes, resources (the config itself is checked by validate.smk,
# included first). No domain math here: budgets and cell counts come from the pnas command that
# needs them. Parse-time work stays cheap (no Parquet reads, no torch): every SLURM job re-parses this file.
import os
import re
import shlex
from pathlib import Path

# (workflow/scripts is on sys.path: validate.smk, included first, put it there.)
# command_hash("train_cmds.run_train"): hash of everything that pnas command runs, found with ast;
# every rule carries the hash of its command as `params.code`, so editing any module it runs reruns it.
from code_closure import command_hash, script_hash  # noqa: E402


NAME = config["name"]
B = config["search"]["max_blocks"]
K = config["search"]["beam_size"]
SHARDS = config["search"]["train_shards"]
OPS = config["search"]["ops"]
LEVELS = list(range(1, B + 1))
CACHE_DIR = config["cache_dir"]
RESULTS = f"results/{NAME}"
FIGURES = f"{RESULTS}/figures"
FINAL = f"{RESULTS}/final"
RANDOM_BLOCKS = B if config["random_search"]["blocks"] is None else config["random_search"]["blocks"]
QUALITY_SIZES = list(range(1, B)) if config["quality"]["sizes"] is None else config["quality"]["sizes"]


def uses_gpu(section):
    """Whether a config section's settings put its jobs on a GPU (they then declare `gpu=1`)."""
    return str(config[section].get("device", "auto")).startswith("cuda")


TRAIN_GPU = uses_gpu("train")
FINAL_GPU = uses_gpu("final")
SURROGATE_GPU = uses_gpu("surrogate")
WARM_START = config["surrogate"].get("warm_start", False)
TRAIN_WORKERS = config["train"].get("workers", 1)
EARLY_STOP = config["search"]["early_stop"]
RUNG_EPOCHS = [*EARLY_STOP["rungs"], train_value("epochs")] if EARLY_STOP else []
"""Epochs each rung of a level trains to (the last: the full budget); empty without early stopping."""


wildcard_constraints:
    name=re.escape(NAME),
    level=r"\d+",
    shard=r"\d+",
    stage=r"level\d+|level\d+/rung\d+|random|quality/b\d+|bench/seed\d+",
    b=r"\d+",


FINAL_DATA_KEYS = ("image_size", "val_fraction", "test_fraction", "split_seed")
"""Dataset keys the final training takes from `train:` unless `final:` sets them: the test split must
be the one the search never saw."""
FIGURE_STEMS = {
    "quality": "predictor_quality",
    "efficiency": "search_efficiency",
    "predictions": "predicted_vs_true",
    "distribution": "accuracy_by_size",
    "pareto": "accuracy_vs_size",
    "cell": "best_cell",
}
"""The file stem of each `pnas figures` kind: pnas_core.names.FIGURE_STEMS (tested equal; no pnas_core
import at parse time)."""
FIGURE_KINDS = {FIGURE_STEMS[kind]: kind for kind in ("efficiency", "predictions", "distribution", "pareto")}
"""The figures drawn from the search summary (rules/figures.smk, one job each), stem -> kind."""


BENCH_SEEDS = config.get("benchmark", {}).get("seeds", [config["seed"]])


def train_settings(seed):
    """The training settings of every candidate, trained with global seed ``seed``."""
    return {
        **config["train"],
        "dataset": config["dataset"],
        **({"data_root": config["data_root"]} if config.get("data_root") else {}),
        "seed": seed,
    }


def stage_inputs(wildcards):
    """Candidates and training settings of a training stage: a benchmark seed's stage trains every
    cell of the space with that seed, every other stage its own candidates with the global seed."""
    bench = re.fullmatch(r"bench/seed(\d+)", wildcards.stage)
    if bench:
        return {
            "candidates": f"{RESULTS}/bench/candidates.parquet",
            "settings": f"{RESULTS}/settings/train_seed{bench[1]}.json",
        }
    rung = re.fullmatch(r"level(\d+)/rung(\d+)", wildcards.stage)
    if rung:
        return {
            "candidates": rung_candidates(rung[1], rung[2]),
            "settings": f"{RESULTS}/settings/train.json",
        }
    return {
        "candidates": f"{RESULTS}/{wildcards.stage}/candidates.parquet",
        "settings": f"{RESULTS}/settings/train.json",
    }


def rung_candidates(level, epochs):
    """What the rung of ``level`` that trains to ``epochs`` trains: the level's candidates at the
    first rung, then those the previous rung promoted."""
    j = RUNG_EPOCHS.index(int(epochs))
    if j == 0:
        return f"{level_dir(level)}/candidates.parquet"
    return f"{level_dir(level)}/rung{RUNG_EPOCHS[j - 1]}/promoted.parquet"


def stop_flags(wildcards):
    """`pnas train` flags of a rung stage (stop at its epoch, resume from the previous rung's)."""
    rung = re.fullmatch(r"level\d+/rung(\d+)", wildcards.stage)
    if not rung:
        return ""
    j = RUNG_EPOCHS.index(int(rung[1]))
    return f"--stop-at {rung[1]}" + (f" --resume-from {RUNG_EPOCHS[j - 1]}" if j else "")


def level_dir(level):
    return f"{RESULTS}/level{level}"


def trained_upto(level):
    """Trained records of levels 1..level: what the surrogate of that level is fit on."""
    return [f"{level_dir(b)}/trained.parquet" for b in range(1, int(level) + 1)]


def final_outputs():
    return [f"{FINAL}/metrics.json", f"{FINAL}/curve.png", f"{FINAL}/model.torchscript.pt"]


TRACK_FLAGS = [f"--{key}" for key in ("mlflow", "tensorboard") if config["tracking"][key]]


def tracking_outputs():
    """results/<name>/tracking when a `tracking` key is on (rules/track.smk), else nothing."""
    return [f"{RESULTS}/tracking"] if TRACK_FLAGS else []


def search_outputs():
    return [f"{RESULTS}/summary.parquet", f"{RESULTS}/summary.csv", f"{RESULTS}/summary.html", f"{RESULTS}/best_cell.txt"]


def figure_files():
    """Every figure the config asks for (PNG, PDF and CSV each)."""
    stems = [*FIGURE_KINDS, FIGURE_STEMS["cell"]]
    if config["quality"]["enabled"]:
        stems.append(FIGURE_STEMS["quality"])
    if B < 2:
        stems.remove(FIGURE_STEMS["predictions"])
    return [f"{FIGURES}/{stem}.{ext}" for stem in stems for ext in ("png", "pdf", "csv")]


def random_inputs(wildcards=None):
    if not config["random_search"]["enabled"]:
        return {}
    return {
        "random_trained": f"{RESULTS}/random/trained.parquet",
        "random_candidates": f"{RESULTS}/random/candidates.parquet",
    }


def warm_start_input(wc):
    """The previous level's surrogate folder, when warm starts are on and there is one."""
    level = int(wc.level)
    return [f"{level_dir(level - 1)}/surrogate"] if WARM_START and level > 1 else []


def warm_start_flag(input):
    return f"--warm-from {shlex.quote(input.warm[0])}" if input.warm else ""


def random_flags(stem, input):
    if stem == "predicted_vs_true" or "random_trained" not in input.keys():
        return ""
    return f"--random-trained {shlex.quote(input.random_trained)} --random-candidates {shlex.quote(input.random_candidates)}"


def figure_outputs(stem, category):
    return {
        "png": report(
            f"{FIGURES}/{stem}.png",
            caption=f"../report/{stem}.rst",
            category=category,
            labels={"figure": stem.replace("_", " ").capitalize()},
        ),
        "pdf": f"{FIGURES}/{stem}.pdf",
        "csv": f"{FIGURES}/{stem}.csv",
    }


SELECTION_KEYS = ("select_by", "ucb_kappa", "max_params", "max_mult_adds", "pareto", "pareto_cost")
"""The search keys of a selection, written to settings/selection.json (pnas_core.search.selection.SELECTION_KEYS,
tested equal: no pnas_core import at parse time)."""
SELECTION = f"{RESULTS}/settings/selection.json"


# The replicated searches (rules/replicates.smk).
REPLICATES = config["replicates"]
REPLICATE_DIR = f"{RESULTS}/replicates"


def pnas_strategy_text():
    """The configured search as a `pnas replicate --strategy` text (pnas_core.search.strategies); its
    selection comes from settings/selection.json (`--selection`)."""
    search = config["search"]
    by, predictors = search["select_by"], "+".join(search["predictors"])
    if EARLY_STOP:
        rungs = "+".join(str(r) for r in EARLY_STOP["rungs"])
        return f"pnas-es:{rungs}:{EARLY_STOP['keep']}:{EARLY_STOP.get('fit_on', 'full')}:{by}:{predictors}"
    return f"pnas:{by}:{predictors}"


REPLICATE_STRATEGIES = {
    "pnas": pnas_strategy_text(),
    "random": "random",
    "evolution": "evolution@population={population},sample={sample}".format(**REPLICATES["evolution"]),
    "local": "local",
}
"""Strategy texts by name: the search and every baseline the config may list."""
REPLICATE_NAMES = ["pnas", *REPLICATES["baselines"]]


def replicate_runs():
    """Every replicate run table: one per seed and strategy."""
    return [f"{REPLICATE_DIR}/{name}/seed{seed}.parquet" for seed in REPLICATES["seeds"] for name in REPLICATE_NAMES]
