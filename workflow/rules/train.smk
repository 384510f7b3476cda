rule train:
    input:
        PROCESSED,
        SPLIT[0],
        code("training", "models", "losses", "data/dataset.py"),
    output:
        multiext(f"{RUN}/", "model_best.pt", "model_last.pt", "history.csv", "train.json"),
    log:
        "logs/train/{arch}__{loss}.log",
    params:
        train=options("train"),
        architecture=lambda w: config["architectures"][w.arch],
        loss=lambda w: config["losses"][w.loss],
    threads: config["train"]["threads"]
    resources:
        gpu=1,  # counted only: `--resources gpu=N` caps parallel trainings; each job leases its own GPU
    shell:
        "segbench train --arch {wildcards.arch} --loss {wildcards.loss} --threads {threads} 2> {log}"


rule evaluate:
    input:
        PROCESSED,
        SPLIT[0],
        f"{RUN}/model_best.pt",
        f"{RUN}/train.json",
        code("evaluation"),
    output:
        multiext(f"{RUN}/", "per_image.csv", "metrics.json"),
    log:
        "logs/evaluate/{arch}__{loss}.log",
    threads: 1
    shell:
        "segbench evaluate --arch {wildcards.arch} --loss {wildcards.loss} --threads {threads} 2> {log}"
