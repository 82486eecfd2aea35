# Early stopping (search.early_stop): each level trains in rungs, stage level<L>/rung<r> trains to
# epoch r (the last rung is the full budget, train.epochs) in SHARDS shards like any stage (train.smk);
# `pnas promote` keeps the best share for the next rung; `pnas finish-level` writes the level's
# records (each candidate's last rung) and deletes the level's rung checkpoints from the cache.

if EARLY_STOP:

    ruleorder: finish_level > merge_shards

    rule promote:
        input:
            candidates=lambda wc: rung_candidates(wc.level, wc.rung),
            records=f"{RESULTS}/level{{level}}/rung{{rung}}/trained.parquet",
        output:
            candidates=f"{RESULTS}/level{{level}}/rung{{rung}}/promoted.parquet",
        params:
            keep=EARLY_STOP["keep"],
            code=command_hash("train_cmds.run_promote"),
        log:
            f"{RESULTS}/logs/level{{level}}/promote_rung{{rung}}.log",
        shell:
            "pnas promote --candidates {input.candidates:q} --records {input.records:q}"
            " --keep {params.keep:q} --out {output.candidates:q} > {log:q} 2>&1"

    rule finish_level:
        input:
            rungs=lambda wc: [f"{level_dir(wc.level)}/rung{e}/trained.parquet" for e in RUNG_EPOCHS],
        output:
            trained=f"{RESULTS}/level{{level}}/trained.parquet",
        params:
            cache=CACHE_DIR,
            code=command_hash("train_cmds.run_finish"),
        log:
            f"{RESULTS}/logs/level{{level}}/finish_level.log",
        shell:
            "pnas finish-level --cache-dir={params.cache:q} --out {output.trained:q} {input.rungs:q}"
            " > {log:q} 2>&1"
