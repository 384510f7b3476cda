rule download:
    input:
        code("data/download.py", "data/sources.py", "data/synthetic.py"),
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
        code("data/preprocess.py", "data/btxrd.py", "data/pets.py", "data/sample.py"),
    output:
        PROCESSED,
    log:
        "logs/preprocess.log",
    params:
        dataset=options("dataset", "include_normal", "border_as"),
        preprocess=options("preprocess"),
    threads: workflow.cores
    shell:
        "segbench preprocess --workers {threads} 2> {log}"


rule split:
    input:
        PROCESSED[2],
        code("data/split.py"),
    output:
        SPLIT,
    log:
        "logs/split.log",
    params:
        split=options("split"),
    shell:
        "segbench split 2> {log}"
