"""The weighted sum that composes loss terms from params, and the context their builders get.

A spec item is ``{term: <name>, weight: w, ramp: r, max_weight: m, <options>}``: the term's
weight at epoch e is ``min(m, w + r * (e - 1))`` (a rising schedule, as Kervadec et al.
pair the boundary loss with a region loss); the other keys go to the term's builder.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from segbench import SegbenchError
from segbench.labels import IGNORE

CERTAIN = 30.0  # a logit whose sigmoid is 1 - 1e-13: how ignored pixels are made certain background


@dataclass(frozen=True)
class LossContext:
    """What a builder may need besides its options."""

    mode: str                                   # "binary" (1 logit) or "multiclass" (C logits)
    classes: int                                # classes with background: 2 in binary mode
    class_frequencies: list[float] | None = None  # pixel share of each class in the training set


class WeightedSum(nn.Module):
    """sum_i w_i(epoch) * term_i(logits, target[, distance]), in float32 whatever the autocast.

    Shape: logits (N, C, H, W), or a list of them for deep supervision (full size first);
    target (N, 1, H, W); distance (N, K, H, W) or None -> scalar.
    """

    def __init__(self, terms: list[tuple[dict, nn.Module]], deep_supervision: list[float] | None = None):
        super().__init__()
        self.schedules = [(float(s.get("weight", 1.0)), float(s.get("ramp", 0.0)), s.get("max_weight"))
                          for s, _ in terms]
        self.terms = nn.ModuleList([t for _, t in terms])
        self.deep_supervision = deep_supervision
        self.needs_distance = any(getattr(t, "needs_distance", False) for t in self.terms)
        self.set_epoch(1)

    def set_epoch(self, epoch: int) -> None:
        """Apply the weight schedules for ``epoch`` (1-based)."""
        self.weights = [min(cap if cap is not None else float("inf"), w + r * (epoch - 1))
                        for w, r, cap in self.schedules]

    def _single(self, logits, target, distance):
        total = logits.sum() * 0.0  # a tensor in the graph even while every weight is 0 (a ramp's first epochs)
        for weight, term in zip(self.weights, self.terms):
            if weight:
                args = (distance,) if getattr(term, "needs_distance", False) else ()
                total = total + weight * term(logits, target, *args)
        return total

    def _masked(self, logits: torch.Tensor, target: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Pixels whose target is IGNORE become certain background in both logits and target, so they
        add nothing to any term and pass no gradient. (Few terms take an ignore index, so it is done here.)"""
        ignored = target == IGNORE
        if not ignored.any():
            return logits, target
        background = torch.full((logits.shape[1],), -CERTAIN, device=logits.device)
        background[0] = CERTAIN if logits.shape[1] > 1 else -CERTAIN
        logits = torch.where(ignored, background.view(1, -1, 1, 1), logits)
        return logits, target.masked_fill(ignored, 0)

    def forward(self, logits, target: torch.Tensor, distance: torch.Tensor | None = None) -> torch.Tensor:
        if self.needs_distance and distance is None:
            raise SegbenchError("this loss needs ground-truth distance maps; the data pipeline gave none")
        with torch.autocast(logits[0].device.type if isinstance(logits, (list, tuple)) else logits.device.type,
                            enabled=False):
            if not isinstance(logits, (list, tuple)):
                distance = None if distance is None else distance.float()
                return self._single(*self._masked(logits.float(), target), distance)
            weights = self.deep_supervision or [0.5 ** i for i in range(len(logits))]
            total = 0.0
            for weight, level in zip(weights, logits):
                scale = level.shape[-1] / target.shape[-1]
                t = F.interpolate(target.float(), size=level.shape[-2:], mode="nearest")
                d = None if distance is None else F.interpolate(distance.float(), size=level.shape[-2:],
                                                                mode="nearest") * scale
                total = total + weight * self._single(*self._masked(level.float(), t), d)
            return total / sum(weights[: len(logits)])
