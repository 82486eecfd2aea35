"""Write the HTML report's landing page (reStructuredText) for a finished run: what ran (the
config), the best cell and the final network's test accuracy (pnas_core.io.report_text, which escapes
every value for Snakemake's Jinja2 and reStructuredText renderers). Injected by Snakemake: ``snakemake``."""

import json

from pnas_core.io.atomic import write_text
from pnas_core.io.report_text import landing_page

sm = snakemake  # noqa: F821 (injected by Snakemake)
with open(sm.input.best) as fh:
    best_lines = fh.read().splitlines()
with open(sm.input.metrics) as fh:
    metrics = json.load(fh)
with open(sm.input.final_settings) as fh:
    final = json.load(fh)
write_text(sm.output[0], landing_page(sm.config, best_lines, metrics, final))
with open(sm.log[0], "w") as log:
    log.write(f"wrote {sm.output[0]}\n")
