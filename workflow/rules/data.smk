rule download:
    input:
        code("download"),
    output:
        directory(RAW),
    log:
        "logs/download.log",
    conda:
        "../envs/segbench.yaml"
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
    conda:
        "../envs/segbench.yaml"
    threads: 64  # every core Snakemake gives: it scales this down to --cores (a profile may set it)
    params:
        dataset=options("dataset", "include_normal", "border_as", "labels", "channels"),
        preprocess=options("preprocess"),
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
    conda:
        "../envs/segbench.yaml"
    params:
        split=options("split"),
    shell:
        "segbench split 2> {log}"
