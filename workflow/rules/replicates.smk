# Replicated searches (`snakemake --cores N replicates`): for every seed of replicates.seeds, the
# configured search (PNAS with the search section's predictors, selection, K, B and early stopping)
# and each baseline of replicates.baselines, one job per (strategy, seed) that runs the whole strategy
# in process, training through the shared result cache: a killed job reruns and reads back what it had
# trained. Then one comparison of them all (docs/method.md, "Replicated searches").


rule replicate:
    input:
        settings=f"{RESULTS}/settings/train_seed{{seed}}.json",
        surrogate=f"{RESULTS}/settings/surrogate.json",
        selection=lambda wc: [SELECTION] if wc.strategy == "pnas" else [],  # the search's selection
    output:
        run=f"{REPLICATE_DIR}/{{strategy}}/seed{{seed}}.parquet",
    wildcard_constraints:
        strategy="|".join(REPLICATE_STRATEGIES),
        seed=r"\d+",
    params:
        text=lambda wc: REPLICATE_STRATEGIES[wc.strategy],
        selection=lambda wc, input: f"--selection {shlex.quote(input.selection[0])}" if input.selection else "",
        ops=" ".join(OPS),
        max_blocks=B,
        beam_size=K,
        budget=f"--budget {REPLICATES['budget']}" if REPLICATES["budget"] else "",
        cache=CACHE_DIR,
        code=command_hash("replicate_cmds.run_replicate"),
    threads: config["train_threads"]
    resources:
        gpu=1 if TRAIN_GPU else 0,
    log:
        f"{RESULTS}/logs/replicates/{{strategy}}/seed{{seed}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/replicates/{{strategy}}/seed{{seed}}.tsv"
    shell:
        "pnas replicate --strategy {params.text:q} {params.selection} --name {wildcards.strategy}"
        " --settings {input.settings:q}"
        " --surrogate-settings {input.surrogate:q} --ops {params.ops} --max-blocks {params.max_blocks}"
        " --beam-size {params.beam_size} {params.budget} --cache-dir={params.cache:q} --threads {threads}"
        " --out {output.run:q} > {log:q} 2>&1"


rule compare_replicates:
    input:
        runs=replicate_runs(),
    output:
        comparison=f"{REPLICATE_DIR}/comparison.parquet",
        text=f"{REPLICATE_DIR}/comparison.txt",
        strategies=f"{REPLICATE_DIR}/strategies.csv",
        paired=f"{REPLICATE_DIR}/paired.csv",
        reach=f"{REPLICATE_DIR}/reach.csv",
        png=report(
            f"{REPLICATE_DIR}/replicates.png",
            caption="../report/replicates.rst",
            category="4. Replicates",
            labels={"figure": "Replicated searches"},
        ),
        pdf=f"{REPLICATE_DIR}/replicates.pdf",
        csv=f"{REPLICATE_DIR}/replicates.csv",
    params:
        out_dir=lambda wc, output: os.path.dirname(output.comparison),
        code=command_hash("replicate_cmds.run_compare"),
    log:
        f"{RESULTS}/logs/replicates/compare.log",
    shell:
        # the comparison is printed (the job's output) and kept in comparison.txt
        "pnas compare-replicates --runs {input.runs:q} --reference pnas --out-dir {params.out_dir:q} 2> {log:q}"


rule replicates_table:
    # A table of the comparison as an HTML page: the report's "view" shows HTML; a CSV is only a download.
    input:
        f"{REPLICATE_DIR}/{{table}}.csv",
    output:
        report(f"{REPLICATE_DIR}/{{table}}.html", caption="../report/replicates_table.rst", category="4. Replicates"),
    wildcard_constraints:
        table="strategies|paired",
    log:
        f"{RESULTS}/logs/replicates/{{table}}_table.log",
    script:
        "../scripts/report_table.py"


rule replicates:
    input:
        rules.compare_replicates.output,
        expand(f"{REPLICATE_DIR}/{{table}}.html", table=("strategies", "paired")),
