"""The trained runs of a sweep on a dataset, by name. Names, never paths.

A run's full name is ``<dataset>/<sweep>/<arch>__<loss>/seed<k>`` (that seed's fold ensemble), or with
``/fold<f>`` (one model). Within one (dataset, sweep) the short forms name the same runs:
``<arch>__<loss>/seed<k>``, ``<arch>__<loss>`` (its first seed) and ``best`` (the report's best pair).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
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
                runs.append(Run(f"{dataset}/{params['sweep']['name']}/{paths.RunId(arch, loss, seed)}", seed_dir,
                                dice))
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
            raise SegbenchError(f"run 'best': {summary} is missing; run `segbench report`, or name a run "
                                f"({sorted(by_name)})")
        name = read_json(summary)["best_pair"]
    try:
        run = paths.RunId.parse(name.removeprefix(prefix))
    except ValueError as exc:
        raise SegbenchError(f"run {name!r}: {exc}; trained: {sorted(by_name)}") from None
    run = replace(run, seed=params["sweep"]["seeds"][0] if run.seed is None else run.seed)
    seed_name = prefix + str(replace(run, fold=None))
    if seed_name not in by_name:
        raise SegbenchError(f"run {name!r}: not a trained run; trained: {sorted(by_name)}"
                            f"{did_you_mean(seed_name, by_name)}")
    if run.fold is None:
        return by_name[seed_name]
    fold_dir = paths.fold_in(by_name[seed_name].path, run.fold)
    if not (fold_dir / paths.TRAINED).exists():
        raise SegbenchError(f"run {name!r}: fold {run.fold} of {seed_name} is not trained")
    return Run(prefix + str(run), fold_dir, None)
