"""Name -> builder registry for architectures (timm-style decorator, smp-style factory)."""

from __future__ import annotations

import difflib
import warnings
from typing import Callable

from torch import nn

from segbench import SegbenchError

_MODELS: dict[str, Callable[..., nn.Module]] = {}


def register_model(name: str):
    """Decorator: register ``builder(in_channels, classes, **cfg) -> nn.Module`` under ``name``."""

    def decorate(builder):
        if name in _MODELS:
            warnings.warn(f"architecture family {name!r} registered twice; the later one wins", stacklevel=2)
        _MODELS[name] = builder
        return builder

    return decorate


def list_models() -> list[str]:
    return sorted(_MODELS)


def create_model(family: str, in_channels: int, classes: int, **cfg) -> nn.Module:
    """Build a registered architecture family.

    Raises:
        SegbenchError: unknown family (listing the known ones) or bad options.
    """
    if family not in _MODELS:
        hint = difflib.get_close_matches(family, _MODELS, n=1)
        raise SegbenchError(f"unknown architecture family {family!r}; available: {list_models()}"
                            + (f"; did you mean {hint[0]!r}?" if hint else ""))
    try:
        return _MODELS[family](in_channels=in_channels, classes=classes, **cfg)
    except TypeError as exc:
        raise SegbenchError(f"architecture family {family!r}: bad options {sorted(cfg)}: {exc}") from None
