# Experiments beside the search, trained through the same train_shard rule and cache:
# a random-search baseline with the PNAS budget, and the paper's predictor-quality experiment
# (Algorithm 2). Their samples are seeded and fixed before anything trains: the DAG stays static.


rule sample_random:
    output:
        candidates=f"{RESULTS}/random/candidates.parquet",
    params:
        blocks=RANDOM_BLOCKS,
        n=RANDOM_BUDGET,
        seed=config["seed"],
        ops=" ".join(OPS),
        code=BEAM_CODE,
    log:
        f"{RESULTS}/logs/random/sample.log",
    shell:
        "pnas sample --blocks {params.blocks} --n {params.n} --seed {params.seed} --ops {params.ops}"
        " --out {output.candidates:q} > {log:q} 2>&1"


rule sample_quality:
    output:
        candidates=f"{RESULTS}/quality/b{{b}}/candidates.parquet",
    params:
        n=lambda wc: quality_cells(int(wc.b)),
        seed=lambda wc: config["seed"] + 1000 * int(wc.b),
        ops=" ".join(OPS),
        code=BEAM_CODE,
    log:
        f"{RESULTS}/logs/quality/b{{b}}/sample.log",
    shell:
        "pnas sample --blocks {wildcards.b} --n {params.n} --seed {params.seed} --ops {params.ops}"
        " --out {output.candidates:q} > {log:q} 2>&1"


rule eval_quality:
    input:
        fitted=f"{RESULTS}/quality/b{{b}}/trained.parquet",
        larger=lambda wc: f"{RESULTS}/quality/b{int(wc.b) + 1}/trained.parquet",
        settings=f"{RESULTS}/settings/surrogate.json",
    output:
        quality=f"{RESULTS}/quality/b{{b}}/quality.parquet",
    params:
        predictors=" ".join(config["search"]["predictors"]),
        repeats=config["quality"]["repeats"],
        train_size=lambda wc: min(config["quality"]["train_size"], quality_cells(int(wc.b))),
        seed=config["seed"],
        code=SURROGATE_CODE,
    threads: 2
    log:
        f"{RESULTS}/logs/quality/b{{b}}/eval.log",
    benchmark:
        f"{RESULTS}/benchmarks/quality/b{{b}}/eval.tsv"
    shell:
        "pnas eval-surrogate --records {input.fitted:q} {input.larger:q} --blocks {wildcards.b}"
        " --predictors {params.predictors} --settings {input.settings:q} --repeats {params.repeats}"
        " --train-size {params.train_size} --seed {params.seed} --out {output.quality:q} > {log:q} 2>&1"
