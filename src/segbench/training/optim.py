"""Optimiser, learning-rate schedule and early stopping, from ``params.yaml: train``."""

from __future__ import annotations

import torch

from segbench import SegbenchError


def build_optimizer(params, recipe: dict) -> torch.optim.Optimizer:
    """Adam (L2 penalty in the gradient, as the thesis) or AdamW (decoupled weight decay)."""
    optimisers = {"adam": torch.optim.Adam, "adamw": torch.optim.AdamW}
    if recipe["optimizer"] not in optimisers:
        raise SegbenchError(f"train.optimizer: {recipe['optimizer']!r} is not one of {sorted(optimisers)}")
    return optimisers[recipe["optimizer"]](params, lr=recipe["lr"], weight_decay=recipe["weight_decay"])


def build_scheduler(optimizer: torch.optim.Optimizer, recipe: dict):
    """ReduceLROnPlateau on validation Dice, cosine annealing over the epochs, or none."""
    kind = recipe["scheduler"]
    if kind == "plateau":
        return torch.optim.lr_scheduler.ReduceLROnPlateau(
            optimizer, mode="max", factor=recipe["plateau_factor"], patience=recipe["plateau_patience"],
            min_lr=recipe["min_lr"])
    if kind == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=recipe["epochs"], eta_min=recipe["min_lr"])
    return None


def step_scheduler(scheduler, val_dice: float) -> None:
    if isinstance(scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
        scheduler.step(val_dice)
    elif scheduler is not None:
        scheduler.step()
