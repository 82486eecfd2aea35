"""``pnas schema``: write the JSON schemas of the workflow's settings sections from the code."""

from __future__ import annotations

import argparse

from pnas_core.cli.arg_types import output_dir


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``schema``."""
    p = sub.add_parser(
        "schema",
        help="write the JSON schemas of the train, surrogate and final config sections",
        description="Generate <section>.schema.json for the train, surrogate and final sections of the "
        "workflow config from the settings dataclasses (the workflow validates against these files).",
    )
    p.add_argument(
        "--out-dir",
        type=output_dir,
        default="workflow/schemas",
        help="folder to write into (default workflow/schemas)",
    )
    p.set_defaults(func=run_schema)


def run_schema(args: argparse.Namespace) -> int:
    """Write the schema files and list them."""
    from pnas_core.cli.settings_schema import write_schemas

    for path in write_schemas(args.out_dir):
        print(path)
    return 0
