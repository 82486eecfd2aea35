"""Write a CSV table as an HTML page for the report (pnas_core.io.report_text.table_page, every value
escaped): the report's "view" shows an HTML page, where a CSV is only a download. Injected by
Snakemake: ``snakemake``."""

from pathlib import Path

import pandas as pd

from pnas_core.io.atomic import write_text
from pnas_core.io.report_text import table_page

sm = snakemake  # noqa: F821 (injected by Snakemake)
frame = pd.read_csv(sm.input[0])
write_text(sm.output[0], table_page(f"{Path(sm.input[0]).name} ({sm.config['name']})", frame))
with open(sm.log[0], "w") as log:
    log.write(f"wrote {sm.output[0]} ({len(frame)} rows)\n")
