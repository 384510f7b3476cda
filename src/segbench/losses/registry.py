"""Name -> loss-term registry, and the weighted sum that composes terms from params.

A spec item is ``{term: <name>, weight: w, ramp: r, max_weight: m, <options>}``: the term's
weight at epoch e is ``min(m, w + r * (e - 1))`` (a rising schedule, as Kervadec et al.
pair the boundary loss with a region loss); the other keys go to the term's builder.
"""

from __future__ import annotations

import inspect
import warnings
from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

from segbench import SegbenchError, look_up
from segbench.data.sample import IGNORE

CERTAIN = 30.0  # a logit whose sigmoid is 1 - 1e-13: how ignored pixels are made certain background
MODES = ("binary", "multiclass")
FAMILIES = ("distribution", "region", "boundary", "compound")
RESERVED = ("term", "weight", "ramp", "max_weight")


@dataclass(frozen=True)
class LossContext:
    """What a builder may need besides its options."""

    mode: str                                   # "binary" (1 logit) or "multiclass" (C logits)
    classes: int                                # classes with background: 2 in binary mode
    class_frequencies: list[float] | None = None  # pixel share of each class in the training set


@dataclass(frozen=True)
class LossEntry:
    name: str
    family: str
    builder: Callable[..., nn.Module]

    def options(self) -> dict:
        """The builder's options and their defaults."""
        params = list(inspect.signature(self.builder).parameters.values())[1:]
        return {p.name: p.default for p in params}

    def summary(self) -> str:
        doc = inspect.getdoc(self.builder) or ""
        return " ".join(doc.split("\n\n")[0].split())


_LOSSES: dict[str, LossEntry] = {}


def register_loss(name: str, family: str):
    """Decorator: register ``builder(ctx: LossContext, **options) -> nn.Module`` as term ``name``."""
    if family not in FAMILIES:
        raise ValueError(f"loss family must be one of {FAMILIES}, got {family!r}")

    def decorate(builder):
        if name in _LOSSES:
            warnings.warn(f"loss term {name!r} registered twice; the later one wins", stacklevel=2)
        _LOSSES[name] = LossEntry(name, family, builder)
        return builder

    return decorate


def list_losses(family: str | None = None) -> list[str]:
    return sorted(n for n, e in _LOSSES.items() if family is None or e.family == family)


def loss_entry(name: str) -> LossEntry:
    return look_up(name, _LOSSES, "loss term")


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
        total = 0.0
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


def create_loss(spec: list[dict], mode: str = "binary", classes: int = 2,
                class_frequencies: list[float] | None = None,
                deep_supervision: list[float] | None = None) -> WeightedSum:
    """Build the weighted sum of the terms in ``spec``.

    Args:
        spec: the list under ``params.yaml: losses.<name>``.
        mode: "binary" (logits with 1 channel) or "multiclass" (C channels).
        classes: number of classes with background (2 in binary mode).
        class_frequencies: training-set pixel share per class, for ``class_weights: auto``.
        deep_supervision: weight of each output when the model returns several (default 1, 1/2, 1/4, ...).

    Raises:
        SegbenchError: unknown term (listing the known ones), unknown mode or bad options.
    """
    if mode not in MODES:
        raise SegbenchError(f"loss mode must be one of {MODES}, got {mode!r}")
    ctx = LossContext(mode, 2 if mode == "binary" else classes, class_frequencies)
    terms = []
    for item in spec:
        entry = loss_entry(item["term"])
        options = {k: v for k, v in item.items() if k not in RESERVED}
        try:
            terms.append((item, entry.builder(ctx, **options)))
        except TypeError as exc:
            raise SegbenchError(f"loss term {entry.name!r}: bad options {sorted(options)}: {exc}") from None
    return WeightedSum(terms, deep_supervision)
