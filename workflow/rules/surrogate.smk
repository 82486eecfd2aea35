# Fit every predictor on all records trained so far (levels 1..b); with surrogate.warm_start, levels
# >= 2 start the neural ensembles from the previous level's fitted members.


rule fit_surrogate:
    input:
        records=lambda wc: trained_upto(wc.level),
        settings=f"{RESULTS}/settings/surrogate.json",
        warm=warm_start_input,
    output:
        surrogate=directory(f"{RESULTS}/level{{level}}/surrogate"),
    params:
        predictors=config["search"]["predictors"],
        warm=lambda wc, input: warm_start_flag(input),
        fit_on=(EARLY_STOP or {}).get("fit_on", "full"),
        code=command_hash("surrogate_cmds.run_fit"),
    threads: config["surrogate_threads"]
    resources:
        gpu=1 if SURROGATE_GPU else 0,
    log:
        f"{RESULTS}/logs/level{{level}}/fit_surrogate.log",
    benchmark:
        f"{RESULTS}/benchmarks/level{{level}}/fit_surrogate.tsv"
    shell:
        "pnas fit-surrogate --records {input.records:q} --predictors {params.predictors:q}"
        " --fit-on {params.fit_on:q} --settings {input.settings:q} {params.warm} --threads {threads}"
        " --out {output.surrogate:q} > {log:q} 2>&1"
