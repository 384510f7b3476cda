"""The trained runs of a sweep, by name: ``best``, ``<arch>__<loss>`` (its first seed), ``<arch>__<loss>/seed<k>``
(that seed's fold ensemble) or ``<arch>__<loss>/seed<k>/fold<f>`` (one model). Names, never paths."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from segbench import SegbenchError, did_you_mean, paths
from segbench.io import read_json


@dataclass(frozen=True)
class Run:
    name: str
    path: Path
    dice: float | None  # mean test Dice from its evaluation, None before evaluation


def trained_runs(params: dict) -> list[Run]:
    """Every (pair, seed) of the sweep with a trained model, best test Dice first."""
    sweep, runs = params["sweep"], []
    for arch in sweep["architectures"]:
        for loss in sweep["losses"]:
            for seed in sweep["seeds"]:
                seed_dir = paths.seed_dir(arch, loss, seed)
                if any(seed_dir.glob("folds/fold*/model_best.pt")):
                    metrics = seed_dir / "metrics.json"
                    dice = read_json(metrics)["dice"] if metrics.exists() else None
                    runs.append(Run(f"{paths.run_name(arch, loss)}/seed{seed}", seed_dir, dice))
    return sorted(runs, key=lambda r: -1.0 if r.dice is None else -r.dice)


def resolve(name: str, params: dict) -> Run:
    """The run ``name`` names.

    Raises:
        SegbenchError: an unknown or untrained run, listing the trained ones.
    """
    runs = trained_runs(params)
    if not runs:
        raise SegbenchError("no trained run yet: run the sweep first (`make demo` or `snakemake --cores all`)")
    by_name = {r.name: r for r in runs}
    if name == "best":
        summary = paths.REPORT_DIR / "summary.json"
        if not summary.exists():
            raise SegbenchError(f"--run best: {summary} is missing; run `segbench report`, or name a run "
                                f"({sorted(by_name)})")
        name = read_json(summary)["best_pair"]
    if "/" not in name:
        name = f"{name}/seed{params['sweep']['seeds'][0]}"
    parts = name.split("/")
    if len(parts) == 3 and "/".join(parts[:2]) in by_name and parts[2].startswith("fold"):
        fold_dir = by_name["/".join(parts[:2])].path / "folds" / parts[2]
        if (fold_dir / "model_best.pt").exists():
            return Run(name, fold_dir, None)
    if name not in by_name:
        raise SegbenchError(f"--run {name!r}: not a trained run; trained: {sorted(by_name)}"
                            f"{did_you_mean(name, by_name)}")
    return by_name[name]
