# Train the candidates of any stage in SHARDS shards, then merge. Every finished candidate also lands
# in the shared cache (config cache_dir), so no cell is trained twice by any level or experiment.
# Each job's details go to its log; its stage's progress line (trained/planned, best so far, elapsed,
# time left) goes to the terminal: `3>&2` keeps Snakemake's stderr as file descriptor 3 for it.


rule train_shard:
    input:
        unpack(stage_inputs),
    output:
        shard=f"{RESULTS}/{{stage}}/train/shard{{shard}}.parquet",
    params:
        num_shards=SHARDS,
        cache=CACHE_DIR,
        code=command_hash("train_cmds.run_train"),
        workers=TRAIN_WORKERS,
        stop=stop_flags,
    # train_threads torch threads for each of the shard's train.workers concurrent candidates
    threads: config["train_threads"] * TRAIN_WORKERS
    resources:
        gpu=1 if TRAIN_GPU else 0,
    log:
        f"{RESULTS}/logs/{{stage}}/train_shard{{shard}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/{{stage}}/train_shard{{shard}}.tsv"
    shell:
        "pnas train --candidates {input.candidates:q} --settings {input.settings:q}"
        " --shard {wildcards.shard} --num-shards {params.num_shards:q} --cache-dir={params.cache:q}"
        " --threads {threads} --workers {params.workers:q} {params.stop} --out {output.shard:q}"
        " --stage {wildcards.stage:q} --progress-fd 3 3>&2 > {log:q} 2>&1"


rule merge_shards:
    input:
        shards=lambda wc: [f"{RESULTS}/{wc.stage}/train/shard{i}.parquet" for i in range(SHARDS)],
    output:
        trained=f"{RESULTS}/{{stage}}/trained.parquet",
    params:
        code=command_hash("train_cmds.run_merge"),
    log:
        f"{RESULTS}/logs/{{stage}}/merge.log",
    shell:
        "pnas merge-records --out {output.trained:q} {input.shards:q} > {log:q} 2>&1"
