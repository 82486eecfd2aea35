# Every trained cell of the search with its level, accuracy, size and the predictions made before it
# was trained; and the best cell.


rule summarize:
    input:
        candidates=[f"{level_dir(b)}/candidates.parquet" for b in LEVELS],
        trained=[f"{level_dir(b)}/trained.parquet" for b in LEVELS],
    output:
        summary=f"{RESULTS}/summary.parquet",
        best=f"{RESULTS}/best_cell.txt",
        csv=report(f"{RESULTS}/summary.csv", caption="../report/summary.rst", category="0. Summary"),
    params:
        code=command_hash("summary_cmds.run"),
    log:
        f"{RESULTS}/logs/summarize.log",
    shell:
        "pnas summarize --candidates {input.candidates} --trained {input.trained}"
        " --out {output.summary} --best {output.best} --csv {output.csv} > {log} 2>&1"


onsuccess:
    best = Path(f"{RESULTS}/best_cell.txt")
    if best.exists():
        print(f"\npnas: best cell ({best}):\n  {best.read_text().splitlines()[0]}")
        print(f"pnas: every trained cell: {RESULTS}/summary.parquet\n")
