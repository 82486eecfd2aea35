# Train the candidates of any stage in SHARDS shards, then merge. Every finished candidate also lands
# in the shared cache (config cache_dir), so no cell is trained twice by any level or experiment.


rule train_shard:
    input:
        unpack(stage_inputs),
    output:
        shard=f"{RESULTS}/{{stage}}/train/shard{{shard}}.parquet",
    params:
        num_shards=SHARDS,
        cache=CACHE_DIR,
        code=TRAIN_CODE,
    threads: config["train_threads"]
    resources:
        gpu=1 if USE_GPU else 0,
    log:
        f"{RESULTS}/logs/{{stage}}/train_shard{{shard}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/{{stage}}/train_shard{{shard}}.tsv"
    shell:
        "pnas train --candidates {input.candidates} --settings {input.settings}"
        " --shard {wildcards.shard} --num-shards {params.num_shards} --cache-dir {params.cache}"
        " --threads {threads} --out {output.shard} > {log} 2>&1"


rule merge_shards:
    input:
        shards=expand(f"{RESULTS}/{{{{stage}}}}/train/shard{{shard}}.parquet", shard=range(SHARDS)),
    output:
        trained=f"{RESULTS}/{{stage}}/trained.parquet",
    params:
        code=TRAIN_CODE,
    log:
        f"{RESULTS}/logs/{{stage}}/merge.log",
    shell:
        "pnas merge-records --out {output.trained} {input.shards} > {log} 2>&1"
