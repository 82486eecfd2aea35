"""The landing page of the workflow's HTML report (``snakemake --report``), with every value a user
handed over (config strings, class-folder names) shown as text, never read as markup or code.

Snakemake renders the page twice: as a Jinja2 template (not sandboxed: ``{{ ... }}`` there can run
any Python), then as reStructuredText (where directives such as ``.. raw::`` or ``.. include::``
and roles, references and substitutions are markup). So the page escapes for both: every value
goes through :func:`rst_text` (or sits in a literal block, :func:`literal_block`), and the whole
page through :func:`jinja_literal`, after which it holds no Jinja syntax at all.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

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


def landing_page(
    config: Mapping[str, Any],
    best_lines: Sequence[str],
    metrics: Mapping[str, Any],
    final: Mapping[str, Any],
) -> str:
    """The page (reStructuredText escaped for Jinja2): what ran (``config``), the best cell (the lines
    of best_cell.txt) and the final network (``metrics.json`` and the final settings)."""
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
    config_text = yaml.safe_dump(dict(config), sort_keys=False, allow_unicode=True, width=float("inf"))
    page = f"""{title}
{"=" * len(title)}

Progressive Neural Architecture Search (Liu et al., ECCV 2018) on {rst_code(config["dataset"])}: cells of up
to B = {search["max_blocks"]} blocks over the ops {ops}; every 1-block cell trained, then at each level the
top K = {search["beam_size"]} children by the predictors' accuracy ({predictors}, selected by
{rst_code(search["select_by"])}).

**Best cell**: {rst_code(best_lines[0])}
({note}).

**Final network**: the best cell stacked with N = {rst_text(str(final.get("cells_per_stack", "default")))} cells
per stack, {metrics["params"]:,} parameters, trained {rst_text(str(metrics["epochs"]))} epochs on
{metrics["train_images"]:,} images (train + validation): **test accuracy {metrics["test_acc"]:.4f}** on
{metrics["test_images"]:,} images the search never read.

{classes_line}Every figure is an entry of the menu (*Results*), each with its caption; the summary table lists
every trained cell.

Configuration (keys a config leaves out take the defaults of config/README.md):

{literal_block(config_text, "yaml")}"""
    return jinja_literal(page)
