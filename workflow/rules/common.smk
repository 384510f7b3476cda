# The validated config, written once for every job, and the pipeline definition as Snakemake rules.
import hashlib
import os
import shutil
import subprocess
import sys
import snakemake.utils
from functools import partial

from segbench import SegbenchError, paths, visible_gpus
from segbench.config import dataset_params, load_params, typed, validate_params
from segbench.io import atomic_path
from segbench.pipeline import (
    STAGES,
    check_dvc_yaml,
    fill,
    job_code,
    job_entries,
    job_inputs,
    job_params,
)
from segbench.pipeline import outputs as stage_outputs

import yaml

# --config values, which Snakemake leaves strings when nested, with their YAML types (train={epochs: 2})
snakemake.utils.update_config(config, typed(dict(workflow.config_settings.config)))
# fills defaults; a bad key, name or option fails here, before any job
validate_params(config, source="the Snakemake config")
SWEEP = config["sweep"]
# Every job reads the config as --configfile and --config made it: this file, named by its content so that
# a second invocation with another config never changes what a running job reads. The jobs find it in
# $SEGBENCH_PARAMS (a cluster job parses this file again and sets it itself).
_text = yaml.safe_dump(config, sort_keys=False)
RESOLVED = (
    f".snakemake/segbench/params-{hashlib.sha256(_text.encode()).hexdigest()[:16]}.yaml"
)
if not os.path.exists(RESOLVED):
    with atomic_path(RESOLVED) as _tmp:
        _tmp.write_text(_text)
os.environ["SEGBENCH_PARAMS"] = RESOLVED


envvars:
    "SEGBENCH_PARAMS",


# Without --resources gpu=N, a local run starts no more GPU jobs than this machine has GPUs (each job leases one;
# more would only wait). A cluster executor submits them all: its scheduler counts the GPUs.
if (
    "gpu" not in workflow.global_resources
    and workflow.global_resources["_nodes"].value is None
):
    _gpus = visible_gpus()
    if _gpus:
        workflow.register_resource("gpu", _gpus)
        if workflow.is_main_process:
            print(
                f"segbench: at most {_gpus} GPU job(s) at once, one per visible GPU "
                "(--resources gpu=N to choose)",
                file=sys.stderr,
            )


wildcard_constraints:
    dataset="|".join(SWEEP["datasets"]),
    arch="|".join(SWEEP["architectures"]),
    loss="|".join(SWEEP["losses"]),
    baseline="|".join(SWEEP["baselines"]) or "(?!)",
    seed=r"\d+",
    fold=r"\d+",
    rung=r"\d+",
    candidate=r"\d+",


def inputs(stage, wildcards):
    """A job's input files and the source files of the code it runs."""
    fields = dict(wildcards)
    return {
        "data": job_inputs(stage, config, fields),
        "code": job_code(stage, config, fields),
    }


def outputs(stage):
    out = []
    for item in stage_outputs(stage, config):
        path = fill(item.pattern, config)
        if item.directory:
            path = directory(path)
        elif item.figure:
            path = report(
                path,
                caption=caption(item.figure),
                category="Figures",
                subcategory="{dataset}",
            )
        out.append(path)
    return out


def caption(name):
    from importlib.resources import files

    return str(files("segbench.report").joinpath("captions", f"{name}.rst"))


def view(wildcards):
    return (
        dataset_params(config, wildcards.dataset)
        if "dataset" in dict(wildcards)
        else config
    )


def log_file(stage):
    """logs/<stage>/<dataset>[/<arch>/<loss>/seed<s>[/fold<f>]].log"""
    parts = {"seed": "seed{seed}", "fold": "fold{fold}"}
    return (
        os.path.join(
            "logs", stage.name, *(parts.get(f, f"{{{f}}}") for f in stage.fields)
        )
        + ".log"
    )


def command(stage, wildcards):
    """``segbench <stage> --<field> <value> ...``."""
    return stage.command(lambda field: wildcards[field])


def threads(stage):
    """The params key a stage names (train.threads), 1 for none, and for "all" more than any machine has:
    Snakemake gives it every core of --cores. A profile's set-threads gives a cluster job its own number; the
    job gets it as --threads."""
    if stage.threads == "all":
        return 1024
    if stage.threads is None:
        return 1
    value = config
    for part in stage.threads.split("."):
        value = value[part]
    return value


def resources(stage):
    """A GPU counted for the jobs that use one: `--resources gpu=N` runs N at once, each leasing its own; a
    stage's runtime where it has one (a baseline's training, scaled from its budget: a cluster kills a job then).
    """
    out = {"gpu": 1} if stage.gpu else {}
    if stage.runtime:
        out["runtime"] = lambda w: stage.runtime(view(w), dict(w))
    return out


def record_in_dvc():
    """After a run that finished, record what it made in dvc.lock (``dvc commit --no-relink``: the files stay as
    Snakemake wrote them, so it has nothing to rerun and `dvc status` nothing to report). Only when this run's
    config is params.yaml's: dvc.lock records what params.yaml makes, never an overlay's results.
    """
    if not os.path.isdir(".dvc") or not shutil.which("dvc"):
        return
    if config != validate_params(load_params("params.yaml"), source="params.yaml"):
        print(
            "segbench: this run's config is not params.yaml's (--configfile or --config): dvc.lock, "
            "which records params.yaml's runs, is left as it was",
            file=sys.stderr,
        )
        return
    try:
        check_dvc_yaml(config)
    except SegbenchError as exc:
        print(f"segbench: {exc}: dvc.lock is left as it was", file=sys.stderr)
        return
    done = subprocess.run(
        ["dvc", "commit", "--force", "--no-relink", "--quiet"],
        capture_output=True,
        text=True,
    )
    if done.returncode:
        print(
            f"segbench: dvc commit failed, dvc.lock not updated:\n{done.stderr}",
            file=sys.stderr,
        )


def targets():
    """Every dataset's report, and the sweep's summary across them."""
    return [
        fill(f"{paths.REPORT}/report.html", config, dataset=d)
        for d in SWEEP["datasets"]
    ] + [fill(f"{paths.CROSS_DATASET}/{paths.CROSS_PAGE}", config)]
