rule report:
    input:
        expand(f"{SEED_DIR}/metrics.json", **REPLICATES),
        expand(f"{SEED_DIR}/per_image.csv", **REPLICATES),
        expand(f"{FOLD_DIR}/history.csv", fold=SWEEP["folds"], **REPLICATES),
        SPLIT[1:],
        code("report"),
    output:
        "results/report/comparison.xlsx",
        "results/report/comparison.md",
        "results/report/statistics.json",
        "results/report/summary.json",
        report(
            "results/report/report.html",
            caption="../report/report_html.rst",
            category="Report",
        ),
        [
            report(
                f"results/report/figures/{figure}.png",
                caption=f"../report/{figure}.rst",
                category="Figures",
            )
            for figure in FIGURES
        ],
        expand("results/report/figures/{figure}.svg", figure=FIGURES),
    log:
        "logs/report.log",
    conda:
        "../envs/segbench.yaml"
    params:
        sweep=options("sweep"),
        evaluate=options("evaluate"),
    shell:
        "segbench report > {log} 2>&1"
