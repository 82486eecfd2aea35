# Which cells each level trains: all 1-block cells at level 1, then K children of the previous level
# picked by predicted accuracy (optionally an upper confidence bound, within cost budgets, or from
# Pareto fronts of predicted accuracy against cost; see config/README.md).

COST_CODE = code_hash("cost.py", "network.py", "ops.py", "complexity.py")
SELECT_CODE = code_hash("selection.py")


def select_flags():
    """`pnas select` flags for the search section's selection keys."""
    search = config["search"]
    flags = [f"--by {search['select_by']}"]
    if search["select_by"] == "ucb":
        flags.append(f"--kappa {search['ucb_kappa']}")
    if search["max_params"] is not None:
        flags.append(f"--max-params {search['max_params']}")
    if search["max_mult_adds"] is not None:
        flags.append(f"--max-mult-adds {search['max_mult_adds']}")
    if search["pareto"]:
        flags.append(f"--pareto --pareto-cost {search['pareto_cost']}")
    return " ".join(flags)


rule enumerate_level1:
    output:
        candidates=f"{RESULTS}/level1/candidates.parquet",
    params:
        ops=" ".join(OPS),
        code=BEAM_CODE,
    log:
        f"{RESULTS}/logs/level1/enumerate.log",
    shell:
        "pnas enumerate --ops {params.ops} --out {output.candidates} > {log} 2>&1"


rule expand_score:
    input:
        parents=lambda wc: f"{level_dir(int(wc.level) - 1)}/candidates.parquet",
        surrogate=lambda wc: f"{level_dir(int(wc.level) - 1)}/surrogate",
        settings=f"{RESULTS}/settings/train.json",
    output:
        scored=f"{RESULTS}/level{{level}}/scored.parquet",
    params:
        ops=" ".join(OPS),
        code=SURROGATE_CODE,
        cost_code=COST_CODE,
    log:
        f"{RESULTS}/logs/level{{level}}/expand_score.log",
    benchmark:
        f"{RESULTS}/benchmarks/level{{level}}/expand_score.tsv"
    shell:
        "pnas expand-score --parents {input.parents} --surrogate {input.surrogate} --ops {params.ops}"
        " --settings {input.settings} --out {output.scored} > {log} 2>&1"


rule select_top_k:
    input:
        scored=f"{RESULTS}/level{{level}}/scored.parquet",
    output:
        candidates=f"{RESULTS}/level{{level}}/candidates.parquet",
    wildcard_constraints:
        level=r"[2-9]",
    params:
        k=K,
        flags=select_flags(),
        code=BEAM_CODE,
        select_code=SELECT_CODE,
    log:
        f"{RESULTS}/logs/level{{level}}/select.log",
    shell:
        "pnas select --scored {input.scored} --k {params.k} {params.flags} --out {output.candidates} > {log} 2>&1"
