"""``segbench <stage>``: one thin sub-command per pipeline stage, each reading params.yaml.

Snakefile rules and dvc.yaml stages are one such call each; the logic lives in the stage
functions this module calls. Params and names are checked before torch, MONAI or MLflow is
imported, so a mistake is reported in a fraction of a second.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from segbench import SegbenchError, did_you_mean, paths
from segbench.config import load_params

log = logging.getLogger("segbench")


def _tracker(params: dict):
    from segbench.tracking import Tracker

    return Tracker(params["dataset"]["name"])


def cmd_download(params: dict, args) -> None:
    from segbench.data.sources import download_dataset

    name = params["dataset"]["name"]
    root = download_dataset(params["dataset"], params["synthetic"], paths.archive_dir(name), paths.raw_dir(name))
    log.info("dataset ready in %s", root)


def cmd_preprocess(params: dict, args) -> None:
    from segbench.data.preprocess import preprocess

    name = params["dataset"]["name"]
    preprocess(paths.raw_dir(name), paths.processed_dir(name), params["preprocess"]["size"], params["dataset"],
               workers=args.workers)


def cmd_split(params: dict, args) -> None:
    import pandas as pd

    from segbench.data.split import split
    from segbench.io import write_csv, write_json

    from segbench.io import read_json

    name = params["dataset"]["name"]
    meta_csv, info_json = paths.processed_dir(name) / "meta.csv", paths.processed_dir(name) / "info.json"
    for path in (meta_csv, info_json):
        if not path.exists():
            raise SegbenchError(f"{path}: missing; run `segbench preprocess` first")
    options = dict(params["split"])
    if options["stratify"] == "auto":  # the dataset's own choice (BTXRD: subtype; your data: classes present)
        options["stratify"] = read_json(info_json)["stratify"]
    assignment, counts, leakage = split(pd.read_csv(meta_csv), **options)
    write_csv(paths.split_csv(name), assignment)
    write_csv(paths.split_counts_csv(name), counts)
    write_json(paths.split_leakage_json(name), leakage)
    log.info("split: %s", assignment["subset"].value_counts().to_dict())


def _check_pair(params: dict, args) -> None:
    """--arch, --loss, --seed and --fold name things params.yaml defines (before anything heavy loads)."""
    for kind, name in (("architectures", args.arch), ("losses", args.loss)):
        if name not in params[kind]:
            raise SegbenchError(f"--{kind[:4]} {name!r}: not defined under '{kind}:' in {args.params} "
                                f"(defined: {sorted(params[kind])}){did_you_mean(name, params[kind])}")
    fold = getattr(args, "fold", None)
    if fold is not None and fold not in params["sweep"]["folds"]:
        raise SegbenchError(f"--fold {fold}: not in sweep.folds {params['sweep']['folds']}")


def _threads(count: int) -> None:
    import torch

    torch.set_num_threads(count)


def cmd_train(params: dict, args) -> None:
    _check_pair(params, args)
    from segbench.training.trainer import train_pair

    _threads(args.threads)
    name, seed = params["dataset"]["name"], args.seed if args.seed is not None else params["sweep"]["seeds"][0]
    fold = args.fold if args.fold is not None else params["sweep"]["folds"][0]
    summary = train_pair(args.arch, args.loss, params, paths.processed_dir(name), paths.split_csv(name),
                         paths.fold_dir(args.arch, args.loss, seed, fold), seed, fold, _tracker(params),
                         threads=args.threads)
    log.info("best val Dice %.4f at epoch %d", summary["best_val_dice"], summary["best_epoch"])


def cmd_evaluate(params: dict, args) -> None:
    _check_pair(params, args)
    from segbench.evaluation.evaluate import evaluate_replicate

    _threads(args.threads)
    name, seed = params["dataset"]["name"], args.seed if args.seed is not None else params["sweep"]["seeds"][0]
    metrics = evaluate_replicate(args.arch, args.loss, seed, params, paths.processed_dir(name),
                                 paths.split_csv(name), _tracker(params))
    log.info("test Dice %.4f IoU %.4f HD95 %.2f %s", metrics["dice"], metrics["iou"], metrics["hd95"],
             metrics["units"])


def cmd_report(params: dict, args) -> None:
    from segbench.report import build_report

    tracker = _tracker(params)
    path = build_report(params, tracker)
    print(f"Report: {path.resolve()}")
    link = tracker.compare_url(params["sweep"]["name"])
    print(f"MLflow: `mlflow ui --backend-store-uri {tracker.uri}`, then {link}" if tracker.uri.startswith("sqlite")
          else f"MLflow: {link}")


def cmd_predict(params: dict, args) -> None:
    from segbench.inference.files import image_files, predict_files
    from segbench.inference.runs import resolve

    files = image_files(args.inputs)
    run = resolve(args.run, params)
    from segbench.inference.predictor import Predictor

    _threads(args.threads)
    records = predict_files(Predictor.from_run(run.path), files, args.out)
    lesions = sum(r["lesion_count"] for r in records)
    print(f"{run.name}: {len(records)} image(s), {lesions} lesion(s); masks, overlays and JSON in {args.out}")


def cmd_serve(params: dict, args) -> None:
    from segbench.inference.runs import resolve, trained_runs
    from segbench.serve import serve

    runs = trained_runs(params)
    default = resolve(args.run, params).name if runs else None
    serve(runs, default, args.host, args.port, args.max_upload_mb)


def cmd_list(params: dict | None, args) -> None:
    if args.what == "losses":
        from segbench.losses import FAMILIES, LOSSES

        for family in FAMILIES:
            print(f"{family}:")
            for name in LOSSES.names(family):
                entry = LOSSES.entry(name)
                options = ", ".join(f"{k}={v!r}" for k, v in entry.options().items()) or "-"
                print(f"  {name:<18} {options}\n  {'':<18} {entry.summary()}")
        return
    from segbench.models import MODELS

    if not args.complexity:
        for name in MODELS.names():
            entry = MODELS.entry(name)
            options = ", ".join(f"{k}={v!r}" for k, v in entry.options().items())
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
    from segbench.inference.predictor import CHECKPOINT, load_checkpoint
    from segbench.models.export import export_onnx

    seed = args.seed if args.seed is not None else params["sweep"]["seeds"][0]
    fold = args.fold if args.fold is not None else params["sweep"]["folds"][0]
    run_dir = paths.fold_dir(args.arch, args.loss, seed, fold)
    model, checkpoint = load_checkpoint(run_dir / CHECKPOINT)
    size, channels = checkpoint["size"], checkpoint["in_channels"]
    output = export_onnx(model, channels, size, args.output or run_dir / "model.onnx")
    log.info("wrote %s (input 'image': batch x %d x %d x %d)", output, channels, size, size)


def _pair_options(sub: argparse.ArgumentParser, seed: bool = True, fold: bool = True) -> None:
    sub.add_argument("--arch", required=True,
                     help="a key of 'architectures:' in params.yaml (a registry entry or a variant)")
    sub.add_argument("--loss", required=True, help="a key of 'losses:' in params.yaml")
    if seed:
        sub.add_argument("--seed", type=int, help="training seed (default: the first of sweep.seeds)")
    if fold:
        sub.add_argument("--fold", type=int, help="the fold validated on (default: the first of sweep.folds)")


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)  # --params before or after the sub-command
    common.add_argument("--params", type=Path, default=argparse.SUPPRESS,
                        help="params file (default: params.yaml)")
    parser = argparse.ArgumentParser(prog="segbench", description=__doc__.splitlines()[0], parents=[common])
    stages = parser.add_subparsers(dest="stage", required=True, metavar="STAGE")

    def stage(name: str, run, text: str) -> argparse.ArgumentParser:
        sub = stages.add_parser(name, help=text, description=text, parents=[common])
        sub.set_defaults(func=run)
        return sub

    stage("download", cmd_download, "fetch, verify and extract the dataset")
    stage("preprocess", cmd_preprocess, "masks from annotations; resize and pad").add_argument(
        "--workers", type=int, default=1, help="processes to decode images with (default 1)")
    stage("split", cmd_split, "stratified train/val/test split (and folds)")
    for name, run, text, fold in (("train", cmd_train, "train one pair for one seed and fold", True),
                                  ("evaluate", cmd_evaluate, "score one pair's seed on the test images", False)):
        sub = stage(name, run, text)
        _pair_options(sub, fold=fold)
        sub.add_argument("--threads", type=int, default=1,
                         help="CPU threads for torch (default 1; CPU results are reproducible per thread count)")
    stage("report", cmd_report, "comparison tables, statistics and figures of every pair")
    export = stage("export", cmd_export, "write a trained model as ONNX")
    _pair_options(export)
    export.add_argument("--output", type=Path, help="ONNX file (default: model.onnx in the fold folder)")
    export.set_defaults(threads=1)
    predict = stage("predict", cmd_predict, "segment new images with a trained run")
    predict.add_argument("inputs", nargs="+", type=Path, metavar="IMAGE_OR_FOLDER",
                         help="image files (PNG, JPEG, TIFF, BMP, DICOM) or folders of them")
    predict.add_argument("--run", default="best", help="best (the report's top pair), <arch>__<loss>, "
                                                       "<arch>__<loss>/seed<k> or <arch>__<loss>/seed<k>/fold<f>")
    predict.add_argument("--out", type=Path, default=Path("predictions"), help="output folder (default predictions)")
    predict.add_argument("--threads", type=int, default=2, help="CPU threads for torch (default 2)")
    web = stage("serve", cmd_serve, "Bone Detect: the web page that segments uploaded images")
    web.add_argument("--run", default="best", help="the model picked first (default: best)")
    web.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1: this machine)")
    web.add_argument("--port", type=int, default=8000)
    web.add_argument("--max-upload-mb", type=float, default=25.0, help="largest upload accepted (default 25 MB)")
    listing = stage("list", cmd_list, "registered loss terms or architectures, with their options")
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
        args.func(load_params(args.params) if getattr(args, "needs_params", True) else None, args)
    except SegbenchError as exc:
        print(f"segbench {args.stage}: error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
