# A tabular benchmark (`snakemake --configfile config/bench_digits.yaml bench_table`): every distinct cell
# of the configured space (search.ops, B = search.max_blocks) trained with each of benchmark.seeds through
# the same train_shard rule and cache as the search, assembled into one Parquet table.


rule bench_cells:
    output:
        candidates=f"{RESULTS}/bench/candidates.parquet",
    params:
        ops=OPS,
        max_blocks=B,
        code=command_hash("bench_cmds.run_cells"),
    log:
        f"{RESULTS}/logs/bench/cells.log",
    shell:
        "pnas bench-cells --ops {params.ops:q} --max-blocks {params.max_blocks:q} --out {output.candidates:q} > {log:q} 2>&1"


rule bench_train_settings:
    output:
        f"{RESULTS}/settings/train_seed{{seed}}.json",
    wildcard_constraints:
        seed=r"\d+",
    params:
        settings=lambda wc: train_settings(int(wc.seed)),
        code=script_hash(Path(workflow.basedir) / "scripts" / "write_json.py"),
    log:
        f"{RESULTS}/logs/train_settings_seed{{seed}}.log",
    script:
        "../scripts/write_json.py"


rule bench_table:
    input:
        trained=[f"{RESULTS}/bench/seed{s}/trained.parquet" for s in BENCH_SEEDS],
    output:
        table=f"{RESULTS}/bench/table.parquet",
    params:
        ops=OPS,
        max_blocks=B,
        train_threads=config["train_threads"],  # torch threads per training, recorded for retraining
        code=command_hash("bench_cmds.run_table"),
    log:
        f"{RESULTS}/logs/bench/table.log",
    shell:
        "pnas bench-table --trained {input.trained:q} --ops {params.ops:q} --max-blocks {params.max_blocks:q}"
        " --threads {params.train_threads} --out {output.table:q} > {log:q} 2>&1"
