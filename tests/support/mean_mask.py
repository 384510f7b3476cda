"""A reference method for the tests, written as any baseline is: every pixel's foreground probability is its
frequency in the fold's training masks. Copied into a test project's ``segbench/baselines/`` and registered there
by one line of its catalog."""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch

from segbench import paths
from segbench.baselines.folds import cases as fold_cases
from segbench.io import read_json, write_csv, write_json
from segbench.labels import IGNORE
from segbench.records import TrainRecord


def prepare(data, folds: list[int], key: str, out, processes: int = 1) -> None:
    """The foreground frequency of each fold's training masks, (S, S) float32 per fold."""
    out.mkdir(parents=True, exist_ok=True)
    for fold in folds:
        masks = np.stack([data.masks[i] for i in data.fold_indices(fold)[0]])
        np.save(out / f"fold{fold}.npy", ((masks > 0) & (masks != IGNORE)).mean(0).astype(np.float32))
    write_json(out / "classes.json", {"names": list(data.class_names), "channels": data.channels})
    write_json(out / "cases.json", {str(fold): fold_cases(data, fold) for fold in folds})


def planned_cases(prepared, key: str, fold: int) -> dict[str, list[str]] | None:
    return read_json(prepared / "cases.json").get(str(fold))


def train(name, prepared, key, fold, options, fold_dir, device, size, expected, tracker=None) -> dict:
    fold_dir.mkdir(parents=True, exist_ok=True)
    np.save(fold_dir / "mean.npy", np.load(prepared / f"fold{fold}.npy"))
    classes = read_json(prepared / "classes.json")
    write_csv(fold_dir / paths.HISTORY, pd.DataFrame({"epoch": [1], "train_loss": [0.0], "val_loss": [0.0],
                                                     "val_dice": [0.0], "lr": [0.0]}))
    write_csv(fold_dir / paths.TIMING, pd.DataFrame({"epoch": [1], "seconds": [0.0], "train_seconds": [0.0],
                                                    "val_seconds": [0.0], "peak_memory_mb": [np.nan]}))
    return TrainRecord(name, paths.BASELINE_LOSS, 0, fold, 1, 1, 0.0, 0.0, str(device), size, classes["channels"],
                       0, baseline=name, iterations_per_epoch=1, batch_size=len(expected["train"]),
                       baseline_settings={"label": "mean training mask", "class_names": classes["names"],
                                          "setup": "every pixel's foreground frequency in the fold's training "
                                                   "masks."}).write(fold_dir / paths.TRAINED)


class Member:
    def __init__(self, fold_dir, device="cpu"):
        self.net = torch.nn.Module()
        self.net.register_buffer("mean", torch.from_numpy(np.load(fold_dir / "mean.npy")))
        self.net.to(device)
        self.classes = 2

    def probabilities(self, canvases: np.ndarray) -> torch.Tensor:
        """(N, S, S[, C]) uint8 -> (N, 1, S, S): the same map for every image."""
        return self.net.mean.expand(len(canvases), 1, *self.net.mean.shape).float()


def member(fold_dir, device="cpu") -> Member:
    return Member(fold_dir, device)


def class_names(trained: dict) -> list[str]:
    return trained["baseline_settings"]["class_names"]
