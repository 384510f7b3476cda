"""Name -> loss-term registry, and the weighted sum that composes terms from params."""

from __future__ import annotations

import difflib
import warnings
from typing import Callable

import torch
from torch import nn

from segbench import SegbenchError

MODES = ("binary", "multiclass")
_LOSSES: dict[str, Callable[..., nn.Module]] = {}


def register_loss(name: str):
    """Decorator: register ``builder(mode, **options) -> nn.Module`` as loss term ``name``."""

    def decorate(builder):
        if name in _LOSSES:
            warnings.warn(f"loss term {name!r} registered twice; the later one wins", stacklevel=2)
        _LOSSES[name] = builder
        return builder

    return decorate


def list_losses() -> list[str]:
    return sorted(_LOSSES)


class WeightedSum(nn.Module):
    """sum_i w_i * term_i(logits, target). Shape: logits (N, C, H, W), target (N, 1, H, W) -> scalar."""

    def __init__(self, terms: list[tuple[float, nn.Module]]):
        super().__init__()
        self.weights = [w for w, _ in terms]
        self.terms = nn.ModuleList([t for _, t in terms])

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return sum(w * term(logits, target) for w, term in zip(self.weights, self.terms))


def create_loss(spec: list[dict], mode: str = "binary") -> WeightedSum:
    """Build the weighted sum of the terms in ``spec``.

    Raises:
        SegbenchError: unknown term (listing the known ones), unknown mode or bad options.
    """
    if mode not in MODES:
        raise SegbenchError(f"loss mode must be one of {MODES}, got {mode!r}")
    terms = []
    for item in spec:
        options = {k: v for k, v in item.items() if k not in ("term", "weight")}
        name = item["term"]
        if name not in _LOSSES:
            hint = difflib.get_close_matches(name, _LOSSES, n=1)
            raise SegbenchError(f"unknown loss term {name!r}; available: {list_losses()}"
                                + (f"; did you mean {hint[0]!r}?" if hint else ""))
        try:
            terms.append((float(item.get("weight", 1.0)), _LOSSES[name](mode, **options)))
        except TypeError as exc:
            raise SegbenchError(f"loss term {name!r}: bad options {sorted(options)}: {exc}") from None
    return WeightedSum(terms)
