# Experiments beside the search, trained through the same train_shard rule and cache: a random-search
# baseline with the PNAS budget (`pnas sample --n auto` computes it), and the paper's predictor-quality
# experiment (Algorithm 2). Their samples are seeded and fixed before anything trains: the DAG stays static.


rule sample_random:
    output:
        candidates=f"{RESULTS}/random/candidates.parquet",
    params:
        blocks=RANDOM_BLOCKS,
        n="auto" if config["random_search"]["budget"] is None else config["random_search"]["budget"],
        beam_size=K,
        max_blocks=B,
        seed=config["seed"],
        ops=OPS,
        code=command_hash("surrogate_cmds.run_sample"),
    log:
        f"{RESULTS}/logs/random/sample.log",
    shell:
        "pnas sample --blocks {params.blocks:q} --n {params.n:q} --beam-size {params.beam_size:q}"
        " --max-blocks {params.max_blocks:q} --seed {params.seed:q}"
        " --ops {params.ops:q} --out {output.candidates:q} > {log:q} 2>&1"


rule sample_quality:
    output:
        candidates=f"{RESULTS}/quality/b{{b}}/candidates.parquet",
    params:
        n=config["quality"]["cells_per_size"],
        seed=lambda wc: config["seed"] + 1000 * int(wc.b),
        ops=OPS,
        code=command_hash("surrogate_cmds.run_sample"),
    log:
        f"{RESULTS}/logs/quality/b{{b}}/sample.log",
    shell:
        "pnas sample --blocks {wildcards.b} --n {params.n:q} --seed {params.seed:q} --ops {params.ops:q}"
        " --out {output.candidates:q} > {log:q} 2>&1"


rule eval_quality:
    input:
        # Algorithm 2: the predictor at size b is fit on random cells of every size 1..b.
        fitted=lambda wc: [f"{RESULTS}/quality/b{j}/trained.parquet" for j in range(1, int(wc.b) + 1)],
        larger=lambda wc: f"{RESULTS}/quality/b{int(wc.b) + 1}/trained.parquet",
        settings=f"{RESULTS}/settings/surrogate.json",
    output:
        quality=f"{RESULTS}/quality/b{{b}}/quality.parquet",
    params:
        predictors=config["search"]["predictors"],
        repeats=config["quality"]["repeats"],
        train_size=config["quality"]["train_size"],
        seed=config["seed"],
        code=command_hash("surrogate_cmds.run_eval"),
    threads: 2
    resources:
        gpu=1 if SURROGATE_GPU else 0,
    log:
        f"{RESULTS}/logs/quality/b{{b}}/eval.log",
    benchmark:
        f"{RESULTS}/benchmarks/quality/b{{b}}/eval.tsv"
    shell:
        "pnas eval-surrogate --records {input.fitted:q} {input.larger:q} --blocks {wildcards.b}"
        " --predictors {params.predictors:q} --settings {input.settings:q} --repeats {params.repeats:q}"
        " --train-size {params.train_size:q} --seed {params.seed:q} --out {output.quality:q} > {log:q} 2>&1"
