"""``pnas final-train`` (the final network), ``pnas predict`` and ``pnas export`` (use it)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from pnas_core.cli.arg_types import count, output_dir, output_file, threads
from pnas_core.cli.overwrite import Paths

EXPORT_FILES = {"torchscript": "model.torchscript.pt", "onnx": "model.onnx"}
"""Default output file name of each ``pnas export --format``."""
PREDICT_FORMATS = ("csv", "json")
"""The output formats of ``pnas predict``."""


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``final-train``, ``predict`` and ``export``."""
    final = sub.add_parser(
        "final-train",
        help="train the final network of a cell on train+val, evaluate on test (resumes from a checkpoint)",
        description="Stack the cell into the final network, train it on the train and validation splits, "
        "evaluate it once on the test split and write model.pt, cell.txt, settings.json, metrics.json, "
        "curve.parquet and curve.png/.pdf into --out-dir. A rerun resumes from --out-dir/checkpoint.pt.",
    )
    src = final.add_mutually_exclusive_group(required=True)
    src.add_argument(
        "--cell-file", type=Path, help="file with the cell text on its first line (best_cell.txt)"
    )
    src.add_argument("--cell", help="cell text, e.g. '0:sep3x3,1:identity'")
    final.add_argument("--settings", required=True, type=Path, help="JSON or YAML file of final settings")
    final.add_argument("--out-dir", required=True, type=output_dir, help="output folder")
    final.add_argument(
        "--threads",
        type=threads,
        default=None,
        help="torch CPU threads (default $PNAS_THREADS, else all cores)",
    )
    final.set_defaults(func=run_final_train, paths=_final_paths)

    pred = sub.add_parser(
        "predict",
        help="the most probable classes of image files with a trained model (CSV or JSON)",
        description="Print, per image, the --top-k most probable classes with their probabilities (CSV "
        "with a header, or a JSON array), and warn on stderr, naming the file, when an image's pixel "
        "statistics (brightness, contrast, border) are far from the training images'.",
    )
    pred.add_argument("--model", required=True, type=Path, help="final-train output folder or its model.pt")
    pred.add_argument("images", nargs="+", type=Path, help="image files (.png/.jpg) or folders of them")
    pred.add_argument("--device", default="cpu", help="auto, cpu, cuda or cuda:<i> (default cpu)")
    pred.add_argument(
        "--top-k", type=count, default=1, help="classes per image, most probable first (default 1)"
    )
    pred.add_argument("--format", choices=PREDICT_FORMATS, default="csv", help="output format (default csv)")
    pred.set_defaults(func=run_predict)

    export = sub.add_parser(
        "export", help="export a trained model (TorchScript or ONNX) for use without pnas"
    )
    export.add_argument("--model", required=True, type=Path, help="final-train output folder or its model.pt")
    export.add_argument(
        "--format",
        choices=sorted(EXPORT_FILES),
        default="torchscript",
        help="export format (onnx needs the onnx extra: pip install -e '.[onnx]')",
    )
    export.add_argument(
        "--out",
        type=output_file,
        default=None,
        help="output file (default beside model.pt: model.torchscript.pt or model.onnx)",
    )
    export.set_defaults(func=run_export, paths=_export_paths)


def _final_paths(args: argparse.Namespace) -> Paths:
    """The cell and settings files final-train reads and every file it writes into --out-dir."""
    from pnas_core.training.final import WRITTEN_FILES

    return Paths(reads=[args.cell_file, args.settings], writes=[args.out_dir / f for f in WRITTEN_FILES])


def _export_paths(args: argparse.Namespace) -> Paths:
    """The model file export reads and the file it writes."""
    from pnas_core.training.model_io import model_file

    return Paths(reads=[model_file(args.model)], writes=[export_path(args)])


def export_path(args: argparse.Namespace) -> Path:
    """The file ``pnas export`` writes: ``--out``, else beside the model file."""
    from pnas_core.training.model_io import model_file

    return args.out if args.out is not None else model_file(args.model).with_name(EXPORT_FILES[args.format])


def run_final_train(args: argparse.Namespace) -> int:
    """Train the final network and write its folder."""
    from pnas_core.devices import set_threads
    from pnas_core.figures.curve import draw_curve
    from pnas_core.figures.inputs import read_cell_text
    from pnas_core.space.cells import parse
    from pnas_core.training.final import load_final_settings, run_final

    threads = set_threads(args.threads)
    cell = parse(args.cell if args.cell is not None else read_cell_text(args.cell_file))
    settings = load_final_settings(args.settings)

    def log(message: str) -> None:
        print(f"pnas final-train: {message}", file=sys.stderr, flush=True)

    log(f"{threads} thread(s), settings {args.settings}, output {args.out_dir}")
    metrics = run_final(cell, settings, args.out_dir, draw_curve=draw_curve, log=log)
    print(f"test_acc {metrics['test_acc']:.4f}")
    return 0


def run_predict(args: argparse.Namespace) -> int:
    """Print the top classes per image (CSV with a header, or a JSON array), as the images are scored;
    one warning line on stderr per image far from the training data."""
    import csv
    import json

    from pnas_core.devices import pick_device
    from pnas_core.training.model_io import domain_note, load_model, predict_files

    model, info = load_model(args.model, pick_device(args.device))
    c, h, w = info.input_shape
    domain = info.domain.describe() if info.domain is not None else "training statistics unknown"
    print(
        f"pnas predict: model {info.path}: {len(info.classes)} classes, input {c}x{h}x{w} ({domain})",
        file=sys.stderr,
    )
    note = domain_note(info)
    if note:
        print(f"pnas predict: note: {note}", file=sys.stderr)
    k = min(args.top_k, len(info.classes))
    writer = csv.writer(sys.stdout, lineterminator="\n")
    if args.format == "csv":
        ranks = [f"{name}_{i}" for i in range(1, k + 1) for name in ("class", "probability")]
        writer.writerow(["file", *ranks, "in_domain"])
    else:
        print("[")
    in_domain = {True: "yes", False: "no", None: "unknown"}
    for n, pred in enumerate(predict_files(model, info, args.images, top_k=k)):
        inside = None if info.domain is None else not pred.far
        if pred.far:
            print(
                f"pnas predict: warning: {pred.file} is far from the training images "
                f"({', '.join(pred.far)}): its prediction may be wrong",
                file=sys.stderr,
            )
        if args.format == "csv":
            top = [v for name, prob in pred.top for v in (name, f"{prob:.4f}")]
            writer.writerow([pred.file, *top, in_domain[inside]])
        else:
            row = {
                "file": str(pred.file),
                "top": [{"class": name, "probability": round(prob, 6)} for name, prob in pred.top],
                "in_domain": inside,
                "far": pred.far,
            }
            print(("," if n else "") + json.dumps(row))
    if args.format == "json":
        print("]")
    return 0


def run_export(args: argparse.Namespace) -> int:
    """Write the TorchScript or ONNX file and report how closely it matches the model."""
    from pnas_core.training.model_io import domain_note, export_onnx, export_torchscript, load_model

    model, info = load_model(args.model)
    note = domain_note(info)
    if note:
        print(f"pnas export: note: {note}", file=sys.stderr)
    out = export_path(args)
    export = export_onnx if args.format == "onnx" else export_torchscript
    diff = export(model, info, out)
    c, h, w = info.input_shape
    where = "metadata_props" if args.format == "onnx" else "extra file pnas.json"
    print(
        f"pnas export: {out} (input: normalised float32 images (N, {c}, {h}, {w}), mean {info.mean}, "
        f"std {info.std} in 0..255 units; output: logits over {len(info.classes)} classes; the "
        f"preprocessing, class names and training pixel statistics are in its {where}); "
        f"max |difference| to the model {diff:.2e}",
        file=sys.stderr,
    )
    return 0
