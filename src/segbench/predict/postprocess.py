"""Post-processing of predicted label maps, chosen per run on validation images (nnU-Net's rule:
a candidate is kept only if it improves the validation Dice).

Candidates, a registry of functions ``(mask (H, W) bool, min_fraction) -> mask``, applied to each foreground
class in turn; ``CANDIDATES`` lists them in the order they are tried.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from segbench.metrics.detection import components
from segbench.registry import Registry


def unchanged(mask: np.ndarray, min_fraction: float) -> np.ndarray:
    return mask


def fill_holes(mask: np.ndarray, min_fraction: float) -> np.ndarray:
    return ndimage.binary_fill_holes(mask)


def largest_component(mask: np.ndarray, min_fraction: float) -> np.ndarray:
    labels, sizes = components(mask)
    return labels == int(np.argmax(sizes)) + 1 if len(sizes) else mask


def remove_small(mask: np.ndarray, min_fraction: float) -> np.ndarray:
    labels, sizes = components(mask)
    return np.isin(labels, np.flatnonzero(sizes >= min_fraction * mask.size) + 1) if len(sizes) else mask


POSTPROCESSING = Registry("post-processing")
_HERE = "segbench.predict.postprocess"
POSTPROCESSING.add("none", f"{_HERE}:unchanged", "segbench", "the prediction as it is")
POSTPROCESSING.add("fill_holes", f"{_HERE}:fill_holes", "scipy.ndimage", "fill holes inside predicted regions")
POSTPROCESSING.add("largest_component", f"{_HERE}:largest_component", "nnU-Net (Isensee et al., 2021)",
                   "keep only the largest connected region (8-connected)")
POSTPROCESSING.add("remove_small", f"{_HERE}:remove_small", "segbench",
                   "drop regions smaller than evaluate.min_component_fraction of the image's area")
CANDIDATES = tuple(POSTPROCESSING)


def postprocess(labels: np.ndarray, name: str, classes: int, min_fraction: float = 1e-4) -> np.ndarray:
    """Apply candidate ``name`` to each foreground class of an (H, W) label map; returns a new map.

    Raises:
        SegbenchError: an unknown candidate, naming the known ones.
    """
    apply = POSTPROCESSING.entry(name).load()
    out = np.zeros_like(labels)
    for label in range(1, classes):
        out[apply(labels == label, min_fraction) & (out == 0)] = label
    return out
