# Which cells each level trains: all 1-block cells at level 1, then K children of the previous level
# picked by predicted accuracy (optionally an upper confidence bound, within cost budgets, or from
# Pareto fronts of predicted accuracy against cost; see config/README.md).

rule enumerate_level1:
    output:
        candidates=f"{RESULTS}/level1/candidates.parquet",
    params:
        ops=OPS,
        code=command_hash("surrogate_cmds.run_enumerate"),
    log:
        f"{RESULTS}/logs/level1/enumerate.log",
    shell:
        "pnas enumerate --ops {params.ops:q} --out {output.candidates:q} > {log:q} 2>&1"


rule expand_score:
    input:
        parents=lambda wc: f"{level_dir(int(wc.level) - 1)}/candidates.parquet",
        surrogate=lambda wc: f"{level_dir(int(wc.level) - 1)}/surrogate",
        settings=f"{RESULTS}/settings/train.json",
    output:
        scored=f"{RESULTS}/level{{level}}/scored.parquet",
    params:
        ops=OPS,
        code=command_hash("surrogate_cmds.run_expand_score"),
    threads: config["surrogate_threads"]
    resources:
        gpu=1 if SURROGATE_GPU else 0,
    log:
        f"{RESULTS}/logs/level{{level}}/expand_score.log",
    benchmark:
        f"{RESULTS}/benchmarks/level{{level}}/expand_score.tsv"
    shell:
        "pnas expand-score --parents {input.parents:q} --surrogate {input.surrogate:q} --ops {params.ops:q}"
        " --settings {input.settings:q} --threads {threads} --out {output.scored:q} > {log:q} 2>&1"


rule select_top_k:
    input:
        scored=f"{RESULTS}/level{{level}}/scored.parquet",
        selection=SELECTION,
    output:
        candidates=f"{RESULTS}/level{{level}}/candidates.parquet",
    wildcard_constraints:
        level=r"[2-9]",
    params:
        k=K,
        code=command_hash("surrogate_cmds.run_select"),
    log:
        f"{RESULTS}/logs/level{{level}}/select.log",
    shell:
        "pnas select --scored {input.scored:q} --k {params.k:q} --selection {input.selection:q} --out {output.candidates:q} > {log:q} 2>&1"
