# segbench: download -> preprocess -> split -> train x (arch, loss, seed, fold) -> evaluate x (arch, loss, seed)
# -> report. Every rule is one `segbench <stage>` call; dvc.yaml describes the same DAG.


configfile: "params.yaml"


report: "workflow/report/workflow.rst"


include: "workflow/rules/common.smk"
include: "workflow/rules/data.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/report.smk"


rule all:
    default_target: True
    input:
        "results/report/report.html",
