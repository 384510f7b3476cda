"""``segbench <stage>``: one thin sub-command per pipeline stage, each reading a params file (default
params.yaml; Snakemake passes the config it resolved, so ``--configfile`` and ``--config`` reach every job).

Snakefile rules and dvc.yaml stages are one such call each (``segbench.pipeline``); the logic lives in
the stage functions this module calls. Params and names are checked before torch, MONAI or MLflow is
imported, so a mistake is reported in a fraction of a second.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from segbench import SegbenchError, __version__, did_you_mean, paths, usable_cores
from segbench.config import dataset_params, load_params

log = logging.getLogger("segbench")


def _dataset(params: dict, args) -> str:
    """--dataset, or the sweep's only dataset."""
    datasets = params["sweep"]["datasets"]
    if args.dataset is None:
        if len(datasets) > 1:
            raise SegbenchError(f"--dataset: the sweep runs on {datasets}; name one")
        return datasets[0]
    if args.dataset not in params["datasets"]:
        raise SegbenchError(f"--dataset {args.dataset!r}: not defined under 'datasets:' in {args.params} (defined: "
                            f"{sorted(params['datasets'])}){did_you_mean(args.dataset, params['datasets'])}")
    return args.dataset


def _view(params: dict, args) -> tuple[dict, paths.Sweep]:
    """The dataset's params and where its sweep's results go."""
    key = _dataset(params, args)
    return dataset_params(params, key), paths.Sweep(key, params["sweep"]["name"])


def _tracker(where: paths.Sweep):
    from segbench.tracking import Tracker

    return Tracker(where.dataset, where.sweep)


def cmd_download(params: dict, args) -> None:
    from segbench.data.sources import download_dataset

    view, where = _view(params, args)
    root = download_dataset(view["dataset"], view["synthetic"], paths.archive_dir(where.dataset),
                            paths.raw_dir(where.dataset))
    log.info("dataset ready in %s", root)


def cmd_preprocess(params: dict, args) -> None:
    from segbench.data.preprocess import preprocess

    view, where = _view(params, args)
    preprocess(paths.raw_dir(where.dataset), paths.processed_dir(where.dataset), view["preprocess"]["size"],
               view["dataset"], workers=min(job_threads(args, usable_cores()), usable_cores()))


def cmd_split(params: dict, args) -> None:
    from segbench.data.split import split_stage

    view, where = _view(params, args)
    split_stage(view["split"], paths.processed_dir(where.dataset), paths.split_csv(where.dataset),
                paths.split_counts_csv(where.dataset), paths.split_leakage_json(where.dataset))


def _check_pair(params: dict, args) -> None:
    """--arch, --loss, --seed and --fold name things params.yaml defines (before anything heavy loads)."""
    for kind, name in (("architectures", args.arch), ("losses", args.loss)):
        if name not in params[kind]:
            raise SegbenchError(f"--{kind[:4]} {name!r}: not defined under '{kind}:' in {args.params} "
                                f"(defined: {sorted(params[kind])}){did_you_mean(name, params[kind])}")
    fold = getattr(args, "fold", None)
    if fold is not None and fold not in params["sweep"]["folds"]:
        raise SegbenchError(f"--fold {fold}: not in sweep.folds {params['sweep']['folds']}")


def _seed_fold(params: dict, args) -> tuple[int, int]:
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


def _threads(count: int) -> None:
    import torch

    torch.set_num_threads(count)


def _device(view: dict, args) -> str:
    """--device, else train.device; checked now, before anything heavy loads: a job given GPUs that torch
    cannot see stops here rather than run on the CPU."""
    from segbench import devices

    return devices.check(getattr(args, "device", None) or view["train"]["device"])


def cmd_train(params: dict, args) -> None:
    _check_pair(params, args)
    view, where = _view(params, args)
    device = _device(view, args)
    view["train"]["threads"] = job_threads(args, view["train"]["threads"])
    from segbench.training.trainer import train_pair

    _threads(view["train"]["threads"])
    seed, fold = _seed_fold(params, args)
    summary = train_pair(args.arch, args.loss, view, paths.processed_dir(where.dataset),
                         paths.split_csv(where.dataset), where.fold(args.arch, args.loss, seed, fold), seed, fold,
                         _tracker(where) if view["tracking"]["mlflow"] else None, device)
    log.info("best val Dice %.4f at epoch %d", summary["best_val_dice"], summary["best_epoch"])
    if summary["failed"] or summary["diverged"]:  # recorded for the report, which marks the pair: the sweep goes on
        reason = summary["failed"]["reason"] if summary["failed"] else f"the loss went non-finite at epoch " \
                                                                      f"{summary['diverged']['epoch']}"
        log.error("%s__%s failed, recorded: %s", args.arch, args.loss, reason)


def cmd_evaluate(params: dict, args) -> None:
    _check_pair(params, args)
    view, where = _view(params, args)
    device = _device(view, args)
    from segbench.evaluation.evaluate import evaluate_replicate

    _threads(job_threads(args, 1))
    seed, _ = _seed_fold(params, args)
    tracker = _tracker(where) if view["tracking"]["mlflow"] else None
    metrics = evaluate_replicate(args.arch, args.loss, seed, view, where, paths.processed_dir(where.dataset),
                                 paths.split_csv(where.dataset), tracker, device)
    if tracker:
        _register(tracker, where, args.arch, args.loss, seed, view)
    log.info("test Dice %.4f IoU %.4f HD95 %.2f %s", metrics["dice"], metrics["iou"], metrics["hd95"],
             metrics["units"])


def _baseline(params: dict, args) -> str:
    if args.baseline not in params["sweep"]["baselines"]:
        raise SegbenchError(f"--baseline {args.baseline!r}: not in sweep.baselines {params['sweep']['baselines']} "
                            f"of {args.params}")
    return args.baseline


def cmd_baseline_prepare(params: dict, args) -> None:
    """nnU-Net's raw dataset, plan and preprocessing, with segbench's folds (``baselines.nnunet``)."""
    _baseline(params, args)
    view, where = _view(params, args)
    from segbench.baselines import nnunet
    from segbench.data.processed import Processed

    data = Processed.load(paths.processed_dir(where.dataset), paths.split_csv(where.dataset))
    out = paths.baseline_data(args.baseline, where.dataset)
    nnunet.prepare(data, view["sweep"]["folds"], where.dataset, out, processes=usable_cores())
    log.info("nnU-Net's dataset, plans and splits in %s", out)


def cmd_baseline_train(params: dict, args) -> None:
    baseline = _baseline(params, args)
    view, where = _view(params, args)
    requested = _device(view, args)
    from segbench.baselines import nnunet
    from segbench.devices import device

    _threads(job_threads(args, 1))
    fold = args.fold if args.fold is not None else view["sweep"]["folds"][0]
    with device(requested) as dev:
        summary = nnunet.train(paths.baseline_data(baseline, where.dataset), where.dataset, fold,
                               view["baselines"][baseline], where.fold(baseline, paths.BASELINE_LOSS,
                                                                        paths.BASELINE_SEED, fold),
                               dev, view["preprocess"]["size"], _tracker(where) if view["tracking"]["mlflow"] else None)
    log.info("nnU-Net fold %d: %d epochs, last pseudo-Dice %.4f", fold, summary["epochs"], summary["best_val_dice"])


def cmd_baseline_evaluate(params: dict, args) -> None:
    """The baseline's fold models through segbench's own evaluation; its latency beside the architectures'."""
    baseline = _baseline(params, args)
    view, where = _view(params, args)
    device = _device(view, args)
    from segbench.baselines import nnunet
    from segbench.evaluation.evaluate import evaluate_replicate
    from segbench.evaluation.latency import predictor_latency
    from segbench.io import read_json, write_json
    from segbench.predict.predictor import Predictor

    _threads(job_threads(args, 1))
    tracker = _tracker(where) if view["tracking"]["mlflow"] else None
    metrics = evaluate_replicate(baseline, paths.BASELINE_LOSS, paths.BASELINE_SEED, view, where,
                                 paths.processed_dir(where.dataset), paths.split_csv(where.dataset), tracker, device)
    fold = where.fold(baseline, paths.BASELINE_LOSS, paths.BASELINE_SEED, view["sweep"]["folds"][0])
    channels, size = read_json(paths.processed_dir(where.dataset) / paths.INFO)["channels"], view["preprocess"]["size"]
    member = nnunet.NnunetMember(fold)  # nnU-Net's predictor on one canvas, timed like every architecture
    predictor = Predictor([member], size, channels, max(2, member.classes))
    write_json(where.latency(baseline), predictor_latency(baseline, predictor, repeats=10, warmup=2))
    log.info("%s: test Dice %.4f", baseline, metrics["dice"])


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


def cmd_latency(params: dict, args) -> None:
    if args.arch not in params["architectures"]:
        raise SegbenchError(f"--arch {args.arch!r}: not defined under 'architectures:' in {args.params} (defined: "
                            f"{sorted(params['architectures'])}){did_you_mean(args.arch, params['architectures'])}")
    view, where = _view(params, args)
    requested = _device(view, args)
    from segbench.evaluation.latency import architecture_latency
    from segbench.io import read_json, write_json

    info = read_json(paths.processed_dir(where.dataset) / paths.INFO)
    result = architecture_latency(view["architectures"][args.arch], info, view["preprocess"]["size"], requested)
    write_json(where.latency(args.arch), result)
    log.info("%s: %.2f ms per image on the CPU (IQR %.2f)", args.arch, result["latency_ms_cpu"],
             result["latency_ms_cpu_iqr"])


def cmd_report(params: dict, args) -> None:
    view, where = _view(params, args)
    from segbench.report import build_report

    tracker = _tracker(where) if view["tracking"]["mlflow"] else None
    path = build_report(view, where, tracker)
    print(f"Report: {path}")
    if tracker:
        link = tracker.view_url(args.mlflow_ui)
        local = not tracker.uri.startswith("http") and not args.mlflow_ui
        print(f"MLflow: `mlflow ui --backend-store-uri {tracker.uri}`, then {link}" if local else f"MLflow: {link}")


def cmd_summary(params: dict, args) -> None:
    """The sweep across its datasets (results/_all/<sweep>/<first dataset>/), from each dataset's report."""
    from segbench.report.cross_dataset import build_summary

    print(f"Across datasets: {build_summary(params['sweep'], params['statistics']['alpha'])}")


def cmd_results(params: dict, args) -> None:
    """Where each dataset's report is, and what it found (for people; `make demo` ends with it)."""
    from segbench.io import read_json

    for key in params["sweep"]["datasets"]:
        where = paths.Sweep(key, params["sweep"]["name"])
        summary = where.report / paths.SUMMARY
        if not summary.exists():
            print(f"{key}: no report yet ({where.report / 'report.html'})")
            continue
        s = read_json(summary)
        print(f"{key}: best pair {s['best_pair']}, test Dice {s['best_dice']:.3f} (95% CI {s['best_dice_ci_low']:.3f}-"
              f"{s['best_dice_ci_high']:.3f}) of {s['pairs']} pairs\n  report: {where.report / 'report.html'}")
    if params["tracking"]["mlflow"]:
        from segbench.tracking import tracking_uri

        print(f"MLflow: mlflow ui --backend-store-uri {tracking_uri()}")


def cmd_dag(params: dict | None, args) -> None:
    from segbench import pipeline

    if args.write:
        from segbench.io import atomic_path

        with atomic_path(args.dvc_yaml) as tmp:
            tmp.write_text(pipeline.dvc_yaml())
        print(f"wrote {args.dvc_yaml}")
    elif args.check:
        pipeline.check_dvc_yaml(args.dvc_yaml)
        print(f"{args.dvc_yaml} is what the pipeline definition generates")
    else:
        print(pipeline.summary())


def cmd_predict(params: dict, args) -> None:
    from segbench.apps.files import image_files, predict_files
    from segbench.apps.runs import resolve

    files = image_files(args.inputs)
    run = resolve(args.run, params, _dataset(params, args))
    from segbench.devices import device
    from segbench.predict.predictor import Predictor

    _threads(args.threads)
    with device(args.device or params["train"]["device"]) as dev:
        records, skipped = predict_files(Predictor.from_run(run.path, map_location=dev), files, args.out)
    lesions = sum(r["lesion_count"] for r in records)
    print(f"{run.name}: {len(records)} image(s), {lesions} lesion(s); masks, overlays and JSON in {args.out}")
    for item in skipped:
        print(f"  skipped {item['image']}: {item['reason']}")


def cmd_serve(params: dict, args) -> None:
    from segbench.apps.runs import resolve, trained_runs
    from segbench.apps.serve import serve

    dataset = _dataset(params, args)
    runs = trained_runs(params, dataset)
    default = resolve(args.run, params, dataset).name if runs else None
    from segbench.devices import device

    with device(args.device or params["train"]["device"]) as dev:  # a free GPU now; leased again per request
        pass
    serve(runs, default, args.host, args.port, args.max_upload_mb, lambda name: resolve(name, params, dataset), dev)


def cmd_doctor(params: dict | None, args) -> int:
    from segbench.apps.doctor import doctor

    return doctor(args.smoke)


def cmd_list(params: dict | None, args) -> None:
    if args.what == "losses":
        from segbench.losses import FAMILIES, LOSSES

        for family in FAMILIES:
            print(f"{family}:")
            for name in LOSSES.names(family):
                entry = LOSSES.entry(name)
                options = ", ".join(f"{k}={v!r}" for k, v in entry.options.items()) or "-"
                print(f"  {name:<18} {options}\n  {'':<18} {entry.summary} ({entry.source})")
        return
    from segbench.models import MODELS

    if not args.complexity:
        for name in MODELS.names():
            entry = MODELS.entry(name)
            options = ", ".join(f"{k}={v!r}" for k, v in entry.options.items())
            print(f"{name:<18} {entry.source}\n  {'':<16} {options}")
        return
    from segbench.models import create_model
    from segbench.models.complexity import complexity

    print(f"{'architecture':<18} {'parameters':>12} {f'GFLOPs@{args.size}':>12}  paper", flush=True)
    for name in MODELS.names():
        model = create_model(name, 1, 1)
        try:
            gflops = f"{complexity(model, 1, args.size)['gflops']:.2f}"
        except SegbenchError:  # a size this entry cannot take
            gflops = "-"
        parameters = sum(p.numel() for p in model.parameters())
        print(f"{name:<18} {parameters:>12,} {gflops:>12}  {MODELS.entry(name).source}", flush=True)


def cmd_export(params: dict, args) -> None:
    _check_pair(params, args)
    _, where = _view(params, args)
    from segbench.models.export import export_onnx
    from segbench.predict.predictor import load_checkpoint

    run_dir = where.fold(args.arch, args.loss, *_seed_fold(params, args))
    model, checkpoint = load_checkpoint(run_dir / paths.CHECKPOINT)
    size, channels = checkpoint["size"], checkpoint["in_channels"]
    output = export_onnx(model, channels, size, args.output or run_dir / "model.onnx")
    log.info("wrote %s (input 'image': batch x %d x %d x %d)", output, channels, size, size)


def _pair_options(sub: argparse.ArgumentParser, fold: bool = True) -> None:
    sub.add_argument("--arch", required=True,
                     help="a key of 'architectures:' in params.yaml (a registry entry or a variant)")
    sub.add_argument("--loss", required=True, help="a key of 'losses:' in params.yaml")
    sub.add_argument("--seed", type=int, help="training seed (default: the first of sweep.seeds)")
    if fold:
        sub.add_argument("--fold", type=int, help="the fold validated on (default: the first of sweep.folds)")


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)  # --params before or after the sub-command
    common.add_argument("--params", type=Path, default=argparse.SUPPRESS,
                        help="params file (default: params.yaml)")
    parser = argparse.ArgumentParser(prog="segbench", description=__doc__.splitlines()[0], parents=[common])
    parser.add_argument("--version", action="version", version=f"segbench {__version__}")
    stages = parser.add_subparsers(dest="stage", required=True, metavar="STAGE")

    from segbench.pipeline import BY_NAME

    def stage(name: str, run, text: str, dataset: bool = True) -> argparse.ArgumentParser:
        sub = stages.add_parser(name, help=text, description=text, parents=[common])
        sub.set_defaults(func=run)
        if dataset:
            sub.add_argument("--dataset", help="a key of 'datasets:' (default: the sweep's only dataset)")
        if name in BY_NAME:  # a pipeline stage: Snakemake passes the CPUs it gave the job
            sub.add_argument("--threads", type=int, help="CPU threads this job may use (default: SLURM_CPUS_PER_TASK "
                                                         "under Slurm, else the params')")
            if BY_NAME[name].gpu:
                sub.add_argument("--device", help=DEVICE_HELP)
        return sub

    stage("download", cmd_download, "fetch, verify and extract the dataset")
    stage("preprocess", cmd_preprocess, "masks from annotations; resize and pad (on every CPU this process has)")
    stage("split", cmd_split, "stratified train/val/test split (and folds)")
    _pair_options(stage("train", cmd_train, "train one pair for one seed and fold (train.threads CPU threads)"))
    _pair_options(stage("evaluate", cmd_evaluate, "score one pair's seed on the test images"), fold=False)
    for name, run, text in (("baseline_prepare", cmd_baseline_prepare, "a baseline's own data: nnU-Net's dataset, "
                             "plan and preprocessing on segbench's split"),
                            ("baseline_train", cmd_baseline_train, "train a baseline on one fold of segbench's split"),
                            ("baseline_evaluate", cmd_baseline_evaluate,
                             "score a baseline with segbench's evaluation")):
        sub = stage(name, run, text)
        sub.add_argument("--baseline", required=True, choices=["nnunet"], help="a name in sweep.baselines")
        if name == "baseline_train":
            sub.add_argument("--fold", type=int, help="the fold validated on (default: the first of sweep.folds)")
    stage("latency", cmd_latency, "time an architecture at the dataset's input size (one thread)").add_argument(
        "--arch", required=True, help="a key of 'architectures:' in params.yaml")
    report = stage("report", cmd_report, "comparison tables, statistics and figures of every pair")
    report.add_argument("--mlflow-ui", metavar="URL", help="the MLflow UI the printed link opens (default: the "
                        "tracking server, or http://127.0.0.1:5000 for `mlflow ui` on a local store)")
    stage("summary", cmd_summary, "the sweep across its datasets: mean ranks, Friedman, winners", dataset=False)
    stage("results", cmd_results, "what the sweep found, and where its reports are", dataset=False)
    dag = stage("dag", cmd_dag, "the pipeline definition: print it, or write or check dvc.yaml", dataset=False)
    dag.add_argument("--write", action="store_true", help="write dvc.yaml from the pipeline definition")
    dag.add_argument("--check", action="store_true", help="fail if dvc.yaml is not what the definition generates")
    dag.add_argument("--dvc-yaml", type=Path, default=Path("dvc.yaml"))
    dag.set_defaults(needs_params=False)
    export = stage("export", cmd_export, "write a trained model as ONNX")
    _pair_options(export)
    export.add_argument("--output", type=Path, help="ONNX file (default: model.onnx in the fold folder)")
    predict = stage("predict", cmd_predict, "segment new images with a trained run")
    predict.add_argument("inputs", nargs="+", type=Path, metavar="IMAGE_OR_FOLDER",
                         help="image files (PNG, JPEG, TIFF, BMP, DICOM) or folders of them")
    predict.add_argument("--run", default="best", help="best (the report's top pair), <arch>__<loss>, "
                                                       "<arch>__<loss>/seed<k> or <arch>__<loss>/seed<k>/fold<f>")
    predict.add_argument("--out", type=Path, default=Path("predictions"), help="output folder (default predictions)")
    predict.add_argument("--threads", type=int, default=2, help="CPU threads for torch (default 2)")
    predict.add_argument("--device", help=DEVICE_HELP)
    web = stage("serve", cmd_serve, "Bone Detect: the web page that segments uploaded images")
    web.add_argument("--run", default="best", help="the model picked first (default: best)")
    web.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1: this machine)")
    web.add_argument("--port", type=int, default=8000)
    web.add_argument("--max-upload-mb", type=float, default=25.0, help="largest upload accepted (default 25 MB)")
    web.add_argument("--device", help=DEVICE_HELP)
    check = stage("doctor", cmd_doctor, "what this machine can run: torch, driver, GPUs and their leases, scheduler, "
                  "lock folder, tools; exit 1 naming each problem", dataset=False)
    check.add_argument("--smoke", action="store_true", help="also one mixed-precision training step on each free GPU")
    check.set_defaults(needs_params=False)
    listing = stage("list", cmd_list, "registered loss terms or architectures, with their options", dataset=False)
    listing.add_argument("what", choices=["losses", "architectures"])
    listing.add_argument("--complexity", action="store_true",
                         help="architectures: also count parameters and GFLOPs (builds every model: slow)")
    listing.add_argument("--size", type=int, default=256,
                         help="input size for --complexity's GFLOPs (1 channel; default 256)")
    listing.set_defaults(needs_params=False)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    args.params = getattr(args, "params", Path("params.yaml"))
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        status = args.func(load_params(args.params) if getattr(args, "needs_params", True) else None, args)
    except SegbenchError as exc:
        print(f"segbench {args.stage}: error: {exc}", file=sys.stderr)
        return 1
    except Exception as exc:  # a job's log ends with one line that says why, under the traceback
        import traceback

        traceback.print_exc()
        print(f"segbench {args.stage}: failed: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}",
              file=sys.stderr)
        return 1
    return status or 0


if __name__ == "__main__":
    sys.exit(main())
