rule download:
    input:
        code("download"),
    output:
        directory(RAW),
    log:
        "logs/download.log",
    params:
        dataset=options("dataset", "name", "source", "checksum"),
        synthetic=options("synthetic"),
    shell:
        "segbench download 2> {log}"


rule preprocess:
    input:
        RAW,
        code("preprocess"),
    output:
        PROCESSED,
    log:
        "logs/preprocess.log",
    params:
        dataset=options("dataset", "include_normal", "border_as", "labels", "channels"),
        preprocess=options("preprocess"),
    threads: workflow.cores
    shell:
        "segbench preprocess --workers {threads} 2> {log}"


rule split:
    input:
        PROCESSED[2],
        PROCESSED[4],
        code("split"),
    output:
        SPLIT,
    log:
        "logs/split.log",
    params:
        split=options("split"),
    shell:
        "segbench split 2> {log}"
