# The paper's figures, drawn from cached results only: `snakemake figures` plans no training or fitting
# when the search, the baseline and the quality experiment are done.
FIGURES = f"{RESULTS}/figures"


def random_inputs(wildcards=None):
    if not config["random_search"]["enabled"]:
        return {}
    return {
        "random_trained": f"{RESULTS}/random/trained.parquet",
        "random_candidates": f"{RESULTS}/random/candidates.parquet",
    }


def random_flags(stem, input):
    if stem == "predicted_vs_true" or "random_trained" not in input.keys():
        return ""
    return f"--random-trained {input.random_trained} --random-candidates {input.random_candidates}"


def figure_outputs(stem, category):
    return {
        "png": report(
            f"{FIGURES}/{stem}.png", caption=f"../report/{stem}.rst", category=category, labels={"file": "png"}
        ),
        "pdf": f"{FIGURES}/{stem}.pdf",
        "csv": f"{FIGURES}/{stem}.csv",
    }


rule figure_quality:
    input:
        quality=[f"{RESULTS}/quality/b{b}/quality.parquet" for b in QUALITY_SIZES],
    output:
        **figure_outputs("predictor_quality", "1. Predictor quality"),
    params:
        code=FIGURES_CODE,
    log:
        f"{RESULTS}/logs/figures/predictor_quality.log",
    shell:
        "pnas figures quality --quality {input.quality} --out-dir {FIGURES} > {log} 2>&1"


for _stem, _kind in FIGURE_KINDS.items():

    # One rule per figure: a report caption cannot depend on a wildcard.
    rule:
        name:
            f"figure_{_stem}"
        input:
            unpack(random_inputs),
            summary=f"{RESULTS}/summary.parquet",
        output:
            **figure_outputs(_stem, "2. Search"),
        params:
            kind=_kind,
            random=lambda wc, input, stem=_stem: random_flags(stem, input),
            code=FIGURES_CODE,
        log:
            f"{RESULTS}/logs/figures/{_stem}.log",
        shell:
            "pnas figures {params.kind} --summary {input.summary} {params.random} --out-dir {FIGURES}"
            " > {log} 2>&1"


rule figure_best_cell:
    input:
        best=f"{RESULTS}/best_cell.txt",
    output:
        **figure_outputs("best_cell", "3. Best cell"),
    params:
        code=FIGURES_CODE,
    log:
        f"{RESULTS}/logs/figures/best_cell.log",
    shell:
        "pnas figures cell --best-cell {input.best} --out-dir {FIGURES} > {log} 2>&1"


rule figures:
    input:
        figure_files(),
