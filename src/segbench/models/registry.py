"""Name -> builder registry for architectures (timm-style decorator, smp-style factory)."""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Callable

from segbench import SegbenchError, look_up
from segbench.models.base import SegmentationModel


@dataclass(frozen=True)
class ModelEntry:
    name: str
    builder: Callable[..., SegmentationModel]
    paper: str  # the source, e.g. "Ronneberger et al., 2015"


_MODELS: dict[str, ModelEntry] = {}


def register_model(name: str, paper: str):
    """Decorator: register ``builder(in_channels, classes, **cfg) -> SegmentationModel`` under ``name``."""

    def decorate(builder):
        if name in _MODELS:
            warnings.warn(f"architecture {name!r} registered twice; the later one wins", stacklevel=2)
        _MODELS[name] = ModelEntry(name, builder, paper)
        return builder

    return decorate


def list_models() -> list[str]:
    return sorted(_MODELS)


def model_entry(name: str) -> ModelEntry:
    """Raises: SegbenchError naming the known entries for an unknown ``name``."""
    return look_up(name, _MODELS, "architecture")


def create_model(name: str, in_channels: int, classes: int, **cfg) -> SegmentationModel:
    """Build the registered architecture ``name`` with the options ``cfg``.

    Raises:
        SegbenchError: unknown name (listing the known ones) or bad options.
    """
    entry = model_entry(name)
    try:
        return entry.builder(in_channels=in_channels, classes=classes, **cfg)
    except (TypeError, ValueError) as exc:
        raise SegbenchError(f"architecture {name!r}: bad options {cfg}: {exc}") from None
