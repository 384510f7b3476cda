"""What the nnU-Net baseline adds to the demo: each of its three stages timed on the demo's data.

    python benchmarks/nnunet_cost.py [--quick]

In a scratch copy of the workflow with `sweep.baselines: [nnunet]` (params.yaml's short trainer), Snakemake first
makes the data (download, preprocess, split; untimed); then `segbench baseline_prepare`, `baseline_train` (one
fold: the demo's) and `baseline_evaluate` run one after the other, each timed, as their Snakemake jobs run them.
Prints the heading and a table of the stages' wall times; recorded in ``benchmarks/results/nnunet_cost.md``, which
the nnU-Net how-to embeds. ``--quick``: 40 images at 32 px, one epoch of 4 iterations.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import _common as bench
import yaml

QUICK = {"synthetic": {"n_images": 40}, "preprocess": {"size": 32},
         "baselines": {"nnunet": {"epochs": 1, "iterations_per_epoch": 4, "val_iterations_per_epoch": 2}}}
STAGES = (("baseline_prepare", "export, fingerprint, plan, preprocess"),
          ("baseline_train", "nnU-Net's trainer on fold 0, then its validation and post-processing choice"),
          ("baseline_evaluate", "segbench's evaluation of the fold's model, and its latency"))


def main(argv=None) -> None:
    args = bench.parse(bench.parser(__doc__, quick=True), argv)
    with tempfile.TemporaryDirectory() as tmp:
        root = bench.scratch_project(Path(tmp))
        params = yaml.safe_load((root / "params.yaml").read_text())
        params["sweep"]["baselines"] = ["nnunet"]
        for section, values in (QUICK if args.quick else {}).items():
            params[section] = {**params.get(section, {}), **values}
        (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
        dataset, trainer = params["sweep"]["datasets"][0], params["baselines"]["nnunet"]
        bench.run_tool(root, ["snakemake", "--cores", "all", "--until", "split"], "making the data")
        times = {name: bench.run_tool(root, ["segbench", name, "--baseline", "nnunet", "--dataset", dataset,
                                             *(["--fold", str(params["sweep"]["folds"][0])]
                                               if name == "baseline_train" else [])], name)
                 for name, _ in STAGES}
    size = params.get("preprocess", {}).get("size")
    print(bench.heading(f"the nnU-Net baseline on the demo's data ({dataset}, {size} px), its trainer "
                        f"{trainer['epochs']} epochs x {trainer['iterations_per_epoch']} iterations"
                        f"{' (--quick)' if args.quick else ''}"))
    print("\n| stage | time |\n| --- | ---: |")
    for name, what in STAGES:
        print(f"| `{name}` ({what}) | {bench.minutes(times[name])} |")
    print(f"| **the baseline** | **{bench.minutes(sum(times.values()))}** |")


if __name__ == "__main__":
    main()
