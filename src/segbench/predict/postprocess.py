"""Post-processing of predicted label maps, chosen per run on validation images (nnU-Net's rule:
a candidate is kept only if it improves the validation Dice).

Candidates, applied to each foreground class:
- ``none``;
- ``fill_holes``: fill holes inside predicted regions;
- ``largest_component``: keep only the largest connected region (8-connected);
- ``remove_small``: drop regions smaller than ``min_fraction`` of the image's area.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from segbench.metrics.detection import components

CANDIDATES = ("none", "fill_holes", "largest_component", "remove_small")


def _apply_one(mask: np.ndarray, name: str, min_fraction: float) -> np.ndarray:
    if name == "fill_holes":
        return ndimage.binary_fill_holes(mask)
    labels, sizes = components(mask)
    if not len(sizes):
        return mask
    if name == "largest_component":
        return labels == int(np.argmax(sizes)) + 1
    keep = np.flatnonzero(sizes >= min_fraction * mask.size) + 1
    return np.isin(labels, keep)


def postprocess(labels: np.ndarray, name: str, classes: int, min_fraction: float = 1e-4) -> np.ndarray:
    """Apply candidate ``name`` to each foreground class of an (H, W) label map; returns a new map.

    Raises:
        ValueError: an unknown candidate.
    """
    if name not in CANDIDATES:
        raise ValueError(f"post-processing must be one of {CANDIDATES}, got {name!r}")
    if name == "none":
        return labels
    out = np.zeros_like(labels)
    for label in range(1, classes):
        out[_apply_one(labels == label, name, min_fraction) & (out == 0)] = label
    return out
