# The settings each stage runs with, as files: a changed key rewrites only the file it belongs to,
# so only the stages that read that file rerun.


rule train_settings:
    output:
        f"{RESULTS}/settings/train.json",
    params:
        settings=train_settings(config["seed"]),
        code=script_hash(Path(workflow.basedir) / "scripts" / "write_json.py"),
    log:
        f"{RESULTS}/logs/train_settings.log",
    script:
        "../scripts/write_json.py"


rule surrogate_settings:
    output:
        f"{RESULTS}/settings/surrogate.json",
    params:
        settings={**config["surrogate"], "max_blocks": B, "seed": config["seed"]},
        code=script_hash(Path(workflow.basedir) / "scripts" / "write_json.py"),
    log:
        f"{RESULTS}/logs/surrogate_settings.log",
    script:
        "../scripts/write_json.py"


rule selection_settings:
    output:
        f"{RESULTS}/settings/selection.json",
    params:
        settings={key: config["search"][key] for key in SELECTION_KEYS},
        code=script_hash(Path(workflow.basedir) / "scripts" / "write_json.py"),
    log:
        f"{RESULTS}/logs/selection_settings.log",
    script:
        "../scripts/write_json.py"
