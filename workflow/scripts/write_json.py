"""Write ``snakemake.params.settings`` to ``snakemake.output[0]`` as JSON, atomically."""

from pnas_core.io.atomic import write_json

write_json(snakemake.output[0], snakemake.params.settings)  # noqa: F821 (injected by Snakemake)
with open(snakemake.log[0], "w") as log:  # noqa: F821
    log.write(f"wrote {snakemake.output[0]}\n")  # noqa: F821
