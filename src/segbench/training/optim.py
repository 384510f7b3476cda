"""Optimisers and learning-rate schedules, registries chosen by ``params.yaml: train.optimizer`` and
``train.scheduler``; early stopping lives in the trainer."""

from __future__ import annotations

import torch

from segbench.registry import Registry

OPTIMIZERS = Registry("optimizer")
OPTIMIZERS.add("adam", "torch.optim:Adam", "Kingma & Ba, 2015", "Adam, its L2 penalty in the gradient (the thesis)")
OPTIMIZERS.add("adamw", "torch.optim:AdamW", "Loshchilov & Hutter, 2019", "AdamW, its weight decay decoupled")


def plateau(optimizer: torch.optim.Optimizer, recipe: dict):
    return torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, mode="max", factor=recipe["plateau_factor"],
                                                      patience=recipe["plateau_patience"], min_lr=recipe["min_lr"])


def cosine(optimizer: torch.optim.Optimizer, recipe: dict):
    return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=recipe["epochs"], eta_min=recipe["min_lr"])


def constant(optimizer: torch.optim.Optimizer, recipe: dict) -> None:
    return None


SCHEDULERS = Registry("scheduler")
_HERE = "segbench.training.optim"
SCHEDULERS.add("plateau", f"{_HERE}:plateau", "torch", "ReduceLROnPlateau on val Dice (the thesis)")
SCHEDULERS.add("cosine", f"{_HERE}:cosine", "Loshchilov & Hutter, 2017; torch", "cosine annealing over the epochs")
SCHEDULERS.add("none", f"{_HERE}:constant", "segbench", "a constant learning rate")


def build_optimizer(params, recipe: dict) -> torch.optim.Optimizer:
    """``recipe``: params' train section."""
    return OPTIMIZERS.entry(recipe["optimizer"]).build(params, lr=recipe["lr"], weight_decay=recipe["weight_decay"])


def build_scheduler(optimizer: torch.optim.Optimizer, recipe: dict):
    """The schedule ``train.scheduler`` names, or None for a constant rate."""
    return SCHEDULERS.entry(recipe["scheduler"]).build(optimizer, recipe)


def step_scheduler(scheduler, val_dice: float) -> None:
    if isinstance(scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
        scheduler.step(val_dice)
    elif scheduler is not None:
        scheduler.step()
