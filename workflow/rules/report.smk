# The HTML report's landing page (`snakemake --report`), answer first: the best cell with its figure, its
# validation and test accuracy, the models trained, PNAS against random search; then what ran. Written
# once the run has finished; before that, report/workflow.rst stands in.

REPORT_PAGE = f"{RESULTS}/report_page.rst"


rule report_page:
    input:
        unpack(random_inputs),
        best=f"{RESULTS}/best_cell.txt",
        summary=f"{RESULTS}/summary.parquet",
        cell_png=f"{FIGURES}/{FIGURE_STEMS['cell']}.png",
        metrics=f"{RESULTS}/final/metrics.json",
        final_settings=f"{RESULTS}/settings/final.json",
    output:
        REPORT_PAGE,
    log:
        f"{RESULTS}/logs/report_page.log",
    script:
        "../scripts/report_page.py"


report: os.path.abspath(REPORT_PAGE) if os.path.exists(REPORT_PAGE) else "../report/workflow.rst"
