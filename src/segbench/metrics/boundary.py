"""Boundary metrics of one class in one image: HD95, ASSD and normalised surface Dice.

Definitions (Metrics Reloaded; MONAI's ``compute_hausdorff_distance(percentile=95)``,
``compute_average_surface_distance(symmetric=True)`` and ``compute_surface_dice``):
the surface of a mask is its pixels that binary erosion removes; d(A -> B) are the Euclidean
distances from each surface pixel of A to the nearest surface pixel of B.

- HD95 = max(P95 d(pred -> truth), P95 d(truth -> pred)): the larger of the two directed 95th
  percentiles (linear interpolation). medpy's ``hd95`` pools both directions first, a different number.
- ASSD = mean of d(pred -> truth) and d(truth -> pred) pooled.
- NSD at tolerance tau = (#{d(pred -> truth) <= tau} + #{d(truth -> pred) <= tau}) / (#pred surface + #truth surface).

Empty masks: both empty -> HD95 0, ASSD 0, NSD 1; exactly one empty (a missed lesion, or a prediction
where there is none) -> NSD 0, and HD95 and ASSD a penalty: the image diagonal by default (the worst
distance possible; ``evaluate.boundary_penalty`` sets another). That is segbench's choice: MONAI returns
inf there (NaN when both are empty), Metrics Reloaded NaN, then the worst value when aggregating. Such a
penalty dominates a mean, so reports give the mean over images where both masks are non-empty beside it,
and count the penalised images.

Speed: the two distance sets are computed once and serve all three metrics, and only in a window
around both masks (their bounding box plus one pixel), never on the whole image. Why not
MONAI's calls: each recomputes the surfaces and both distance sets, three times per image.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage
from scipy.spatial import KDTree

BOUNDARY = ("hd95", "assd", "nsd")


def _window(pred: np.ndarray, truth: np.ndarray) -> tuple[slice, slice] | None:
    """The bounding box of both masks plus a 1-pixel margin, clipped to the image; None if both are empty."""
    union = pred | truth
    rows, cols = np.flatnonzero(union.any(1)), np.flatnonzero(union.any(0))
    if not len(rows):
        return None
    h, w = union.shape
    return slice(max(0, rows[0] - 1), min(h, rows[-1] + 2)), slice(max(0, cols[0] - 1), min(w, cols[-1] + 2))


def surface(mask: np.ndarray) -> np.ndarray:
    """(n, 2) row, column coordinates of the pixels binary erosion removes (outside the array counts as 0)."""
    return np.argwhere(mask & ~ndimage.binary_erosion(mask))


def surface_distances(pred: np.ndarray, truth: np.ndarray, spacing: tuple[float, float] = (1.0, 1.0)):
    """(d(pred -> truth), d(truth -> pred)) for two non-empty boolean (H, W) masks, in units of ``spacing``."""
    rows, cols = _window(pred, truth)
    scale = np.asarray(spacing, np.float64)
    pred_surface = surface(pred[rows, cols]) * scale
    truth_surface = surface(truth[rows, cols]) * scale
    return KDTree(truth_surface).query(pred_surface)[0], KDTree(pred_surface).query(truth_surface)[0]


def boundary_scores(pred: np.ndarray, truth: np.ndarray, tolerance: float,
                    spacing: tuple[float, float] = (1.0, 1.0), penalty: float | None = None) -> dict[str, float]:
    """HD95, ASSD and NSD@tolerance of two boolean (H, W) masks, with the empty-mask policy above
    (``penalty``: the HD95 and ASSD of exactly one empty mask; None: the image's diagonal)."""
    pred_any, truth_any = pred.any(), truth.any()
    if not pred_any and not truth_any:
        return {"hd95": 0.0, "assd": 0.0, "nsd": 1.0}
    if not (pred_any and truth_any):
        worst = float(np.hypot(pred.shape[0] * spacing[0], pred.shape[1] * spacing[1])) if penalty is None \
            else float(penalty)
        return {"hd95": worst, "assd": worst, "nsd": 0.0}
    to_truth, to_pred = surface_distances(pred, truth, spacing)
    both = np.concatenate([to_truth, to_pred])
    return {"hd95": float(max(np.percentile(to_truth, 95), np.percentile(to_pred, 95))),
            "assd": float(both.mean()), "nsd": float((both <= tolerance).sum() / len(both))}
