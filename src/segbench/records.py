"""What a training run leaves about itself: ``train.json``, one ``TrainRecord`` written by every trainer (segbench's
and a baseline's), read by evaluation, the report and the apps."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

from segbench import SegbenchError, paths
from segbench.io import read_json, write_json


@dataclass
class TrainRecord:
    """One training run (a pair or a baseline, one seed, one fold): where it stopped, its best epoch and what it
    cost, its model's size and input statistics, and its provenance.

    ``val_dice``: which Dice the run's history logs each epoch; ``diverged`` / ``failed``: what stopped it early (a
    non-finite loss; out of GPU memory), None when nothing did; ``baseline``: the baseline it is (None for a pair),
    with its own ``baseline_settings`` (``label``: its name in the report, with its schedule). The budget:
    ``epochs`` x ``iterations_per_epoch`` steps of ``batch_size`` images in ``train_seconds`` on ``device``.
    """

    arch: str
    loss: str
    seed: int
    fold: int | str  # str: a reference training (paths.REFERENCES)
    epochs: int
    best_epoch: int
    best_val_dice: float
    train_seconds: float
    device: str
    size: int | None = None
    in_channels: int | None = None
    n_params: int | None = None
    gflops: float | None = None
    gflops_size: int | None = None
    mean: list[float] | None = None
    std: list[float] | None = None
    val_dice: str = "segbench's val Dice: images with a lesion, at the evaluation's resolution"
    trivial_val_dice: float | None = None
    diverged: dict | None = None
    failed: dict | None = None
    mlflow_run_id: str | None = None
    git_commit: str | None = None
    baseline: str | None = None
    baseline_settings: dict = field(default_factory=dict)
    iterations_per_epoch: int | None = None  # optimiser steps per epoch
    batch_size: int | None = None
    pruned: dict | None = None  # sweep.budget: the rung that stopped the run ({"rung", "epochs", "val_dice"})
    tuned: dict | None = None  # sweep.tune: the candidate this run is ({"candidate", "settings", "val_dice"})
    best_val_images: dict[str, float] | None = None  # the best epoch's Dice of each val image (sample id)

    def write(self, path: Path) -> dict:
        """Write train.json (atomically); returns it as a dict."""
        record = asdict(self)
        write_json(path, record)
        return record


def read_runs(runs: list[Path], command: str) -> list[dict]:
    """The train.json of each run folder in ``runs``.

    Raises:
        SegbenchError: one is missing, naming it and ``command``, the job that writes it.
    """
    missing = [run / paths.TRAINED for run in runs if not (run / paths.TRAINED).exists()]
    if missing:
        raise SegbenchError(f"{missing[0]}: missing; run {command}")
    return [read_json(run / paths.TRAINED) for run in runs]


def mean_val_dice(records: list[dict]) -> float:
    """The score successive halving and tuning rank by: the mean over runs of each one's best val Dice so far."""
    return sum(r["best_val_dice"] for r in records) / len(records)
