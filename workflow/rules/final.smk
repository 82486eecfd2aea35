# The final network (docs/method.md, "The final network"): the best cell stacked deeper and wider, trained on train+val, evaluated
# once on test, then exported to TorchScript. `pnas final-train` checkpoints into the output folder
# (checkpoint.pt is no declared output, so Snakemake keeps it): a killed job resumes where it stopped.

rule final_settings:
    output:
        f"{RESULTS}/settings/final.json",
    params:
        settings={
            **{k: config["train"][k] for k in FINAL_DATA_KEYS if k in config["train"]},
            **config["final"],
            "dataset": config["dataset"],
            **({"data_root": config["data_root"]} if config.get("data_root") else {}),
            "seed": config["seed"],
        },
        code=script_hash(Path(workflow.basedir) / "scripts" / "write_json.py"),
    log:
        f"{RESULTS}/logs/final_settings.log",
    script:
        "../scripts/write_json.py"


rule final_train:
    input:
        cell=f"{RESULTS}/best_cell.txt",
        settings=f"{RESULTS}/settings/final.json",
    output:
        model=f"{FINAL}/model.pt",
        cell=f"{FINAL}/cell.txt",
        settings=f"{FINAL}/settings.json",
        metrics=f"{FINAL}/metrics.json",
        curve=f"{FINAL}/curve.parquet",
        png=report(f"{FINAL}/curve.png", caption="../report/final_curve.rst", category="4. Final network"),
        pdf=f"{FINAL}/curve.pdf",
        csv=f"{FINAL}/curve.csv",
    params:
        out_dir=lambda wc, output: os.path.dirname(output.model),
        code=command_hash("final_cmds.run_final_train"),
    threads: config["train_threads"]
    resources:
        gpu=1 if FINAL_GPU else 0,
    log:
        f"{RESULTS}/logs/final_train.log",
    benchmark:
        f"{RESULTS}/benchmarks/final_train.tsv"
    shell:
        "pnas final-train --cell-file {input.cell} --settings {input.settings} --out-dir {params.out_dir}"
        " --threads {threads} > {log} 2>&1"


rule final_export:
    input:
        model=f"{FINAL}/model.pt",
    output:
        f"{FINAL}/model.torchscript.pt",
    params:
        code=command_hash("final_cmds.run_export"),
    log:
        f"{RESULTS}/logs/final_export.log",
    shell:
        "pnas export --model {input.model} --format torchscript --out {output} > {log} 2>&1"
