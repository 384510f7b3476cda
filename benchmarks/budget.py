"""Successive halving against the full sweep: one grid trained in full and with ``sweep.budget``, by Snakemake.

    python benchmarks/budget.py [--quick] [--check]

Runs the demo dataset (64 px, the demo's 12 epochs) with 6 architectures x 3 losses, each sweep in its own scratch
copy of the workflow: every pair to train.epochs, then with successive halving at eta 3 and min_epochs 1 (rungs at
1, 3 and 9 epochs) and 2 (rungs at 2 and 6). Prints the epochs and the training's device-seconds each used
(train.json), the pipeline's wall and CPU time, whether the best pair is the same, and Kendall's tau between the
full sweep's order (mean test Dice) and halving's (the rung a pair reached, then its val Dice there) of the pairs
that survived the first rung. Recorded in ``benchmarks/results/budget.md``, which the docs embed; ``--check`` fails
when the code changed since. ``--quick``: 2 x 2 pairs on a tiny dataset, 3 epochs, min_epochs 1 only.
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
HALVINGS = [{"strategy": "successive_halving", "eta": 3, "min_epochs": m} for m in (1, 2)]


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
                                                sweep_params(args.quick_run, HALVINGS[0]))))
    if args.check:
        bench.check_recording(RECORDED, code)
        return
    with tempfile.TemporaryDirectory() as tmp:
        sweeps = []
        for index, budget in enumerate([None, *(HALVINGS[:1] if args.quick_run else HALVINGS)]):
            (Path(tmp) / str(index)).mkdir()
            sweeps.append(run_sweep(bench.scratch_project(Path(tmp) / str(index)),
                                    sweep_params(args.quick_run, budget)))
    print(report(sweeps[0], sweeps[1:], code, args.quick_run))


def report(full: dict, halvings: list[dict], code: str, quick: bool) -> str:
    params = full["params"]
    names = [f"halving, min_epochs {h['params']['sweep']['budget']['min_epochs']}" for h in halvings]
    best = full["statistics"]["best"]
    lines = [bench.heading(f"`benchmarks/budget.py{' --quick' if quick else ''}`: "
                           f"{len(full['runs'])} pairs ({len(params['sweep']['architectures'])} architectures x "
                           f"{len(params['sweep']['losses'])} losses), {params['preprocess']['size']} px, "
                           f"train.epochs {params['train']['epochs']}, successive halving at eta "
                           f"{halvings[0]['params']['sweep']['budget']['eta']}; code digest {code}"), "",
             "| | full sweep | " + " | ".join(f"{n} | / full" for n in names) + " |",
             "| --- | ---: |" + " ---: | ---: |" * len(names)]
    measures = (("epochs trained", lambda s: sum(r["epochs"] for r in s["runs"].values()), "{:,}".format),
                ("training device-seconds (train.json)", lambda s: sum(r["train_seconds"] for r in s["runs"].values()),
                 "{:,.0f}".format),
                ("pipeline CPU-seconds (every job)", lambda s: s["cpu"], "{:,.0f}".format),
                ("pipeline wall time", lambda s: s["wall"], bench.minutes))
    for label, measure, text in measures:
        lines.append(f"| {label} | {text(measure(full))} | " + " | ".join(
            f"{text(measure(h))} | {measure(h) / measure(full):.2f}" for h in halvings) + " |")
    lines += ["", f"Best pair of the full sweep: {best} (mean test Dice "
                  f"{full['statistics']['per_pair'][best]['mean']:.3f})."]
    survivors, reached = [], []
    for name, halved in zip(names, halvings):
        survivor = next(p for p, r in halved["runs"].items() if not r["pruned"])
        first = halved["decisions"][0]["promoted"]  # the pairs that survived the first rung
        order = halving_order(halved["decisions"], survivor)
        full_order = [p for p in full["statistics"]["ranking"] if p in first]
        tau = kendalltau([full_order.index(p) for p in first], [order.index(p) for p in first])
        lines.append(f"With {name}: {survivor} ({'the same pair' if best == survivor else 'a different pair'}; "
                     f"its test Dice in the full sweep {full['statistics']['per_pair'][survivor]['mean']:.3f}, rank "
                     f"{full['statistics']['ranking'].index(survivor) + 1}). The {len(first)} pairs that survived "
                     f"its first rung, in the full sweep's order (mean test Dice) and in halving's (rung reached, "
                     f"then val Dice): Kendall's tau {tau.statistic:.2f} (p = {tau.pvalue:.2g}).")
        survivors.append(survivor)
        reached.append({p: (d["rung"], d["epochs"], s) for d in halved["decisions"] for p, s in d["val_dice"].items()})
    lines += ["", "| pair | full sweep: rank, test Dice | " + " | ".join(
        f"{n}: rung reached (epochs), val Dice there" for n in names) + " |", "| --- | --- |" + " --- |" * len(names)]
    for rank, pair in enumerate(full["statistics"]["ranking"], 1):
        fates = [f"survived, trained in full (rung {r[pair][0]}: {r[pair][2]:.3f})" if pair == survivor
                 else f"pruned at rung {r[pair][0]} ({r[pair][1]} epoch{'s' if r[pair][1] != 1 else ''}), "
                      f"{r[pair][2]:.3f}"
                 for survivor, r in zip(survivors, reached)]
        lines.append(f"| {pair} | {rank}, {full['statistics']['per_pair'][pair]['mean']:.3f} | "
                     + " | ".join(fates) + " |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
