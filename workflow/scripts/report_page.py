"""Write the HTML report's landing page (reStructuredText) for a finished run: what ran (the
config), the best cell and the final network's test accuracy. Injected by Snakemake: ``snakemake``."""

import json

import yaml

from pnas_core.atomic import write_text

sm = snakemake  # noqa: F821 (injected by Snakemake)
cfg = sm.config
search = cfg["search"]
best_lines = open(sm.input.best).read().splitlines()
metrics = json.load(open(sm.input.metrics))
final = json.load(open(sm.input.final_settings))
title = f"pnas run {cfg['name']}"
config_block = "\n".join("    " + line for line in yaml.safe_dump(cfg, sort_keys=False).splitlines())
page = f"""{title}
{"=" * len(title)}

Progressive Neural Architecture Search (Liu et al., ECCV 2018) on ``{cfg["dataset"]}``: cells of up to
B = {search["max_blocks"]} blocks over the ops {", ".join(search["ops"])}; every 1-block cell trained, then
at each level the top K = {search["beam_size"]} children by the predictors' accuracy ({", ".join(search["predictors"])},
selected by ``{search["select_by"]}``).

**Best cell**: ``{best_lines[0]}``
({best_lines[1].lstrip("# ") if len(best_lines) > 1 else "see best_cell.txt"}).

**Final network**: the best cell stacked with N = {final.get("cells_per_stack", "default")} cells per stack,
{metrics["params"]:,} parameters, trained {metrics["epochs"]} epochs on {metrics["train_images"]:,} images
(train + validation): **test accuracy {metrics["test_acc"]:.4f}** on {metrics["test_images"]:,} images the
search never read.

Every figure is an entry of the menu (*Results*), each with its caption; the summary table lists
every trained cell.

Configuration (keys a config leaves out take the defaults of config/README.md):

{{% raw %}}
.. code-block:: yaml

{config_block}
{{% endraw %}}
"""
write_text(sm.output[0], page)
with open(sm.log[0], "w") as log:
    log.write(f"wrote {sm.output[0]}\n")
