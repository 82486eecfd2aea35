"""The HTML report as a person sees it: the session's finished tiny run's ``snakemake --report`` opened
in a real headless browser (Playwright driving Chromium). The landing page shows the best cell and the
test accuracy without scrolling, at two window sizes, and a table's "view" shows its rows.

Skips with the reason where Playwright or a Chromium build is missing (CI installs Debian's
``chromium-headless-shell``, .ci/run; ``pip install -e '.[test]'`` brings Playwright)."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
from workflow_project import snakemake

pytestmark = pytest.mark.slow

BROWSERS = ("chromium-headless-shell", "chromium", "chromium-browser")
"""Executables tried in turn (Debian's packages); else Playwright's own download, if there is one."""
WINDOWS = ((1920, 1080), (1400, 1800))


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    sync_api = pytest.importorskip(
        "playwright.sync_api", reason="Playwright is not installed (the test extra)"
    )
    executable = next((path for name in BROWSERS if (path := shutil.which(name))), None)
    with sync_api.sync_playwright() as playwright:
        try:
            chromium = playwright.chromium.launch(executable_path=executable)
        except sync_api.Error as error:
            pytest.skip(
                f"no Chromium to drive: none of {', '.join(BROWSERS)} on PATH, and {error}".splitlines()[0]
            )
        yield chromium
        chromium.close()


@pytest.fixture(scope="module")
def report(finished: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("report") / "report.html"
    snakemake(finished, "--report", str(path))
    return path


def in_view(box: dict[str, float] | None, width: int, height: int) -> bool:
    return (
        box is not None
        and box["x"] >= 0
        and box["y"] >= 0
        and box["x"] + box["width"] <= width
        and (box["y"] + box["height"] <= height)
    )


@pytest.mark.parametrize(("width", "height"), WINDOWS)
def test_landing_page_shows_the_answer_without_scrolling(
    browser, report: Path, finished: Path, width: int, height: int
) -> None:
    best = (finished / "results/tiny/best_cell.txt").read_text().splitlines()[0]
    test_acc = json.loads((finished / "results/tiny/final/metrics.json").read_text())["test_acc"]
    page = browser.new_page(viewport={"width": width, "height": height})
    page.goto(report.as_uri())
    title = page.get_by_role("heading", name="pnas run tiny")
    title.wait_for(timeout=30_000)
    answer = {
        "title": title,
        "best cell": page.get_by_text(best, exact=True).first,
        "test accuracy": page.get_by_text(f"test accuracy {100 * test_acc:.2f}%").first,
    }
    for name, locator in answer.items():
        assert in_view(locator.bounding_box(), width, height), (name, locator.bounding_box())
    page.close()


def test_summary_table_view_shows_its_rows(browser, report: Path, finished: Path) -> None:
    summary = pd.read_csv(finished / "results/tiny/summary.csv")
    page = browser.new_page(viewport={"width": 1400, "height": 900})
    page.goto(report.as_uri())
    page.get_by_text("0. Summary").click()
    page.locator("tr", has_text="summary.html").locator("a").first.click()  # the row's eye button
    table = page.frame_locator("iframe").locator("table")
    table.wait_for(timeout=30_000)
    assert table.locator("tbody tr").count() == len(summary)
    assert table.locator("tbody tr").first.inner_text().split("\t")[2] == summary["cell"][0]
    page.close()
