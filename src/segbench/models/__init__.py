"""Architectures: ``create_model(name, in_channels, classes, **options)`` builds a registry entry of
``catalog.py``, the table of every architecture with its builder and its paper."""

from __future__ import annotations

from segbench import SegbenchError
from segbench.models.catalog import MODELS, SMP

__all__ = ["MODELS", "SMP", "build_model", "create_model"]


def create_model(name: str, in_channels: int, classes: int, **options):
    """Build the registered architecture ``name``: a ``SegmentationModel`` taking (N, in_channels, H, W)
    and returning logits (N, classes, H, W).

    Raises:
        SegbenchError: unknown name (listing the known ones) or bad options.
    """
    entry = MODELS.entry(name)
    entry.check(options, f"architectures.{name}")
    try:
        return entry.build(in_channels=in_channels, classes=classes, **options)
    except (TypeError, ValueError) as exc:
        raise SegbenchError(f"architecture {name!r}: bad options {options}: {exc}") from None


def build_model(options: dict, in_channels: int = 1, classes: int = 2):
    """The model that ``params.yaml: architectures.<name>`` describes (its ``family`` is the registry
    entry): one foreground logit for 2 classes, else one logit per class."""
    options = dict(options)
    return create_model(options.pop("family"), in_channels, 1 if classes == 2 else classes, **options)
