"""The segbench command line: one command per pipeline stage, and the commands people use.

The stage commands are built from ``segbench.pipeline.STAGES`` (its fields as options, its function in
``apps.stages``); the others are results, predict, serve, export, dag, doctor and list. Each reads a params file
(default params.yaml; Snakemake passes the config it resolved, so ``--configfile`` and ``--config`` reach every
job). Params and names are checked before torch, MONAI or MLflow is imported, so a mistake is reported in a
fraction of a second.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from segbench import SegbenchError, __version__, paths
from segbench.apps.stages import DEVICE_HELP, check_pair, dataset_key, seed_fold, set_threads, view_of
from segbench.config import load_params

log = logging.getLogger("segbench")


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


def cmd_dag(params: dict, args) -> None:
    from segbench import pipeline

    if (args.write or args.check) and (args.configfile or args.config):
        raise SegbenchError("dag: dvc.yaml is generated from the params file DVC reads (--params); --configfile and "
                            "--config do not apply")
    if args.write:
        from segbench.io import atomic_path

        with atomic_path(args.dvc_yaml) as tmp:
            tmp.write_text(pipeline.dvc_yaml(params))
        print(f"wrote {args.dvc_yaml}")
    elif args.check:
        pipeline.check_dvc_yaml(params, args.dvc_yaml, str(args.params))
        print(f"{args.dvc_yaml} is what the pipeline definition generates")
    else:
        print(pipeline.summary())


def cmd_predict(params: dict, args) -> None:
    from segbench.apps.files import image_files, predict_files
    from segbench.apps.runs import resolve

    files = image_files(args.inputs)
    run = resolve(args.run, params, dataset_key(params, args))
    from segbench.devices import device
    from segbench.predict.predictor import Predictor

    set_threads(args.threads)
    with device(args.device or params["train"]["device"]) as dev:
        records, skipped = predict_files(Predictor.from_run(run.path, map_location=dev), files, args.out)
    lesions = sum(r["lesion_count"] for r in records)
    print(f"{run.name}: {len(records)} image(s), {lesions} lesion(s); masks, overlays and JSON in {args.out}")
    for item in skipped:
        print(f"  skipped {item['image']}: {item['reason']}")


def cmd_serve(params: dict, args) -> None:
    from segbench.apps.runs import resolve, trained_runs
    from segbench.apps.serve import serve

    dataset = dataset_key(params, args)
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
    check_pair(params, args)
    _, where = view_of(params, args)
    from segbench.models.export import export_onnx
    from segbench.predict.predictor import load_checkpoint

    run_dir = where.fold(args.arch, args.loss, *seed_fold(params, args))
    model, checkpoint = load_checkpoint(run_dir / paths.CHECKPOINT)
    size, channels = checkpoint["size"], checkpoint["in_channels"]
    output = export_onnx(model, channels, size, args.output or run_dir / "model.onnx")
    log.info("wrote %s (input 'image': batch x %d x %d x %d)", output, channels, size, size)


# a pipeline field -> its option on every stage command that has the field
FIELD_OPTIONS = {
    "dataset": {"help": "a key of 'datasets:' (default: the sweep's only dataset)"},
    "arch": {"required": True, "help": "a key of 'architectures:' in params.yaml (a registry entry or a variant)"},
    "loss": {"required": True, "help": "a key of 'losses:' in params.yaml"},
    "seed": {"type": int, "help": "training seed (default: the first of sweep.seeds)"},
    "fold": {"type": int, "help": "the fold validated on (default: the first of sweep.folds)"},
    "baseline": {"required": True, "help": "a name in sweep.baselines (segbench's baseline registry)"},
    "rung": {"type": int, "required": True, "help": "a rung of sweep.budget, from 0"},
    "candidate": {"type": int, "required": True, "help": "a candidate of sweep.tune's grid, from 0"},
}


def _run(stage):
    """The command a stage names ("module:function"), imported when it runs; then, when it ran outside Snakemake
    (``dvc repro``, by hand), recorded as Snakemake's own run (``record_in_snakemake``)."""
    def command(params: dict, args):
        import importlib
        import os

        from segbench.apps.stages import record_in_snakemake

        if os.environ.get("DVC_STAGE"):  # dvc repro: its dvc.yaml must be this params file's (sweep.budget's rungs)
            from segbench.pipeline import check_dvc_yaml

            check_dvc_yaml(params, source=str(args.params))
        module, _, function = stage.runner.partition(":")
        status = getattr(importlib.import_module(module), function)(params, args)
        record_in_snakemake(stage, params, args)
        return status
    return command


def build_parser() -> argparse.ArgumentParser:
    from segbench.pipeline import STAGES

    common = argparse.ArgumentParser(add_help=False)  # --params before or after the sub-command
    common.add_argument("--params", type=Path, default=argparse.SUPPRESS,
                        help="params file (default: params.yaml)")
    common.add_argument("--configfile", type=Path, nargs="+", action="extend", default=argparse.SUPPRESS,
                        help="YAML files that update the params, in order, as Snakemake's --configfile does")
    common.add_argument("--config", nargs="+", action="extend", metavar="KEY=VALUE", default=argparse.SUPPRESS,
                        help="settings that update the params last, as Snakemake's --config does (e.g. "
                             "'train={epochs: 2}')")
    parser = argparse.ArgumentParser(prog="segbench", description=__doc__.splitlines()[0], parents=[common])
    parser.add_argument("--version", action="version", version=f"segbench {__version__}")
    commands = parser.add_subparsers(dest="stage", required=True, metavar="STAGE")

    def command(name: str, run, text: str, dataset: bool = True) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=text, description=text, parents=[common])
        sub.set_defaults(func=run)
        if dataset:
            sub.add_argument("--dataset", **FIELD_OPTIONS["dataset"])
        return sub

    for stage in STAGES:  # one command per pipeline stage, its options from the stage's fields
        sub = command(stage.name, _run(stage), stage.help, dataset=False)
        for field in stage.fields:
            sub.add_argument(f"--{field}", **FIELD_OPTIONS[field])
        sub.add_argument("--threads", type=int, help="CPU threads this job may use (Snakemake passes its own; "
                                                     "default: SLURM_CPUS_PER_TASK under Slurm, else the params')")
        if stage.gpu:
            sub.add_argument("--device", help=DEVICE_HELP)
        for option in stage.options:
            sub.add_argument(option.flag, type=option.type, help=option.help)
    command("results", cmd_results, "what the sweep found, and where its reports are", dataset=False)
    dag = command("dag", cmd_dag, "the pipeline definition: print it, or write or check dvc.yaml", dataset=False)
    dag.add_argument("--write", action="store_true", help="write dvc.yaml from the pipeline definition")
    dag.add_argument("--check", action="store_true", help="fail if dvc.yaml is not what the definition generates")
    dag.add_argument("--dvc-yaml", type=Path, default=Path("dvc.yaml"))
    export = command("export", cmd_export, "write a trained model as ONNX", dataset=False)
    for field in ("dataset", "arch", "loss", "seed", "fold"):
        export.add_argument(f"--{field}", **FIELD_OPTIONS[field])
    export.add_argument("--output", type=Path, help="ONNX file (default: model.onnx in the fold folder)")
    predict = command("predict", cmd_predict, "segment new images with a trained run")
    predict.add_argument("inputs", nargs="+", type=Path, metavar="IMAGE_OR_FOLDER",
                         help="image files (PNG, JPEG, TIFF, BMP, DICOM) or folders of them")
    predict.add_argument("--run", default="best", help="best (the report's top pair), <arch>__<loss>, "
                                                       "<arch>__<loss>/seed<k> or <arch>__<loss>/seed<k>/fold<f>")
    predict.add_argument("--out", type=Path, default=Path("predictions"), help="output folder (default predictions)")
    predict.add_argument("--threads", type=int, default=2, help="CPU threads for torch (default 2)")
    predict.add_argument("--device", help=DEVICE_HELP)
    web = command("serve", cmd_serve, "Bone Detect: the web page that segments uploaded images")
    web.add_argument("--run", default="best", help="the model picked first (default: best)")
    web.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1: this machine)")
    web.add_argument("--port", type=int, default=8000)
    web.add_argument("--max-upload-mb", type=float, default=25.0, help="largest upload accepted (default 25 MB)")
    web.add_argument("--device", help=DEVICE_HELP)
    check = command("doctor", cmd_doctor, "what this machine can run: torch, driver, GPUs and their leases, "
                    "scheduler, lock folder, tools; exit 1 naming each problem", dataset=False)
    check.add_argument("--smoke", action="store_true", help="also one mixed-precision training step on each free GPU")
    check.set_defaults(needs_params=False)
    listing = command("list", cmd_list, "registered loss terms or architectures, with their options", dataset=False)
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
    args.configfile, args.config = getattr(args, "configfile", []), getattr(args, "config", [])
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        params = load_params(args.params, args.configfile, args.config) if getattr(args, "needs_params", True) \
            else None
        status = args.func(params, args)
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
