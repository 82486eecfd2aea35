# Every trained cell of the search with its level, accuracy, size and the predictions made before it
# was trained; and the best cell.


rule summarize:
    input:
        candidates=[f"{level_dir(b)}/candidates.parquet" for b in LEVELS],
        trained=[f"{level_dir(b)}/trained.parquet" for b in LEVELS],
    output:
        summary=f"{RESULTS}/summary.parquet",
        best=f"{RESULTS}/best_cell.txt",
        csv=f"{RESULTS}/summary.csv",
    params:
        code=command_hash("summary_cmds.run"),
    log:
        f"{RESULTS}/logs/summarize.log",
    shell:
        "pnas summarize --candidates {input.candidates:q} --trained {input.trained:q}"
        " --out {output.summary:q} --best {output.best:q} --csv {output.csv:q} > {log:q} 2>&1"


rule summary_table:
    # The summary as an HTML page: the report's "view" shows HTML; a CSV is only a download.
    input:
        f"{RESULTS}/summary.csv",
    output:
        report(f"{RESULTS}/summary.html", caption="../report/summary.rst", category="0. Summary"),
    log:
        f"{RESULTS}/logs/summary_table.log",
    script:
        "../scripts/report_table.py"


onsuccess:
    best = Path(f"{RESULTS}/best_cell.txt")
    if best.exists():
        print(f"\npnas: best cell ({best}):\n  {best.read_text().splitlines()[0]}")
        print(f"pnas: every trained cell: {RESULTS}/summary.parquet\n")
