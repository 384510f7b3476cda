"""Successive halving against the full sweep: one grid trained in full and with ``sweep.budget``, by Snakemake.

    python benchmarks/budget.py [--quick] [--check]

Runs the demo dataset (64 px, the demo's 12 epochs) with 6 architectures x 3 losses twice, each in its own scratch
copy of the workflow: every pair to train.epochs, then with successive halving (eta 3, min_epochs 1: rungs at 1, 3
and 9 epochs). Prints the epochs and the training's device-seconds each used (train.json), the pipeline's wall and
CPU time, whether the best pair is the same, and Kendall's tau between the full sweep's order (mean test Dice) and
halving's (the rung a pair reached, then its val Dice there) of the pairs that survived the first rung. Recorded
in ``benchmarks/results/budget.md``, which the docs embed; ``--check`` fails when the code changed since.
``--quick``: 2 x 2 pairs on a tiny dataset, 3 epochs.
"""

from __future__ import annotations

import json
import resource
import tempfile
from pathlib import Path

import _common as bench
import yaml
from scipy.stats import kendalltau

from segbench import paths, pipeline
from segbench.config import load_params, validate_params
from segbench.provenance import code_digest

REPO = bench.REPO
RECORDED = REPO / "benchmarks/results/budget.md"
GRID = {"sweep": {"name": "budget", "architectures": ["smp_unet", "attention_unet", "unet", "unet_plusplus",
                                                      "smp_fpn", "smp_linknet"],
                  "losses": ["dice", "dice_focal", "focal_tversky"]},
        "tracking": {"mlflow": False}}
QUICK = {"synthetic": {"n_images": 40}, "preprocess": {"size": 32}, "train": {"epochs": 3},
         "sweep": {"name": "budget", "architectures": ["smp_unet", "attention_unet"], "losses": ["dice", "dice_focal"]},
         "tracking": {"mlflow": False}}
HALVING = {"strategy": "successive_halving", "eta": 3, "min_epochs": 1}


def sweep_params(quick: bool, budget: dict | None) -> dict:
    grid = QUICK if quick else GRID
    return bench.overlay(grid, {"sweep": {"budget": budget}})


def run_sweep(root: Path, extra: dict) -> dict:
    """One sweep in the scratch project ``root``: its params, wall and CPU seconds, and its results."""
    (root / "overlay.yaml").write_text(yaml.safe_dump(extra))
    params = validate_params(bench.overlay(load_params(root / "params.yaml"), extra), "params.yaml + overlay")
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    wall = bench.run_tool(root, ["snakemake", "--cores", "all", "--configfile", "overlay.yaml"], "snakemake")
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    where = paths.Sweep("synthetic", params["sweep"]["name"])
    sweep = params["sweep"]
    runs = {paths.run_name(a, l): json.loads((root / where.fold(a, l, 0, 0) / paths.TRAINED).read_text())
            for a in sweep["architectures"] for l in sweep["losses"]}
    statistics = json.loads((root / where.report / paths.STATISTICS).read_text())
    decisions = [json.loads(p.read_text()) for p in sorted((root / where.root / "rungs").glob("selection*.json"))]
    return {"params": params, "wall": wall, "cpu": after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime,
            "runs": runs, "statistics": statistics, "decisions": decisions}


def halving_order(decisions: list[dict], survivor: str) -> list[str]:
    """The pairs by the rung they reached (the survivor first), then by their val Dice at that rung."""
    reached = {survivor: (len(decisions), 1.0)}
    for decision in decisions:
        for pair, score in decision["val_dice"].items():
            reached[pair] = max(reached.get(pair, (-1, 0.0)), (decision["rung"], score))
    return sorted(reached, key=lambda p: reached[p], reverse=True)


def digest(params: dict) -> str:
    return code_digest([*pipeline.sweep_code(params), "params.yaml"], REPO)


def main() -> None:
    parser = bench.parser(__doc__, quick_run=True)
    parser.add_argument("--check", action="store_true", help="fail if the code changed since the recorded run")
    parser.set_defaults(quick_run=False)
    args = bench.parse(parser)
    code = digest(validate_params(bench.overlay(load_params(REPO / "params.yaml"),
                                                sweep_params(args.quick_run, HALVING))))
    if args.check:
        bench.check_recording(RECORDED, code)
        return
    with tempfile.TemporaryDirectory() as tmp:
        sweeps = {}
        for name, budget in (("full", None), ("halving", HALVING)):
            (Path(tmp) / name).mkdir()
            sweeps[name] = run_sweep(bench.scratch_project(Path(tmp) / name), sweep_params(args.quick_run, budget))
        full, halved = sweeps["full"], sweeps["halving"]
    print(report(full, halved, code, args.quick_run))


def report(full: dict, halved: dict, code: str, quick: bool) -> str:
    params = halved["params"]
    epochs = {k: sum(r["epochs"] for r in s["runs"].values()) for k, s in (("full", full), ("halving", halved))}
    seconds = {k: sum(r["train_seconds"] for r in s["runs"].values()) for k, s in (("full", full),
                                                                                    ("halving", halved))}
    survivor = next(p for p, r in halved["runs"].items() if not r["pruned"])
    best = full["statistics"]["best"]
    order = halving_order(halved["decisions"], survivor)
    first = halved["decisions"][0]["promoted"]  # the pairs that survived the first rung
    full_order = [p for p in full["statistics"]["ranking"] if p in first]
    tau = kendalltau([full_order.index(p) for p in first], [order.index(p) for p in first])
    budget = params["sweep"]["budget"]
    lines = [bench.heading(f"`benchmarks/budget.py{' --quick' if quick else ''}`: "
                           f"{len(full['runs'])} pairs ({len(params['sweep']['architectures'])} architectures x "
                           f"{len(params['sweep']['losses'])} losses), {params['preprocess']['size']} px, "
                           f"train.epochs {params['train']['epochs']}; code digest {code}"), "",
             "| | full sweep | successive halving (eta {eta}, min_epochs {m}) | halving / full |".format(
                 eta=budget["eta"], m=budget["min_epochs"]),
             "| --- | ---: | ---: | ---: |",
             f"| epochs trained | {epochs['full']:,} | {epochs['halving']:,} | "
             f"{epochs['halving'] / epochs['full']:.2f} |",
             f"| training device-seconds (train.json) | {seconds['full']:,.0f} | {seconds['halving']:,.0f} | "
             f"{seconds['halving'] / seconds['full']:.2f} |",
             f"| pipeline CPU-seconds (every job) | {full['cpu']:,.0f} | {halved['cpu']:,.0f} | "
             f"{halved['cpu'] / full['cpu']:.2f} |",
             f"| pipeline wall time | {bench.minutes(full['wall'])} | {bench.minutes(halved['wall'])} | "
             f"{halved['wall'] / full['wall']:.2f} |", "",
             f"Best pair: {best} in the full sweep (mean test Dice "
             f"{full['statistics']['per_pair'][best]['mean']:.3f}), "
             f"{survivor} with halving ({'the same' if best == survivor else 'a different pair'}; its test Dice in the "
             f"full sweep {full['statistics']['per_pair'][survivor]['mean']:.3f}).", "",
             f"The {len(first)} pairs that survived the first rung, in the full sweep's order (mean test Dice) and in "
             f"halving's (rung reached, then val Dice): Kendall's tau {tau.statistic:.2f} (p = {tau.pvalue:.2g}).", "",
             "| pair | full sweep: rank, test Dice | halving: rung reached, val Dice there |",
             "| --- | --- | --- |"]
    reached = {p: (d["rung"], s) for d in halved["decisions"] for p, s in d["val_dice"].items()}
    for pair in full["statistics"]["ranking"]:
        rank = full["statistics"]["ranking"].index(pair) + 1
        rung, score = reached[pair]
        fate = "survived, trained in full" if pair == survivor else f"pruned at rung {rung}"
        lines.append(f"| {pair} | {rank}, {full['statistics']['per_pair'][pair]['mean']:.3f} | {fate}, "
                     f"{score:.3f} |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
