rule report:
    input:
        expand(f"{RUN}/metrics.json", **PAIRS),
        expand(f"{RUN}/train.json", **PAIRS),
        SPLIT[1],
        code("report"),
    output:
        REPORT,
    log:
        "logs/report.log",
    params:
        sweep=options("sweep"),
    shell:
        "segbench report > {log} 2>&1"
