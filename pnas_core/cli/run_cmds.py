"""``pnas plan`` (what a run will train and cost, printed first), ``pnas status`` (how far it is) and
``pnas init`` (a starter config for an image folder)."""

from __future__ import annotations

import argparse
from pathlib import Path

from pnas_core.cli.arg_types import folder_path, output_file
from pnas_core.cli.overwrite import Paths
from pnas_core.names import INIT_SCALES


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``plan``, ``status`` and ``init``."""
    plan = sub.add_parser(
        "plan",
        help="print a run's plan: dataset, B, K, models per stage, baselines, estimated cost",
        description="Print what a workflow config will train and an estimate of its cost from the "
        "training times the result cache measured with the same training settings on this kind of "
        "device (else 'unknown on this device'). The workflow runs it first.",
    )
    plan.add_argument("--config", required=True, type=Path, help="the workflow config, checked, as JSON/YAML")
    plan.add_argument(
        "--train-settings", required=True, type=Path, help="the search's training settings (JSON/YAML)"
    )
    plan.add_argument(
        "--out",
        type=output_file,
        default=None,
        help="also write the plan here (a run keeps results/<name>/plan.json, read by pnas status)",
    )
    plan.set_defaults(
        func=run_plan, paths=lambda a: Paths(reads=[a.config, a.train_settings], writes=[a.out])
    )

    status = sub.add_parser(
        "status",
        help="a run's progress per stage: trained/planned, best so far, elapsed, estimate of what remains",
        description="Read a run's results folder and the result cache and print, per training stage, "
        "the models trained of those planned, the best validation accuracy so far, the wall time its "
        "results span and its measured training time; then the training left and its estimate. Works "
        "on a finished, an interrupted and a running search.",
    )
    status.add_argument("results", type=folder_path, help="the run's results folder, results/<name>")
    status.add_argument(
        "--cache-dir",
        type=folder_path,
        default=None,
        help="result cache (default: the one the run's plan names)",
    )
    status.set_defaults(func=run_status)

    init = sub.add_parser(
        "init",
        help="write a starter config for an image folder (layout checked, classes counted, size read)",
        description="Check an image folder (DIR/train/<class>/*.png|jpg, optional val/ and test/ with the "
        "same classes), count its classes and images, read its image size and write a workflow config "
        "for it; an existing file is never replaced.",
    )
    init.add_argument("--data", required=True, type=folder_path, help="the image folder DIR")
    init.add_argument(
        "--scale",
        choices=INIT_SCALES,
        default="quick",
        help="quick (default): the quick preset's search and a small network; paper: the paper's defaults",
    )
    init.add_argument(
        "--out",
        type=output_file,
        default=None,
        help="config file to write (default config/<folder name>.yaml)",
    )
    init.set_defaults(func=run_init, paths=lambda a: Paths(read_dirs=[a.data], writes=[a.out]))


def run_plan(args: argparse.Namespace) -> int:
    """Print the plan; write it with ``--out``."""
    import torch

    from pnas_core.io.settings_io import read_mapping
    from pnas_core.search.plan import measured_timing, plan_from_config, plan_text, write_plan
    from pnas_core.training.train import load_settings

    plan = plan_from_config(read_mapping(args.config, "workflow config"))
    settings = load_settings(args.train_settings)
    cuda = settings.device.startswith("cuda") or (settings.device == "auto" and torch.cuda.is_available())
    device = "cuda" if cuda else "cpu"
    timing = measured_timing(plan.cache_dir, settings.settings_hash(), device)
    print(plan_text(plan, timing, device), flush=True)
    if args.out is not None:
        write_plan(args.out, plan)
    return 0


def run_status(args: argparse.Namespace) -> int:
    """Print the status table of a run."""
    from pnas_core.errors import PnasError
    from pnas_core.search.status import run_status as status_of

    if not args.results.is_dir():
        raise PnasError(f"results folder {args.results} does not exist (a run writes results/<name>/)")
    print(status_of(args.results, args.cache_dir).table())
    return 0


def run_init(args: argparse.Namespace) -> int:
    """Write the starter config and say what it holds."""
    from pnas_core.search.starter import config_text, run_name, starter_config, write_config

    config, layout = starter_config(args.data, args.scale)
    out = args.out or Path("config") / f"{run_name(args.data)}.yaml"
    write_config(out, config_text(config, layout, args.scale, out))
    images = ", ".join(f"{n} {split}" for split, n in layout.images.items())
    print(
        f"pnas init: {len(layout.classes)} classes, {images} images of {layout.size[0]}x{layout.size[1]} "
        f"-> {out} (scale {args.scale}, image_size {config['train']['image_size']})"
    )
    print(f"next: snakemake -n --configfile {out}   (then snakemake --cores 2 --configfile {out})")
    return 0
