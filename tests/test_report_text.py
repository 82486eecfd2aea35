"""No string a user hands over is ever template, markup or shell syntax: config strings and
class-folder names shown on the report's landing page read literally, and no Jinja2 expression, reST
directive or shell substitution in them runs.

The landing page is rendered the way Snakemake renders it (Jinja2 without a sandbox, then docutils)
in-process; one end-to-end test runs `snakemake --report` on a copy of the session's finished tiny run
with a hostile config and an image folder of hostile class names, and runs every shell command a dry run
of that config plans through bash (with ``pnas`` replaced by a function that records its arguments)."""

from __future__ import annotations

import html
import json
import os
import re
import shlex
import shutil
import subprocess
from pathlib import Path

import jinja2
import numpy as np
import pandas as pd
import pytest
import yaml
from docutils.core import publish_parts
from PIL import Image
from workflow_project import TINY, snakemake

from pnas_core.io.report_text import Headline, jinja_literal, landing_page, rst_text, table_page

MARKER = "MARKER"
"""The file any of the :func:`hostile` strings creates in the current folder if it is run."""


def hostile() -> list[str]:
    """Strings that run code, render markup or break the page if read as Jinja2, reST or shell;
    running any of them creates :data:`MARKER`. The Jinja2 one holds no quote or slash, so that it
    survives YAML's quoting and can be a folder name."""
    run = "self.__init__.__globals__.__builtins__.open(dict(MARKER=1)|first, dict(w=1)|first)"
    return [
        f"x{{% endraw %}}{{{{ {run} }}}}{{% raw %}}",
        "{{ 7 * 7 }}{# comment #}{% if true %}yes{% endif %}",
        ".. raw:: html\n\n   <script>alert(1)</script>",
        ".. include:: /etc/passwd",
        "`code` `link`_ :math:`x^2` |subst| *em* **strong** _`target` [#]_",
        f"$(touch {MARKER}); `touch {MARKER}`; 'single' \"double\" & | ; > <",
        "line\nbreak\ttab\x1bescape",
        "\\ back\\slash\\",
    ]


def visible(text: str) -> str:
    """``text`` as the page shows it: control characters as escapes."""
    return "".join(c if c.isprintable() else ascii(c)[1:-1] for c in text)


def page_text(html_text: str) -> str:
    return html.unescape(re.sub(r"<[^>]+>", "", html_text))


def render_as_snakemake(page: str, config: dict) -> str:
    """The HTML body Snakemake makes of a report text (snakemake.report.auto_report): Jinja2 with
    its Environment and its link block appended, then docutils' HTML writer."""
    env = jinja2.Environment(trim_blocks=True, lstrip_blocks=True)
    links = "\n\n.. _Workflow: javascript:show_panel('workflow')\n{% for res in files %}\n{% endfor %}\n"

    class Snakemake:
        pass

    Snakemake.config = config
    text = env.from_string(page + links).render(snakemake=Snakemake, categories={}, files=[])
    return publish_parts(text, writer_name="html")["html_body"]


def test_escaping_functions_are_exact(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    env = jinja2.Environment(trim_blocks=True, lstrip_blocks=True)
    for text in [*hostile(), "{", "{{", "{%", "{#", "}}{{'{'}}"]:
        assert env.from_string(jinja_literal(text)).render() == text
        body = publish_parts(f"start {rst_text(text)} end", writer_name="html")["html_body"]
        assert page_text(body).strip() == f"start {visible(text)} end"
        assert "system-message" not in body
    assert not (tmp_path / MARKER).exists()


def test_landing_page_shows_hostile_values_literally(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    marker = tmp_path / MARKER
    strings = hostile()
    config = yaml.safe_load(TINY.read_text()) | {"data_root": strings[0], "cache_dir": strings[5]}
    metrics = {"params": 566, "epochs": 2, "train_images": 1437, "test_acc": 0.5, "test_images": 360}
    best = ["1:max3x3,1:max3x3", "# " + strings[2]]
    page = landing_page(config, best, metrics | {"classes": strings}, {}, Headline(0.9, 24, 8, 0.8, 0.85))
    body = render_as_snakemake(page, config)
    text = page_text(body)
    assert not marker.exists()
    assert "49" not in text and "<script" not in body and "system-message" not in body
    classes = text.split("tells 8 classes apart: ")[1]
    for s in strings:
        assert visible(s) in classes
    assert visible(strings[2]) in text.split("Best cell")[1]
    block = text.split("config/README.md):")[1]
    assert yaml.safe_load(block) == config  # the config block reads back as the config
    answer = text.split("The search")[0]  # the answer comes before the details and the config
    assert "test accuracy 50.00%" in answer and "validation accuracy 90.00%" in answer
    assert "after 8 models each, PNAS's best validation accuracy is 85.00%, random search's 80.00%" in answer


def test_table_page_escapes_every_value() -> None:
    strings = hostile()
    frame = pd.DataFrame({"cell": strings, "<b>val_acc</b>": np.linspace(0, 1, len(strings))})
    page = table_page("summary.csv <i>x</i>", frame)
    assert "<script" not in page and "<b>" not in page and "<i>" not in page
    text = page_text(page)
    assert "summary.csv <i>x</i>: 8 rows" in text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page and "<b>val_acc</b>" in text
    for s in strings[1:2] + strings[3:6]:  # one-line values read back as they are
        assert s in text


def test_figure_titles_are_not_math_markup() -> None:
    # `pnas figures cell --title 'cost $5 and $x'` drew "cost 5and x" in math italics.
    from pnas_core.figures.cell_graph import cell_figure
    from pnas_core.space.cells import parse

    title = cell_figure(parse("0:sep3x3,1:identity"), "cost $5 and $\\frac{").axes[0].title
    assert title.get_text().startswith("cost $5 and $\\frac{") and not title.get_parse_math()


def write_images(folder: Path, n: int, seed: int) -> None:
    folder.mkdir(parents=True)
    rng = np.random.default_rng(seed)
    for i in range(n):
        Image.fromarray(rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)).save(folder / f"{i}.png")


@pytest.mark.slow
def test_report_and_shell_take_hostile_strings_literally(finished: Path, tmp_path: Path) -> None:
    root = tmp_path / "wf"
    shutil.copytree(finished, root, symlinks=True)
    marker = root / MARKER  # the jobs and the report run in root
    strings = hostile()
    folder_names = [s.replace("/", "|") for s in strings[:2] + strings[4:]]  # a folder name holds no "/"
    data_root = root / f"data {strings[0]} $(touch MARKER) 'q'"
    for k, name in enumerate(folder_names):
        write_images(data_root / "train" / name, 12, k)
        write_images(data_root / "test" / name, 3, 100 + k)
    cache = f"cache {strings[0]} $(touch MARKER); 'q' \"dq\" `touch MARKER` {strings[1]}"
    config = yaml.safe_load(TINY.read_text())
    config |= {"dataset": "imagefolder", "data_root": str(data_root), "cache_dir": cache}
    (root / "hostile.yaml").write_text(yaml.safe_dump(config))
    configs = ("hostile.yaml",)

    # Every shell command the config's jobs would run, through bash: nothing but `pnas` runs, and
    # `pnas` gets the cache path as one literal argument.
    plan = snakemake(root, "-n", "-p", "--forceall", "all", "bench_table", configs=configs)
    lines = [line.removeprefix("Shell command: ") for line in plan.stdout.splitlines()]
    shells = [line for line in lines if line.startswith("pnas ")]
    assert len(shells) > 20
    argv_file = tmp_path / "argv"
    for command in shells:
        env = {**os.environ, "ARGV_FILE": str(argv_file)}
        shim = 'pnas() { printf "%s\\0" "$@" > "$ARGV_FILE"; }; '
        for word in shlex.split(command):  # the log's folder, so that the redirection opens
            if word.startswith("results/tiny/logs/"):
                (root / word).parent.mkdir(parents=True, exist_ok=True)
        subprocess.run(["bash", "-c", shim + command], cwd=root, env=env, check=True)
        argv = argv_file.read_text().split("\0")[:-1]
        words = shlex.split(command.split(" > ")[0])[1:]
        assert argv == [word for word in words if not re.fullmatch(r"\d>&\d", word)]  # train's 3>&2 is bash's
        if "--cache-dir" in command:
            assert f"--cache-dir={cache}" in argv
    assert not marker.exists()

    # The final network on the hostile image folder, the landing page, the report.
    snakemake(
        root,
        "results/tiny/report_page.rst",
        "--forcerun",
        "final_settings",
        "final_train",
        "report_page",
        "--rerun-triggers",
        "code",
        configs=configs,
    )
    metrics = json.loads((root / "results/tiny/final/metrics.json").read_text())
    assert metrics["classes"] == sorted(folder_names)
    report = root / "report.html"
    snakemake(root, "--report", str(report), configs=configs)
    assert not marker.exists()
    data = re.search(
        r'<script id="workflow-desc">\s*var workflow_desc = (.*?);\s*</script>', report.read_text(), re.S
    )
    landing = page_text(json.loads(data[1]))
    assert "49" not in landing
    classes = landing.split(f"tells {len(folder_names)} classes apart: ")[1]
    for name in folder_names:
        assert visible(name) in classes, name
    block = yaml.safe_load(landing.split("config/README.md):")[1])
    assert (block["data_root"], block["cache_dir"]) == (str(data_root), cache)
