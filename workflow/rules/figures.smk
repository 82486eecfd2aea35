# The paper's figures, drawn from cached results only: `snakemake figures` plans no training or fitting
# when the search, the baseline and the quality experiment are done.


rule figure_quality:
    input:
        quality=[f"{RESULTS}/quality/b{b}/quality.parquet" for b in QUALITY_SIZES],
    output:
        **figure_outputs("predictor_quality", "1. Predictor quality"),
    params:
        out_dir=lambda wc, output: os.path.dirname(output.png),
        code=command_hash("figure_cmds.run_quality"),
    log:
        f"{RESULTS}/logs/figures/predictor_quality.log",
    shell:
        "pnas figures quality --quality {input.quality} --out-dir {params.out_dir} > {log} 2>&1"


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
            out_dir=lambda wc, output: os.path.dirname(output.png),
            code=command_hash(f"figure_cmds.run_{_kind}"),
        log:
            f"{RESULTS}/logs/figures/{_stem}.log",
        shell:
            "pnas figures {params.kind} --summary {input.summary} {params.random} --out-dir {params.out_dir}"
            " > {log} 2>&1"


rule figure_best_cell:
    input:
        best=f"{RESULTS}/best_cell.txt",
    output:
        **figure_outputs("best_cell", "3. Best cell"),
    params:
        out_dir=lambda wc, output: os.path.dirname(output.png),
        code=command_hash("figure_cmds.run_cell"),
    log:
        f"{RESULTS}/logs/figures/best_cell.log",
    shell:
        "pnas figures cell --best-cell {input.best} --out-dir {params.out_dir} > {log} 2>&1"


rule figures:
    input:
        figure_files(),
