"""The pipeline stages' commands, one function per stage, each ``(params, args)``: what ``segbench <stage>`` runs.

``segbench.pipeline.STAGES`` names each stage's function (``Stage.run``); the command line builds a sub-command per
stage from it (its fields as options), so adding a stage adds its command. Params and names are checked before
torch, MONAI or MLflow is imported, so a mistake is reported in a fraction of a second.
"""

from __future__ import annotations

import logging
from pathlib import Path

from segbench import SegbenchError, did_you_mean, paths, usable_cores
from segbench.config import dataset_params

log = logging.getLogger("segbench")


def params_source(args) -> str:
    """Where the params came from, for messages: the file and the overlays on it."""
    return " + ".join([str(args.params), *map(str, getattr(args, "configfile", []))])


def dataset_key(params: dict, args) -> str:
    """--dataset, or the sweep's only dataset."""
    datasets = params["sweep"]["datasets"]
    if args.dataset is None:
        if len(datasets) > 1:
            raise SegbenchError(f"--dataset: the sweep runs on {datasets}; name one")
        return datasets[0]
    if args.dataset not in params["datasets"]:
        raise SegbenchError(f"--dataset {args.dataset!r}: not defined under 'datasets:' in {params_source(args)} "
                            f"(defined: {sorted(params['datasets'])}){did_you_mean(args.dataset, params['datasets'])}")
    return args.dataset


def view_of(params: dict, args) -> tuple[dict, paths.Sweep]:
    """The dataset's params and where its sweep's results go."""
    key = dataset_key(params, args)
    return dataset_params(params, key), paths.Sweep(key, params["sweep"]["name"])


def tracker_for(where: paths.Sweep):
    from segbench.tracking import Tracker

    return Tracker(where.dataset, where.sweep)


def download(params: dict, args) -> None:
    from segbench.data.sources import download_dataset

    view, where = view_of(params, args)
    root = download_dataset(view["dataset"], view["synthetic"], paths.archive_dir(where.dataset),
                            paths.raw_dir(where.dataset))
    log.info("dataset ready in %s", root)


def preprocess(params: dict, args) -> None:
    from segbench.data.preprocess import preprocess

    view, where = view_of(params, args)
    preprocess(paths.raw_dir(where.dataset), paths.processed_dir(where.dataset), view["preprocess"]["size"],
               view["dataset"], workers=min(job_threads(args, usable_cores()), usable_cores()))


def split(params: dict, args) -> None:
    from segbench.data.split import split_stage

    view, where = view_of(params, args)
    split_stage(view["split"], paths.processed_dir(where.dataset), paths.split_csv(where.dataset),
                paths.split_counts_csv(where.dataset), paths.split_leakage_json(where.dataset))


def check_pair(params: dict, args) -> None:
    """--arch, --loss, --seed and --fold name things params.yaml defines (before anything heavy loads)."""
    for kind, name in (("architectures", args.arch), ("losses", args.loss)):
        if name not in params[kind]:
            raise SegbenchError(f"--{kind[:4]} {name!r}: not defined under '{kind}:' in {params_source(args)} "
                                f"(defined: {sorted(params[kind])}){did_you_mean(name, params[kind])}")
    fold = getattr(args, "fold", None)
    if fold is not None and fold not in params["sweep"]["folds"]:
        raise SegbenchError(f"--fold {fold}: not in sweep.folds {params['sweep']['folds']}")


def seed_fold(params: dict, args) -> tuple[int, int]:
    seed = args.seed if args.seed is not None else params["sweep"]["seeds"][0]
    fold = getattr(args, "fold", None)
    return seed, fold if fold is not None else params["sweep"]["folds"][0]


DEVICE_HELP = ("auto (a free GPU, leased, else the CPU), cpu, cuda or cuda:<k> (default: train.device); a job given "
               "GPUs that torch cannot see stops")


def job_threads(args, default: int) -> int:
    """The CPUs this job was given: --threads (Snakemake's {threads}), else Slurm's SLURM_CPUS_PER_TASK, else
    ``default`` (the params')."""
    import os

    if getattr(args, "threads", None):
        return args.threads
    given = os.environ.get("SLURM_CPUS_PER_TASK", "")
    return int(given) if given.isdigit() and int(given) > 0 else default


def set_threads(count: int) -> None:
    import torch

    torch.set_num_threads(count)


def device_for(view: dict, args) -> str:
    """--device, else train.device; checked now, before anything heavy loads: a job given GPUs that torch
    cannot see stops here rather than run on the CPU."""
    from segbench import devices

    return devices.check(getattr(args, "device", None) or view["train"]["device"])


def training_job(params: dict, args) -> tuple[dict, paths.Sweep, int, int, dict]:
    """What a job that trains a pair needs, checked before torch loads: the dataset's params (its thread count
    this job's), where its sweep's results go, its seed and fold, and ``train_pair``'s device and tracker."""
    check_pair(params, args)
    view, where = view_of(params, args)
    device = device_for(view, args)
    view["train"]["threads"] = job_threads(args, view["train"]["threads"])
    set_threads(view["train"]["threads"])
    seed, fold = seed_fold(params, args)
    return view, where, seed, fold, {"device": device,
                                     "tracker": tracker_for(where) if view["tracking"]["mlflow"] else None}


def train(params: dict, args) -> None:
    view, where, seed, fold, options = training_job(params, args)
    from segbench.training.final import train_final

    _log_trained(train_final(view, where, args.arch, args.loss, seed, fold, **options), args)


def _log_trained(summary: dict, args) -> None:
    if summary["pruned"]:
        pruned = summary["pruned"]
        log.info("pruned at rung %d (%d epochs, val Dice %.4f)", pruned["rung"], pruned["epochs"], pruned["val_dice"])
        return
    log.info("best val Dice %.4f at epoch %d", summary["best_val_dice"], summary["best_epoch"])
    if summary["failed"] or summary["diverged"]:  # recorded for the report, which marks the pair: the sweep goes on
        reason = summary["failed"]["reason"] if summary["failed"] else f"the loss went non-finite at epoch " \
                                                                      f"{summary['diverged']['epoch']}"
        log.error("%s__%s failed, recorded: %s", args.arch, args.loss, reason)


def check_rung(params: dict, args) -> None:
    """--rung names a rung of sweep.budget's schedule."""
    from segbench.budget import rungs

    count = len(rungs(params))
    if not count:
        raise SegbenchError(f"--rung {args.rung}: sweep.budget is null in {params_source(args)}: no rungs")
    if not 0 <= args.rung < count:
        raise SegbenchError(f"--rung {args.rung}: sweep.budget in {params_source(args)} has rungs 0 to {count - 1}")


def rung(params: dict, args) -> None:
    check_rung(params, args)
    view, where, seed, fold, options = training_job(params, args)
    from segbench.training import halving

    for record in halving.train_rung(view, where, args.rung, args.arch, args.loss, seed, fold, **options):
        _log_trained(record, args)


def select(params: dict, args) -> None:
    check_rung(params, args)
    view, where = view_of(params, args)
    from segbench.evaluation.selection import select as select_rung

    select_rung(view, where, args.rung, tracker_for(where) if view["tracking"]["mlflow"] else None)


def tune(params: dict, args) -> None:
    view, where, seed, fold, options = training_job(params, args)
    from segbench.training.halving import train_run

    _log_trained(train_run(view, where, args.arch, args.loss, seed, fold, args.candidate, **options), args)


def choose(params: dict, args) -> None:
    check_pair(params, args)
    view, where = view_of(params, args)
    from segbench import tuning

    tuning.choose(view, where, args.arch, args.loss)


def evaluate(params: dict, args) -> None:
    check_pair(params, args)
    view, where = view_of(params, args)
    device = device_for(view, args)
    from segbench.evaluation.evaluate import evaluate_replicate

    set_threads(job_threads(args, 1))
    seed, _ = seed_fold(params, args)
    tracker = tracker_for(where) if view["tracking"]["mlflow"] else None
    metrics = evaluate_replicate(args.arch, args.loss, seed, view, where, paths.processed_dir(where.dataset),
                                 paths.split_csv(where.dataset), tracker, device)
    if tracker:
        _register(tracker, where, args.arch, args.loss, seed, view)
    log.info("test Dice %.4f IoU %.4f HD95 %.2f %s", metrics["dice"], metrics["iou"], metrics["hd95"],
             metrics["units"])


def reference(params: dict, args) -> None:
    check_pair(params, args)
    view, where = view_of(params, args)
    if where.dataset not in params["sweep"]["references"]:
        raise SegbenchError(f"--dataset {where.dataset}: not in sweep.references {params['sweep']['references']} of "
                            f"{params_source(args)}: list it there (it needs split.holdout) to train its references")
    seed, _ = seed_fold(params, args)
    device = device_for(view, args)
    view["train"]["threads"] = job_threads(args, view["train"]["threads"])
    from segbench.evaluation.reference import reference_replicate

    set_threads(view["train"]["threads"])
    summary = reference_replicate(args.arch, args.loss, seed, view, where.reference(args.arch, args.loss, seed),
                                  paths.processed_dir(where.dataset),
                                  paths.split_csv(where.dataset), device)
    log.info("reference trainings of %d train + %d val images each; %d held-out images tested",
             summary["sizes"]["in"]["train"], summary["sizes"]["in"]["val"], summary["tested"])


def check_baseline(params: dict, args):
    """The registry entry of ``--baseline``, one that sweep.baselines lists."""
    if args.baseline not in params["sweep"]["baselines"]:
        raise SegbenchError(f"--baseline {args.baseline!r}: not in sweep.baselines {params['sweep']['baselines']} "
                            f"of {params_source(args)}")
    from segbench.baselines.catalog import BASELINES

    return BASELINES.entry(args.baseline)


def baseline_prepare(params: dict, args) -> None:
    """A baseline's own data from segbench's split and folds (nnU-Net: its dataset, plan and preprocessing)."""
    entry = check_baseline(params, args)
    view, where = view_of(params, args)
    from segbench.data.processed import Processed

    data = Processed.load(paths.processed_dir(where.dataset), paths.split_csv(where.dataset))
    out = paths.baseline_data(args.baseline, where.dataset)
    entry.load().prepare(data, view["sweep"]["folds"], where.dataset, out, processes=job_threads(args, 1),
                         **entry.bind)
    log.info("%s: its data, plans and splits in %s", args.baseline, out)


def baseline_train(params: dict, args) -> None:
    entry = check_baseline(params, args)
    baseline = entry.load()
    view, where = view_of(params, args)
    requested = device_for(view, args)
    from segbench.baselines import folds
    from segbench.data.processed import Processed
    from segbench.devices import device

    set_threads(job_threads(args, 1))
    fold = args.fold if args.fold is not None else view["sweep"]["folds"][0]
    data = Processed.load(paths.processed_dir(where.dataset), paths.split_csv(where.dataset))
    prepared, expected = paths.baseline_data(args.baseline, where.dataset), folds.cases(data, fold)
    folds.check(baseline.planned_cases(prepared, where.dataset, fold), expected, fold, args.baseline)
    with device(requested) as dev:
        summary = baseline.train(args.baseline, prepared, where.dataset, fold, view["baselines"][args.baseline],
                                 where.fold(args.baseline, paths.BASELINE_LOSS, paths.BASELINE_SEED, fold),
                                 dev, view["preprocess"]["size"], expected,
                                 tracker_for(where) if view["tracking"]["mlflow"] else None, **entry.bind)
    log.info("%s fold %d: %d epochs, last val Dice %.4f", args.baseline, fold, summary["epochs"],
             summary["best_val_dice"])


def baseline_evaluate(params: dict, args) -> None:
    """The baseline's fold models through segbench's own evaluation; its latency beside the architectures'."""
    baseline = check_baseline(params, args).load()
    view, where = view_of(params, args)
    device = device_for(view, args)
    from segbench.evaluation.evaluate import evaluate_replicate
    from segbench.evaluation.latency import predictor_latency
    from segbench.io import read_json, write_json
    from segbench.predict.predictor import Predictor

    set_threads(job_threads(args, 1))
    tracker = tracker_for(where) if view["tracking"]["mlflow"] else None
    metrics = evaluate_replicate(args.baseline, paths.BASELINE_LOSS, paths.BASELINE_SEED, view, where,
                                 paths.processed_dir(where.dataset), paths.split_csv(where.dataset), tracker, device)
    fold = where.fold(args.baseline, paths.BASELINE_LOSS, paths.BASELINE_SEED, view["sweep"]["folds"][0])
    channels, size = read_json(paths.processed_dir(where.dataset) / paths.INFO)["channels"], view["preprocess"]["size"]
    member = baseline.member(fold)  # the baseline's own predictor on one canvas, timed like every architecture
    predictor = Predictor([member], size, channels, max(2, member.classes))
    write_json(where.latency(args.baseline), predictor_latency(args.baseline, predictor, repeats=10, warmup=2))
    log.info("%s: test Dice %.4f", args.baseline, metrics["dice"])


def _register(tracker, where: paths.Sweep, arch: str, loss: str, seed: int, view: dict) -> None:
    """The seed's fold ensemble as an MLflow model, a version of the (dataset, sweep)'s registered model."""
    from PIL import Image

    from segbench.apps.drawing import png_bytes
    from segbench.apps.model_registry import log_run_model
    from segbench.io import read_json

    folds = {f"fold{f}": where.fold(arch, loss, seed, f) for f in view["sweep"]["folds"]}
    first = read_json(next(iter(folds.values())) / paths.TRAINED)
    blank = Image.new("L" if first.get("in_channels", 1) == 1 else "RGB", (32, 32))  # the input example
    log_run_model(tracker, [read_json(d / paths.TRAINED).get("mlflow_run_id") for d in folds.values()],
                  str(paths.RunId(arch, loss, seed)), where.seed(arch, loss, seed) / paths.METRICS,
                  {k: d / paths.CHECKPOINT for k, d in folds.items()}, png_bytes(blank))


def latency(params: dict, args) -> None:
    if args.arch not in params["architectures"]:
        raise SegbenchError(f"--arch {args.arch!r}: not defined under 'architectures:' in {params_source(args)} "
                            f"(defined: {sorted(params['architectures'])})"
                            f"{did_you_mean(args.arch, params['architectures'])}")
    view, where = view_of(params, args)
    requested = device_for(view, args)
    from segbench import pipeline
    from segbench.evaluation.latency import architecture_latency, host, measured_once
    from segbench.io import read_json, write_json
    from segbench.provenance import code_digest

    info = read_json(paths.processed_dir(where.dataset) / paths.INFO)
    arch, size = view["architectures"][args.arch], view["preprocess"]["size"]
    code = [Path(f).resolve() for f in pipeline.job_code(pipeline.stage("latency"), view, {"arch": args.arch})]
    key = {"architecture": arch, "channels": info["channels"], "classes": len(info["class_names"]), "size": size,
           "device": requested, "host": host(), "code": code_digest(code, pipeline.SRC.parent)}
    result = measured_once(Path(paths.MEASURED_LATENCY), key,
                           lambda: architecture_latency(arch, info, size, requested))
    write_json(where.latency(args.arch), result)
    log.info("%s: %.2f ms per image on the CPU (IQR %.2f)", args.arch, result["latency_ms_cpu"],
             result["latency_ms_cpu_iqr"])


def report(params: dict, args) -> None:
    view, where = view_of(params, args)
    from segbench import pipeline
    from segbench.report import build_report

    tracker = tracker_for(where) if view["tracking"]["mlflow"] else None
    declared = pipeline.job_inputs(pipeline.stage("report"), view, {"dataset": where.dataset})
    path = build_report(view, where, tracker, declared)
    print(f"Report: {path}")
    if tracker:
        port = args.mlflow_port or 5000
        link = tracker.view_url(args.mlflow_ui, port)
        local = not tracker.uri.startswith("http") and not args.mlflow_ui
        print(f"MLflow: `mlflow ui --backend-store-uri {tracker.uri}{f' --port {port}' if port != 5000 else ''}`, then "
              f"{link}" if local else f"MLflow: {link}")


def summary(params: dict, args) -> None:
    """The sweep across its datasets (results/_all/<sweep>/<first dataset>/), from each dataset's report."""
    from segbench.report.cross_dataset import build_summary

    print(f"Across datasets: {build_summary(params['sweep'], params['statistics']['alpha'])}")


def job_fields(stage, params: dict, args) -> dict:
    """The job's fields as its command took them, defaults included (the sweep's only dataset, its first seed and
    fold)."""
    fields = {field: getattr(args, field, None) for field in stage.fields}
    if "dataset" in fields:
        fields["dataset"] = dataset_key(params, args)
    if fields.get("seed") is None and "seed" in fields:
        fields["seed"] = params["sweep"]["seeds"][0]
    if fields.get("fold") is None and "fold" in fields:
        fields["fold"] = params["sweep"]["folds"][0]
    return fields


def record_in_snakemake(stage, params: dict, args) -> None:
    """After a stage ran outside Snakemake (``dvc repro``, or by hand) on params.yaml, in a project Snakemake has run,
    record the job in Snakemake's metadata as its own run (``snakemake --touch --force`` on its outputs): Snakemake
    then compares the files with these params and this code, so it has nothing to rerun now and reruns them when
    params.yaml or the code changes later. A job Snakemake started reads the params file it resolved
    (``.snakemake/segbench/params-*.yaml``) and is left alone, as is a run on another params file (Snakemake's config
    is params.yaml: recording it would claim params.yaml made these files)."""
    import os
    import shutil
    import subprocess
    import sys

    from segbench import pipeline

    snakemake = shutil.which("snakemake") or str(Path(sys.executable).parent / "snakemake")
    if not Path(".snakemake/metadata").is_dir() or Path(args.params) != Path("params.yaml") or args.configfile or \
            args.config or not Path(snakemake).exists():
        return
    fields = job_fields(stage, params, args)
    outputs = [pipeline.fill(o.pattern, params, **fields) for o in pipeline.outputs(stage, params)]
    done = subprocess.run([snakemake, *outputs, "--touch", "--force", "--cores", "1", "--allowed-rules", stage.name,
                           "--quiet", "all"], capture_output=True, text=True,
                          env={**os.environ, "PATH": f"{Path(snakemake).parent}{os.pathsep}{os.environ['PATH']}"})
    if done.returncode:
        log.warning("could not record this run in Snakemake's metadata (snakemake --touch failed); Snakemake may "
                    "rerun it:\n%s", done.stderr[-2000:])
