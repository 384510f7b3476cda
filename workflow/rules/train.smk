rule train:
    input:
        PROCESSED,
        SPLIT[0],
        code("train"),
    output:
        multiext(
            f"{FOLD_DIR}/",
            "model_best.pt",
            "model_last.pt",
            "history.csv",
            "train.json",
        ),
    log:
        "logs/train/{arch}__{loss}/seed{seed}/fold{fold}.log",
    conda:
        "../envs/segbench.yaml"
    threads: config["train"]["threads"]
    params:
        train=options("train"),
        architecture=lambda w: config["architectures"][w.arch],
        loss=lambda w: config["losses"][w.loss],
        resolution=config["evaluate"]["resolution"],
    shell:
        "segbench train --arch {wildcards.arch} --loss {wildcards.loss} --seed {wildcards.seed} "
        "--fold {wildcards.fold} --threads {threads} 2> {log}"


rule evaluate:
    input:
        PROCESSED,
        SPLIT[0],
        expand(f"{FOLD_DIR}/model_best.pt", fold=SWEEP["folds"], allow_missing=True),
        expand(f"{FOLD_DIR}/train.json", fold=SWEEP["folds"], allow_missing=True),
        code("evaluate"),
    output:
        multiext(
            f"{SEED_DIR}/",
            "per_image.csv",
            "metrics.json",
            "test_predictions.npz",
            "val_predictions.npz",
            "test_probabilities.npz",
        ),
    log:
        "logs/evaluate/{arch}__{loss}/seed{seed}.log",
    conda:
        "../envs/segbench.yaml"
    threads: 1
    params:
        evaluate=options("evaluate"),
        dataset=options("dataset", "spacing_mm"),
        folds=SWEEP["folds"],
    shell:
        "segbench evaluate --arch {wildcards.arch} --loss {wildcards.loss} --seed {wildcards.seed} "
        "--threads {threads} 2> {log}"
