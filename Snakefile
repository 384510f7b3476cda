# segbench: download -> preprocess -> split -> train x (dataset, arch, loss, seed, fold) -> evaluate -> report.
# Every rule is one `segbench <stage>` call, built from the pipeline definition (src/segbench/pipeline.py)
# that dvc.yaml is generated from too; each job runs the config this DAG was built from.


configfile: "params.yaml"


report: "workflow/report/workflow.rst"


include: "workflow/rules/common.smk"


rule all:
    default_target: True
    input:
        targets(),


onsuccess:
    record_in_dvc()


include: "workflow/rules/stages.smk"
