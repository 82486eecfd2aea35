"""The pages of the workflow's HTML report (``snakemake --report``): the landing page and the tables,
with every value a user handed over (config strings, class-folder names, cell texts) shown as text,
never read as markup or code.

Snakemake renders the page twice: as a Jinja2 template (not sandboxed: ``{{ ... }}`` there can run
any Python), then as reStructuredText (where directives such as ``.. raw::`` or ``.. include::``
and roles, references and substitutions are markup). So the page escapes for both: every value
goes through :func:`rst_text` (or sits in a literal block, :func:`literal_block`), and the whole
page through :func:`jinja_literal`, after which it holds no Jinja syntax at all. A table is an HTML
page of its own (:func:`table_page`, every cell HTML-escaped): the report shows an HTML result in the
browser, where a CSV result is only a download that a browser may refuse to open.
"""

from __future__ import annotations

import base64
import html
import re
import textwrap
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd
import yaml

_PLAIN = re.compile(r"[A-Za-z0-9 ]")
_CODE = re.compile(r"[A-Za-z0-9][A-Za-z0-9:,;._+-]*")
MAX_CLASSES_SHOWN = 50


def jinja_literal(text: str) -> str:
    """``text`` as a Jinja2 template that renders to exactly ``text``: every ``{`` becomes the
    expression ``{{ '{' }}``, so no ``{{``, ``{%`` or ``{#`` of the text opens a tag."""
    return text.replace("{", "{{ '{' }}")


def _visible(char: str) -> str:
    """A printable character as itself, any other (a newline, an escape) as its Python escape."""
    return char if char.isprintable() else ascii(char)[1:-1]


def rst_text(text: str) -> str:
    """``text`` as reStructuredText inline text showing exactly these characters: every character
    but letters, digits and spaces backslash-escaped (so no markup, role, reference, substitution or
    directive can start), control characters (newlines included) shown as escapes such as ``\\n``."""
    return "".join(c if _PLAIN.fullmatch(c) else "".join("\\" + e for e in _visible(c)) for c in text)


def rst_code(text: str) -> str:
    """``text`` as an inline literal where it is a plain token (a cell text, a name), else as
    :func:`rst_text`."""
    return f"``{text}``" if _CODE.fullmatch(text) else rst_text(text)


def literal_block(text: str, language: str) -> str:
    """A ``code-block`` directive showing ``text`` verbatim: every line indented, so nothing in it
    leaves the block or is read as markup."""
    body = "\n".join("    " + line for line in text.splitlines())
    return f".. code-block:: {language}\n\n{body}\n"


@dataclass(frozen=True)
class Headline:
    """The numbers the landing page opens on: the best cell's validation accuracy, the models the
    search trained and, where random search ran, both methods' best validation accuracy after the
    random search's number of models."""

    best_val_acc: float
    models: int
    random_models: int | None = None
    random_best: float | None = None
    pnas_best_at_random: float | None = None


LANDING_STYLE = """<style>
.h-screen.items-center { align-items: flex-start; }
.h-screen.items-center > .items-start { flex-direction: column; }
.prose.max-w-lg { max-width: 64rem; }
.prose img.pnas-best-cell { max-height: 55vh; width: auto; }
</style>"""
"""Snakemake's report centres the landing page vertically in a screen-high box and puts the rule graph
beside it, so a page taller than the window loses its top (title, best cell) out of scrolling reach.
This style, part of the page and so gone when another view opens, starts the page at the top, puts
the rule graph below it and widens the text column."""


def percent(fraction: float) -> str:
    """An accuracy (a fraction) as a percentage with two decimals: ``0.93056`` -> ``93.06%``."""
    return f"{100 * fraction:.2f}%"


def _versus_random(headline: Headline) -> str:
    """The one line comparing PNAS with random search (empty when random search did not run)."""
    if headline.random_models is None:
        return ""
    return (
        f"**PNAS against random search**: after {headline.random_models} models each, PNAS's best validation "
        f"accuracy is {percent(headline.pnas_best_at_random)}, random search's {percent(headline.random_best)} "
        "(same space, same training; the search-efficiency figure shows every model).\n\n"
    )


def landing_page(
    config: Mapping[str, Any],
    best_lines: Sequence[str],
    metrics: Mapping[str, Any],
    final: Mapping[str, Any],
    headline: Headline,
    cell_png: bytes | None = None,
) -> str:
    """The page (reStructuredText escaped for Jinja2), answer first: the best cell (the lines of
    best_cell.txt, its figure ``cell_png``), its validation and test accuracy (``metrics.json``),
    the models trained and PNAS against random search (``headline``); then the final network's
    settings (``final``), the classes and the config it ran with."""
    search = config["search"]
    title = rst_text(f"pnas run {config['name']}")
    ops = ", ".join(rst_code(op) for op in search["ops"])
    predictors = ", ".join(rst_code(p) for p in search["predictors"])
    note = rst_text(best_lines[1].lstrip("# ")) if len(best_lines) > 1 else "see best_cell.txt"
    classes = [str(c) for c in metrics.get("classes", [])]
    more = f", and {len(classes) - MAX_CLASSES_SHOWN} more" if len(classes) > MAX_CLASSES_SHOWN else ""
    names = ", ".join(rst_text(c) for c in classes[:MAX_CLASSES_SHOWN])
    classes_line = (
        f"The final network tells {len(classes)} classes apart: {names}{more}.\n\n" if classes else ""
    )
    image = ""
    if cell_png:  # a data URI on lines of docutils' limit; the directive joins them (whitespace removed)
        uri = "data:image/png;base64," + base64.b64encode(cell_png).decode("ascii")
        lines = "\n".join("   " + uri[i : i + 96] for i in range(0, len(uri), 96))
        image = f".. image::\n{lines}\n   :alt: the best cell drawn as a graph\n   :class: pnas-best-cell\n\n"
    config_text = yaml.safe_dump(dict(config), sort_keys=False, allow_unicode=True, width=float("inf"))
    page = f"""{title}
{"=" * len(title)}

**Best cell** {rst_code(best_lines[0])}: validation accuracy {percent(headline.best_val_acc)},
**test accuracy {percent(metrics["test_acc"])}** (the final network, on {metrics["test_images"]:,} images
the search never read).

**Models trained**: {headline.models} by PNAS on {rst_code(config["dataset"])} (cells of up to B =
{search["max_blocks"]} blocks, K = {search["beam_size"]} per level).

{_versus_random(headline)}{image}The best cell: {note}. Every figure is an entry of the menu (*Results*),
each with its caption; the summary table lists every trained cell.

The search
----------

Progressive Neural Architecture Search (Liu et al., ECCV 2018): cells over the ops {ops}; every 1-block
cell trained, then at each level the top K children by the predictors' accuracy ({predictors}, selected
by {rst_code(search["select_by"])}).

**Final network**: the best cell stacked with N = {rst_text(str(final.get("cells_per_stack", "default")))} cells
per stack, {metrics["params"]:,} parameters, trained {rst_text(str(metrics["epochs"]))} epochs on
{metrics["train_images"]:,} images (train + validation), tested once on {metrics["test_images"]:,} images.

{classes_line}.. raw:: html

{textwrap.indent(LANDING_STYLE, "   ")}

Configuration
-------------

The config it ran with (keys a config leaves out take the defaults of config/README.md):

{literal_block(config_text, "yaml")}"""
    return jinja_literal(page)


TABLE_STYLE = """<style>
body { font: 13px/1.4 sans-serif; margin: 1em; }
table { border-collapse: collapse; }
th, td { border: 1px solid #ccc; padding: 2px 6px; text-align: left; white-space: nowrap; }
th { background: #f3f3f3; position: sticky; top: 0; }
</style>"""


def table_page(title: str, frame: pd.DataFrame) -> str:
    """A self-contained HTML page showing ``frame`` as a table under ``title``, every header and
    value HTML-escaped, floats with up to 6 significant digits."""
    table = frame.to_html(index=False, escape=True, na_rep="", float_format=lambda x: f"{x:.6g}", border=0)
    return (
        f'<!DOCTYPE html>\n<html><head><meta charset="utf-8"><title>{html.escape(title)}</title>\n'
        f"{TABLE_STYLE}</head>\n<body>\n<h3>{html.escape(title)}: {len(frame):,} rows</h3>\n{table}\n</body></html>\n"
    )
