"""Losses: ``create_loss(spec, mode)`` builds a weighted sum of named terms from ``catalog.py``.

``spec`` is the list written under ``params.yaml: losses.<name>``, e.g.
``[{term: dice, weight: 0.7}, {term: focal, weight: 0.3, gamma: 2.0}]``.
"""

from __future__ import annotations

from segbench import SegbenchError
from segbench.losses.catalog import BLIND_ON_EMPTY, FAMILIES, LOSSES, MODES, RESERVED

__all__ = ["BLIND_ON_EMPTY", "FAMILIES", "LOSSES", "MODES", "check_spec", "create_loss"]


def check_spec(spec: list[dict], where: str) -> None:
    """Check every term name and option of a ``losses.<name>`` list, without building anything.

    Raises:
        SegbenchError: naming ``where[i].<option>``, the value and what is allowed.
    """
    for i, item in enumerate(spec):
        LOSSES.entry(item["term"]).check({k: v for k, v in item.items() if k not in RESERVED}, f"{where}[{i}]")
        if item.get("weight", 1.0) == 0 and item.get("ramp", 0.0) <= 0:
            raise SegbenchError(f"{where}[{i}].weight: 0 with no ramp: the term {item['term']!r} would never count; "
                                "remove it, or give it a weight or a ramp")


def create_loss(spec: list[dict], mode: str = "binary", classes: int = 2,
                class_frequencies: list[float] | None = None, deep_supervision: list[float] | None = None):
    """Build the weighted sum (``WeightedSum``) of the terms in ``spec``.

    Args:
        spec: the list under ``params.yaml: losses.<name>``.
        mode: "binary" (logits with 1 channel) or "multiclass" (C channels).
        classes: number of classes with background (2 in binary mode).
        class_frequencies: training-set pixel share per class, for ``class_weights: auto``.
        deep_supervision: weight of each output when the model returns several (default 1, 1/2, 1/4, ...).

    Raises:
        SegbenchError: unknown term (listing the known ones), unknown mode or bad options.
    """
    from segbench.losses.weighted_sum import LossContext, WeightedSum

    if mode not in MODES:
        raise SegbenchError(f"loss mode must be one of {MODES}, got {mode!r}")
    check_spec(spec, "losses")
    ctx = LossContext(mode, 2 if mode == "binary" else classes, class_frequencies)
    terms = []
    for item in spec:
        options = {k: v for k, v in item.items() if k not in RESERVED}
        try:
            terms.append((item, LOSSES.entry(item["term"]).build(ctx, **options)))
        except TypeError as exc:
            raise SegbenchError(f"loss term {item['term']!r}: bad options {sorted(options)}: {exc}") from None
    return WeightedSum(terms, deep_supervision)
