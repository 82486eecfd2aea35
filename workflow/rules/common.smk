# Helpers shared by every rule: config validation, paths, code hashes, resources.
# Parse-time work stays cheap (no Parquet reads, no torch): every SLURM job re-parses this file.
import hashlib
import os
import importlib.util
import re
from pathlib import Path

from snakemake.utils import validate


validate(config, schema="../schemas/config.schema.yaml")

NAME = config["name"]
B = config["search"]["max_blocks"]
K = config["search"]["beam_size"]
SHARDS = config["search"]["train_shards"]
OPS = config["search"]["ops"]
LEVELS = list(range(1, B + 1))
CACHE_DIR = config["cache_dir"]
RESULTS = f"results/{NAME}"
FIGURES = f"{RESULTS}/figures"
USE_GPU = config["train"].get("device", "auto") == "cuda"


wildcard_constraints:
    name=re.escape(NAME),
    level=r"\d+",
    shard=r"\d+",
    stage=r"level\d+|random|quality/b\d+|bench/seed\d+",
    b=r"\d+",


def fail(message):
    """Stop before any job runs with a message naming the problem."""
    raise WorkflowError(f"pnas config: {message}")


if len(set(OPS)) != len(OPS):
    fail(f"search.ops lists an op twice: {OPS}")
if config["dataset"] == "cifar10":
    if not config.get("data_root"):
        fail("dataset 'cifar10' needs data_root (e.g. --config data_root=/data/cifar10)")
    batches = Path(config["data_root"]) / "cifar-10-batches-py"
    expected = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
    missing = [f for f in expected if not (batches / f).is_file()]
    if missing:
        fail(f"data_root {config['data_root']!r}: CIFAR-10 not found, missing {batches}/{missing[0]} (expected {', '.join(expected)}; torchvision's python-version layout)")
elif config["dataset"] == "imagefolder":
    if not config.get("data_root") or not (Path(config["data_root"]) / "train").is_dir():
        fail(f"dataset 'imagefolder' needs data_root with a train/ folder, got {config.get('data_root')!r}")


def _package_dir():
    spec = importlib.util.find_spec("pnas_core")
    if spec is None or not spec.submodule_search_locations:
        fail("the pnas package is not installed (pip install -e .)")
    return Path(list(spec.submodule_search_locations)[0])


def code_hash(*parts):
    """Hash of the named pnas_core modules or sub-packages: a rule whose output depends on that
    code puts it in params, so editing the code reruns the rule (Snakemake cannot see package edits)."""
    root = _package_dir()
    digest = hashlib.sha256()
    for part in parts:
        path = root / part
        files = sorted(path.rglob("*.py")) if path.is_dir() else [path]
        for f in files:
            digest.update(str(f.relative_to(root)).encode())
            digest.update(f.read_bytes())
    return digest.hexdigest()[:12]


BEAM_CODE = code_hash("space.py", "beam.py", "tables.py")
TRAIN_CODE = code_hash(
    "space.py", "network.py", "ops.py", "data.py", "train.py", "records.py", "cache.py", "devices.py"
)
SURROGATE_CODE = code_hash("space.py", "surrogate", "beam.py", "quality.py", "tables.py")
SUMMARY_CODE = code_hash("summary.py", "tables.py")
FIGURES_CODE = code_hash("figures")


def count_cells(b):
    """Distinct b-block cells over the configured ops (SPEC §1)."""
    total = 1
    for j in range(1, b + 1):
        n = (j + 1) * len(OPS)
        total *= n * (n + 1) // 2
    return total


def pnas_budget():
    """Models the PNAS search trains: all 1-block cells, then min(K, #children) per level."""
    trained, beam = count_cells(1), count_cells(1)
    for b in range(2, B + 1):
        n = (b + 1) * len(OPS)
        beam = min(K, beam * n * (n + 1) // 2)
        trained += beam
    return trained


RANDOM_BLOCKS = config["random_search"]["blocks"] or B
RANDOM_BUDGET = min(config["random_search"]["budget"] or pnas_budget(), count_cells(RANDOM_BLOCKS))
QUALITY_SIZES = config["quality"]["sizes"] or list(range(1, B))
if config["quality"]["enabled"] and max(QUALITY_SIZES, default=0) >= 5:
    fail(f"quality.sizes {QUALITY_SIZES}: the quality experiment fits on b and tests on b+1, so b must be below 5")
FIGURE_KINDS = {
    "search_efficiency": "efficiency",
    "predicted_vs_true": "predictions",
    "accuracy_by_size": "distribution",
    "accuracy_vs_size": "pareto",
}


def quality_cells(b):
    """R, capped by the number of distinct b-block cells."""
    return min(config["quality"]["cells_per_size"], count_cells(b))


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
    return {
        "candidates": f"{RESULTS}/{wildcards.stage}/candidates.parquet",
        "settings": f"{RESULTS}/settings/train.json",
    }


def level_dir(level):
    return f"{RESULTS}/level{level}"


def trained_upto(level):
    """Trained records of levels 1..level: what the surrogate of that level is fit on."""
    return [f"{level_dir(b)}/trained.parquet" for b in range(1, int(level) + 1)]


def search_outputs():
    return [f"{RESULTS}/summary.parquet", f"{RESULTS}/summary.csv", f"{RESULTS}/best_cell.txt"]


def figure_files():
    """Every figure the config asks for (PNG, PDF and CSV each)."""
    stems = ["search_efficiency", "predicted_vs_true", "accuracy_by_size", "accuracy_vs_size", "best_cell"]
    if config["quality"]["enabled"]:
        stems.append("predictor_quality")
    if B < 2:
        stems.remove("predicted_vs_true")
    return [f"{RESULTS}/figures/{stem}.{ext}" for stem in stems for ext in ("png", "pdf", "csv")]


def random_inputs(wildcards=None):
    if not config["random_search"]["enabled"]:
        return {}
    return {
        "random_trained": f"{RESULTS}/random/trained.parquet",
        "random_candidates": f"{RESULTS}/random/candidates.parquet",
    }


def random_flags(stem, input):
    if stem == "predicted_vs_true" or "random_trained" not in input.keys():
        return ""
    return f"--random-trained {input.random_trained} --random-candidates {input.random_candidates}"


def figure_outputs(stem, category):
    return {
        "png": report(
            f"{FIGURES}/{stem}.png", caption=f"../report/{stem}.rst", category=category, labels={"file": "png"}
        ),
        "pdf": f"{FIGURES}/{stem}.pdf",
        "csv": f"{FIGURES}/{stem}.csv",
    }
