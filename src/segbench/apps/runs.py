"""The trained runs of a sweep on a dataset, by name. Names, never paths.

A run's full name is ``<dataset>/<sweep>/<arch>__<loss>/seed<k>`` (that seed's fold ensemble), or with
``/fold<f>`` (one model). Within one (dataset, sweep) the short forms name the same runs:
``<arch>__<loss>/seed<k>``, ``<arch>__<loss>`` (its first seed) and ``best`` (the report's best pair).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from segbench import SegbenchError, did_you_mean, paths
from segbench.io import read_json


@dataclass(frozen=True)
class Run:
    name: str   # full: <dataset>/<sweep>/<arch>__<loss>/seed<k>[/fold<f>]
    path: Path
    dice: float | None  # mean test Dice from its evaluation, None before evaluation


def trained_runs(params: dict, dataset: str) -> list[Run]:
    """Every (pair, seed) of the sweep on ``dataset`` with a trained model, and its baselines', best test Dice
    first."""
    where, runs = paths.Sweep(dataset, params["sweep"]["name"]), []
    for arch, loss, seeds in paths.members(params["sweep"]):
        for seed in seeds:
            seed_dir = where.seed(arch, loss, seed)
            if paths.trained_folds(seed_dir):
                metrics = seed_dir / paths.METRICS
                dice = read_json(metrics)["dice"] if metrics.exists() else None
                runs.append(Run(f"{dataset}/{params['sweep']['name']}/{paths.run_name(arch, loss)}/seed{seed}",
                                seed_dir, dice))
    return sorted(runs, key=lambda r: -1.0 if r.dice is None else -r.dice)


def resolve(name: str, params: dict, dataset: str) -> Run:
    """The run ``name`` names, a full name or a short one within ``dataset`` and the params' sweep.

    Raises:
        SegbenchError: an unknown or untrained run, listing the trained ones.
    """
    runs = trained_runs(params, dataset)
    if not runs:
        raise SegbenchError(f"no trained run of sweep {params['sweep']['name']!r} on {dataset!r} yet: run the "
                            "sweep first (`make demo` or `snakemake --cores all`)")
    by_name = {r.name: r for r in runs}
    prefix = f"{dataset}/{params['sweep']['name']}/"
    if name == "best":
        summary = paths.Sweep(dataset, params["sweep"]["name"]).report / paths.SUMMARY
        if not summary.exists():
            raise SegbenchError(f"--run best: {summary} is missing; run `segbench report`, or name a run "
                                f"({sorted(by_name)})")
        name = read_json(summary)["best_pair"]
    if not name.startswith(prefix):
        name = prefix + name
    parts = name.removeprefix(prefix).split("/")
    if len(parts) == 1:
        name = f"{prefix}{parts[0]}/seed{params['sweep']['seeds'][0]}"
    elif len(parts) == 3 and parts[2].startswith("fold") and (seed_name := prefix + "/".join(parts[:2])) in by_name:
        fold_dir = paths.fold_in(by_name[seed_name].path, parts[2])
        if (fold_dir / paths.TRAINED).exists():
            return Run(name, fold_dir, None)
    if name not in by_name:
        raise SegbenchError(f"--run {name!r}: not a trained run; trained: {sorted(by_name)}"
                            f"{did_you_mean(name, by_name)}")
    return by_name[name]
