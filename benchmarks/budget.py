"""Successive halving and a race against the full sweep: one grid trained in full and with ``sweep.budget``.

    python benchmarks/budget.py [--quick] [--check]

Runs the demo dataset (64 px, the demo's 12 epochs) with 6 architectures x 3 losses, each sweep by Snakemake in its
own scratch copy of the workflow: every pair to train.epochs; successive halving at eta 3 and min_epochs 1 (rungs at
1, 3 and 9 epochs) and 2 (rungs at 2 and 6); a race on the rungs at 1, 3 and 9 (alpha 0.05). Prints the epochs and
the training's device-seconds each used (train.json), the pipeline's wall and CPU time, whether the best pair is the
same, and Kendall's tau between the full sweep's order (mean test Dice) and the budgeted sweep's (the rung a pair
reached, then its val Dice there) of the pairs that survived the first rung. Recorded in
``benchmarks/results/budget.md``, which the docs embed; ``--check`` fails when the code changed since. ``--quick``:
2 x 2 pairs on a tiny dataset, 3 epochs, halving and the race at min_epochs 1.
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
from segbench.report.tables import pruned_at

REPO = bench.REPO
RECORDED = REPO / "benchmarks/results/budget.md"
GRID = {"sweep": {"name": "budget", "architectures": ["smp_unet", "attention_unet", "unet", "unet_plusplus",
                                                      "smp_fpn", "smp_linknet"],
                  "losses": ["dice", "dice_focal", "focal_tversky"]},
        "tracking": {"mlflow": False}}
QUICK = {"synthetic": {"n_images": 40}, "preprocess": {"size": 32}, "train": {"epochs": 3},
         "sweep": {"name": "budget", "architectures": ["smp_unet", "attention_unet"], "losses": ["dice", "dice_focal"]},
         "tracking": {"mlflow": False}}
BUDGETS = [*({"strategy": "successive_halving", "eta": 3, "min_epochs": m} for m in (1, 2)),
           {"strategy": "race", "eta": 3, "min_epochs": 1, "alpha": 0.05}]


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


def budget_order(budgeted: dict) -> list[str]:
    """A budgeted sweep's order of the pairs: by the rung they reached (those trained in full first, by their test
    Dice in that sweep), then by their val Dice at that rung."""
    reached = {p: (len(budgeted["decisions"]), s["mean"]) for p, s in budgeted["statistics"]["per_pair"].items()
               if not budgeted["runs"][p]["pruned"]}
    for decision in budgeted["decisions"]:
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
                                                sweep_params(args.quick_run, BUDGETS[0]))))
    if args.check:
        bench.check_recording(RECORDED, code)
        return
    with tempfile.TemporaryDirectory() as tmp:
        sweeps = []
        for index, budget in enumerate([None, *(BUDGETS[::2] if args.quick_run else BUDGETS)]):
            (Path(tmp) / str(index)).mkdir()
            sweeps.append(run_sweep(bench.scratch_project(Path(tmp) / str(index)),
                                    sweep_params(args.quick_run, budget)))
    print(report(sweeps[0], sweeps[1:], code, args.quick_run))


def report(full: dict, budgeted: list[dict], code: str, quick: bool) -> str:
    params = full["params"]
    names = [f"{'halving' if b['strategy'] == 'successive_halving' else 'race'}, min_epochs {b['min_epochs']}"
             for b in (s["params"]["sweep"]["budget"] for s in budgeted)]
    best, ranking, per_pair = full["statistics"]["best"], full["statistics"]["ranking"], full["statistics"]["per_pair"]
    lines = [bench.heading(f"`benchmarks/budget.py{' --quick' if quick else ''}`: "
                           f"{len(full['runs'])} pairs ({len(params['sweep']['architectures'])} architectures x "
                           f"{len(params['sweep']['losses'])} losses), {params['preprocess']['size']} px, "
                           f"train.epochs {params['train']['epochs']}, rungs at eta "
                           f"{budgeted[0]['params']['sweep']['budget']['eta']}; code digest {code}"), "",
             "| | full sweep | " + " | ".join(f"{n} | / full" for n in names) + " |",
             "| --- | ---: |" + " ---: | ---: |" * len(names)]
    measures = (("epochs trained", lambda s: sum(r["epochs"] for r in s["runs"].values()), "{:,}".format),
                ("training device-seconds (train.json)", lambda s: sum(r["train_seconds"] for r in s["runs"].values()),
                 "{:,.0f}".format),
                ("pipeline CPU-seconds (every job)", lambda s: s["cpu"], "{:,.0f}".format),
                ("pipeline wall time", lambda s: s["wall"], bench.minutes))
    for label, measure, text in measures:
        lines.append(f"| {label} | {text(measure(full))} | " + " | ".join(
            f"{text(measure(b))} | {measure(b) / measure(full):.2f}" for b in budgeted) + " |")
    lines += ["", f"Best pair of the full sweep: {best} (mean test Dice {per_pair[best]['mean']:.3f})."]
    for name, sweep in zip(names, budgeted):
        winner, in_full = sweep["statistics"]["best"], [p for p, r in sweep["runs"].items() if not r["pruned"]]
        first = sweep["decisions"][0]["promoted"]  # the pairs that survived the first rung
        order = budget_order(sweep)
        full_order = [p for p in ranking if p in first]
        tau = kendalltau([full_order.index(p) for p in first], [order.index(p) for p in first])
        lines.append(f"With {name}: {len(in_full)} trained in full; the best of them {winner} "
                     f"({'the same pair' if best == winner else 'a different pair'}; its test Dice in the full sweep "
                     f"{per_pair[winner]['mean']:.3f}, rank {ranking.index(winner) + 1}). The {len(first)} pairs that "
                     f"survived its first rung, in the full sweep's order (mean test Dice) and in its own (rung "
                     f"reached, then val Dice): Kendall's tau {tau.statistic:.2f} (p = {tau.pvalue:.2g}).")
    lines += ["", "| pair | full sweep: rank, test Dice | " + " | ".join(
        f"{n}: where it stopped" for n in names) + " |", "| --- | --- |" + " --- |" * len(names)]
    for rank, pair in enumerate(ranking, 1):
        fates = [pruned_at(s["runs"][pair]["pruned"]) if s["runs"][pair]["pruned"] else "trained in full"
                 for s in budgeted]
        lines.append(f"| {pair} | {rank}, {per_pair[pair]['mean']:.3f} | " + " | ".join(fates) + " |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
