"""Adapters that let library losses take segbench's (N, 1, H, W) target."""

from __future__ import annotations

import torch
from torch import nn

from segbench.losses.functional import class_ids


class SmpTerm(nn.Module):
    """A segmentation_models_pytorch loss: float 0/1 target in binary mode, (N, H, W) ids in multiclass."""

    def __init__(self, loss: nn.Module, mode: str):
        super().__init__()
        self.loss, self.mode = loss, mode

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return self.loss(logits, target.float() if self.mode == "binary" else class_ids(target))


class MonaiTerm(nn.Module):
    """A MONAI loss built with sigmoid (binary) or softmax + one-hot target (multiclass)."""

    def __init__(self, loss: nn.Module, mode: str):
        super().__init__()
        self.loss, self.mode = loss, mode

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return self.loss(logits, target.float() if self.mode == "binary" else target.long())


def monai_activation(mode: str) -> dict:
    """MONAI keyword arguments for logits input in ``mode``."""
    return {"sigmoid": True} if mode == "binary" else {"softmax": True, "to_onehot_y": True}
