"""What the nnU-Net baseline adds to the demo: the whole sweep with and without it, and whether it ran beside the pairs.

    python benchmarks/nnunet_cost.py [--quick]

Runs `snakemake --cores all` twice, each in a fresh scratch copy of the workflow: the demo as params.yaml has it,
then with `sweep.baselines: [nnunet]` (params.yaml's short trainer). Prints the heading, a table of both wall times
and their difference (the baseline's extra time), each baseline job's own time, and the pairs' jobs each baseline
job ran beside, read from Snakemake's log (a job's start and end times); recorded in
``benchmarks/results/nnunet_cost.md``, which the nnU-Net how-to embeds. ``--quick``: 40 images at 32 px, one epoch,
nnU-Net's trainer one epoch of 4 iterations.
"""

from __future__ import annotations

import re
import tempfile
from datetime import datetime
from pathlib import Path

import _common as bench
import yaml

QUICK = {"synthetic": {"n_images": 40}, "preprocess": {"size": 32}, "train": {"epochs": 1},
         "baselines": {"nnunet": {"epochs": 1, "iterations_per_epoch": 4, "val_iterations_per_epoch": 2}}}
STAMP = re.compile(r"^\[(\w{3} \w{3} +\d+ \d\d:\d\d:\d\d \d{4})\]$")
STARTED = re.compile(r"^(?:local)?rule (\w+):$")
JOBID = re.compile(r"^\s+jobid: (\d+)$")
FINISHED = re.compile(r"^Finished jobid: (\d+)")


def sweep(folder: Path, baselines: list[str], quick: bool) -> tuple[float, dict, dict]:
    """The demo through `snakemake --cores all` in a scratch project in ``folder``, with ``baselines``: its wall
    seconds, its params and its jobs (jobid -> (rule, start, end)) from Snakemake's log."""
    root = bench.scratch_project(folder)
    params = yaml.safe_load((root / "params.yaml").read_text())
    params["sweep"]["baselines"] = baselines
    for section, values in (QUICK if quick else {}).items():
        params[section] = {**params.get(section, {}), **values}
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    seconds = bench.run_tool(root, ["snakemake", "--cores", "all"], f"snakemake with sweep.baselines {baselines}")
    return seconds, params, jobs(next((root / ".snakemake/log").glob("*.snakemake.log")).read_text())


def jobs(log: str) -> dict[int, tuple[str, datetime, datetime | None]]:
    """Each job of a Snakemake log: its rule, when it started and when it finished."""
    out, stamp, rule = {}, None, None
    for line in log.splitlines():
        if m := STAMP.match(line):
            stamp = datetime.strptime(m[1], "%a %b %d %H:%M:%S %Y")
        elif m := STARTED.match(line):
            rule = m[1]
        elif (m := JOBID.match(line)) and rule:
            out[int(m[1])], rule = (rule, stamp, None), None
        elif (m := FINISHED.match(line)) and int(m[1]) in out:
            name, start, _ = out[int(m[1])]
            out[int(m[1])] = (name, start, stamp)
    return out


def beside(job: tuple, others: list[tuple]) -> int:
    """How many of ``others`` ran at the same time as ``job`` for at least a second."""
    return sum(min(job[2], o[2]) > max(job[1], o[1]) for o in others)


def main(argv=None) -> None:
    args = bench.parse(bench.parser(__doc__, quick=True), argv)
    with tempfile.TemporaryDirectory() as plain, tempfile.TemporaryDirectory() as with_baseline:
        without, _, _ = sweep(Path(plain), [], args.quick)
        seconds, params, ran = sweep(Path(with_baseline), ["nnunet"], args.quick)
    trainer, size = params["baselines"]["nnunet"], params.get("preprocess", {}).get("size")
    finished = [j for j in ran.values() if j[1] and j[2]]
    pairs = [j for j in finished if j[0] in ("train", "evaluate")]
    print(bench.heading(f"the demo (`snakemake --cores all`, {params['sweep']['datasets'][0]}, {size} px) with and "
                        f"without the nnU-Net baseline, its trainer {trainer['epochs']} epochs x "
                        f"{trainer['iterations_per_epoch']} iterations{' (--quick)' if args.quick else ''}"))
    print("\n| | time |\n| --- | ---: |")
    print(f"| the demo | {bench.minutes(without)} |")
    print(f"| the demo with `sweep.baselines: [nnunet]` | {bench.minutes(seconds)} |")
    print(f"| **the baseline's extra time** | **{bench.minutes(seconds - without)}** |")
    print("\n| baseline job | its time | pairs' jobs (train, evaluate) running beside it |\n| --- | ---: | ---: |")
    for name, start, end in sorted((j for j in finished if j[0].startswith("baseline_")), key=lambda j: j[1]):
        print(f"| `{name}` | {bench.minutes((end - start).total_seconds())} | {beside((name, start, end), pairs)} |")


if __name__ == "__main__":
    main()
