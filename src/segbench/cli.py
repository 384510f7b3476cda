"""``segbench <stage>``: one thin sub-command per pipeline stage, each reading params.yaml.

Snakefile rules and dvc.yaml stages are one such call each; the logic lives in the
stage functions this module calls.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from segbench import SegbenchError, paths
from segbench.config import load_params

log = logging.getLogger("segbench")


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

    name = params["dataset"]["name"]
    meta_csv = paths.processed_dir(name) / "meta.csv"
    if not meta_csv.exists():
        raise SegbenchError(f"{meta_csv}: missing; run `segbench preprocess` first")
    assignment, counts, leakage = split(pd.read_csv(meta_csv), **params["split"])
    write_csv(paths.split_csv(name), assignment)
    write_csv(paths.split_counts_csv(name), counts)
    write_json(paths.split_leakage_json(name), leakage)
    log.info("split: %s", assignment["subset"].value_counts().to_dict())


def _pair_setup(params: dict, args) -> None:
    import torch

    from segbench.models import model_entry

    for kind, name in (("architectures", args.arch), ("losses", args.loss)):
        if name not in params[kind]:
            raise SegbenchError(f"{name!r} is not defined under '{kind}:' (defined: {sorted(params[kind])})")
    try:
        model_entry(params["architectures"][args.arch]["family"])
    except SegbenchError as exc:
        raise SegbenchError(f"{args.params}: architectures.{args.arch}: {exc}") from None
    torch.set_num_threads(args.threads)


def cmd_train(params: dict, args) -> None:
    from segbench.tracking import Tracker
    from segbench.training.trainer import train_pair

    _pair_setup(params, args)
    name = params["dataset"]["name"]
    summary = train_pair(args.arch, args.loss, params, paths.processed_dir(name), paths.split_csv(name),
                         paths.run_dir(args.arch, args.loss), Tracker(name), threads=args.threads)
    log.info("best val Dice %.4f at epoch %d", summary["best_val_dice"], summary["best_epoch"])


def cmd_evaluate(params: dict, args) -> None:
    from segbench.evaluation.evaluate import evaluate_pair
    from segbench.tracking import Tracker

    _pair_setup(params, args)
    name = params["dataset"]["name"]
    metrics = evaluate_pair(paths.run_dir(args.arch, args.loss), paths.processed_dir(name), paths.split_csv(name),
                            params["train"]["batch_size"], Tracker(name), group_by=params["split"]["stratify"])
    log.info("test Dice %.4f IoU %.4f", metrics["dice"], metrics["iou"])


def cmd_report(params: dict, args) -> None:
    import pandas as pd

    from segbench.report.tables import comparison_table, write_excel, write_markdown
    from segbench.tracking import Tracker

    name, sweep = params["dataset"]["name"], params["sweep"]
    runs = {(a, l): paths.run_dir(a, l) for a in sweep["architectures"] for l in sweep["losses"]}
    table = comparison_table(runs)
    counts_csv = paths.split_counts_csv(name)
    counts = {"split counts": pd.read_csv(counts_csv)} if counts_csv.exists() else {}
    xlsx, md = paths.REPORT_DIR / "comparison.xlsx", paths.REPORT_DIR / "comparison.md"
    write_excel(table, xlsx, counts)
    notes = [f"dataset: {name}; test Dice / IoU / precision / recall are means over test images "
             "(sigmoid > 0.5, or the argmax of several classes; padding excluded); 'Dice (pooled)' pools all "
             "test pixels.",
             "precision is undefined for an empty prediction and recall for an empty ground truth; "
             "those images are left out of that mean."]
    write_markdown(table, md, f"segbench comparison: sweep '{sweep['name']}'", notes, counts)
    best = table.iloc[0]
    Tracker(name).finish_sweep(sweep["name"], {"best_test_dice": float(best["Dice"])},
                               {"best_pair": f"{best['architecture']}__{best['loss']}"}, [md, xlsx])
    print(table.to_markdown(index=False, floatfmt=".4f"))
    log.info("comparison table: %s and %s", md, xlsx)


def cmd_list(params: dict | None, args) -> None:
    if args.what == "losses":
        from segbench.losses import FAMILIES, list_losses, loss_entry

        for family in FAMILIES:
            print(f"{family}:")
            for name in list_losses(family):
                entry = loss_entry(name)
                options = ", ".join(f"{k}={v!r}" for k, v in entry.options().items()) or "-"
                print(f"  {name:<18} {options}\n  {'':<18} {entry.summary()}")
    else:
        from segbench.models import create_model, list_models, model_entry
        from segbench.models.complexity import complexity

        print(f"{'architecture':<18} {'parameters':>12} {f'GFLOPs@{args.size}':>12}  paper")
        for name in list_models():
            model = create_model(name, 1, 1)
            try:
                gflops = f"{complexity(model, 1, args.size)['gflops']:.2f}"
            except SegbenchError:  # a size this entry cannot take
                gflops = "-"
            parameters = sum(p.numel() for p in model.parameters())
            print(f"{name:<18} {parameters:>12,} {gflops:>12}  {model_entry(name).paper}")


def cmd_export(params: dict, args) -> None:
    from segbench.evaluation.evaluate import load_best
    from segbench.models.export import export_onnx

    run_dir = paths.run_dir(args.arch, args.loss)
    model, checkpoint = load_best(run_dir)
    size, channels = params["preprocess"]["size"], checkpoint.get("in_channels", 1)
    output = export_onnx(model, channels, size, args.output or run_dir / "model.onnx")
    log.info("wrote %s (input 'image': batch x %d x %d x %d)", output, channels, size, size)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="segbench", description=__doc__.splitlines()[0])
    parser.add_argument("--params", default="params.yaml", type=Path, help="params file (default: params.yaml)")
    stages = parser.add_subparsers(dest="stage", required=True, metavar="STAGE")
    stages.add_parser("download", help="fetch, verify and extract the dataset").set_defaults(run=cmd_download)
    pre = stages.add_parser("preprocess", help="masks from annotations; resize and pad")
    pre.add_argument("--workers", type=int, default=1, help="processes to decode images with (default 1)")
    pre.set_defaults(run=cmd_preprocess)
    stages.add_parser("split", help="stratified train/val/test split").set_defaults(run=cmd_split)
    for stage, run, text in (("train", cmd_train, "train one architecture x loss pair"),
                             ("evaluate", cmd_evaluate, "score one pair on the test subset")):
        sub = stages.add_parser(stage, help=text)
        sub.add_argument("--arch", required=True, help="a name from sweep.architectures")
        sub.add_argument("--loss", required=True, help="a name from sweep.losses")
        sub.add_argument("--threads", type=int, default=1,
                         help="CPU threads for torch (default 1; CPU results are reproducible per thread count)")
        sub.set_defaults(run=run)
    stages.add_parser("report", help="comparison tables of every pair").set_defaults(run=cmd_report)
    export = stages.add_parser("export", help="write a trained pair's best model as ONNX")
    export.add_argument("--arch", required=True, help="the pair's architecture")
    export.add_argument("--loss", required=True, help="the pair's loss")
    export.add_argument("--output", type=Path, help="ONNX file (default: results/runs/<arch>__<loss>/model.onnx)")
    export.set_defaults(run=cmd_export)
    listing = stages.add_parser("list", help="registered loss terms or architectures")
    listing.add_argument("what", choices=["losses", "architectures"])
    listing.add_argument("--size", type=int, default=256,
                         help="input size for the architectures' FLOPs (1 channel; default 256)")
    listing.set_defaults(run=cmd_list, needs_params=False)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        args.run(load_params(args.params) if getattr(args, "needs_params", True) else None, args)
    except SegbenchError as exc:
        print(f"segbench {args.stage}: error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
