# The HTML report's landing page (`snakemake --report`): what ran, the best cell and the final test
# accuracy, written once the run has finished; before that, report/workflow.rst stands in.

REPORT_PAGE = f"{RESULTS}/report_page.rst"


rule report_page:
    input:
        best=f"{RESULTS}/best_cell.txt",
        metrics=f"{RESULTS}/final/metrics.json",
        final_settings=f"{RESULTS}/settings/final.json",
    output:
        REPORT_PAGE,
    log:
        f"{RESULTS}/logs/report_page.log",
    script:
        "../scripts/report_page.py"


report: os.path.abspath(REPORT_PAGE) if os.path.exists(REPORT_PAGE) else "../report/workflow.rst"
