"""Write the HTML report's landing page (reStructuredText) for a finished run, answer first: the best
cell with its figure, its validation and test accuracy, the models trained, PNAS against random search;
then the final network and the config (pnas_core.io.report_text, which escapes every value for
Snakemake's Jinja2 and reStructuredText renderers). Injected by Snakemake: ``snakemake``."""

import json
from pathlib import Path

from pnas_core.figures.inputs import read_random, read_summary
from pnas_core.io.atomic import write_text
from pnas_core.io.report_text import landing_page
from pnas_core.search.summary import headline

sm = snakemake  # noqa: F821 (injected by Snakemake)
best_lines = Path(sm.input.best).read_text().splitlines()
metrics = json.loads(Path(sm.input.metrics).read_text())
final = json.loads(Path(sm.input.final_settings).read_text())
has_random = "random_trained" in sm.input.keys()
random = read_random(sm.input.random_trained, sm.input.random_candidates) if has_random else None
numbers = headline(read_summary(sm.input.summary), random)
page = landing_page(sm.config, best_lines, metrics, final, numbers, Path(sm.input.cell_png).read_bytes())
write_text(sm.output[0], page)
with open(sm.log[0], "w") as log:
    log.write(f"wrote {sm.output[0]}\n")
