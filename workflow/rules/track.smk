# Optional experiment tracking (config `tracking`, off by default): `pnas track` logs every trained
# candidate and the final network to MLflow and/or TensorBoard under results/<name>/tracking/. Target
# all asks for it only when a key is on; Snakemake removes the folder before it reruns the rule.

rule track:
    input:
        search_outputs(),
        f"{RESULTS}/settings/train.json",
        f"{FINAL}/metrics.json",
        f"{FINAL}/model.pt",
        f"{FINAL}/curve.parquet",
    output:
        directory(f"{RESULTS}/tracking"),
    params:
        results=lambda wc, output: os.path.dirname(output[0]),
        flags=" ".join(TRACK_FLAGS),
        code=command_hash("track_cmds.run"),
    log:
        f"{RESULTS}/logs/track.log",
    shell:
        "pnas track {params.results:q} {params.flags} > {log:q} 2>&1"
