"""Lesion-level detection (Metrics Reloaded's object-detection category): the connected components of a
prediction matched one-to-one to the true lesions.

A true lesion is a connected region of the truth's foreground (8-connected, any foreground class); a
predicted lesion one of the prediction's of at least ``min_size`` pixels. A pair can match when their IoU
exceeds ``threshold`` (``criterion="iou"``, default 0.1) or when they overlap at all (``"overlap"``); the
matching maximises the total IoU (the Hungarian algorithm, scipy's ``linear_sum_assignment``), so one
prediction never counts for two lesions. Unmatched predictions are false positives.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage
from scipy.optimize import linear_sum_assignment

CONNECTIVITY = np.ones((3, 3), bool)  # 8-connected regions
CRITERIA = ("iou", "overlap")


def components(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(label image, size of each region 1..n) of a boolean (H, W) mask."""
    labels, count = ndimage.label(mask, CONNECTIVITY)
    return labels, np.bincount(labels.ravel(), minlength=count + 1)[1:]


def match_lesions(pred: np.ndarray, truth: np.ndarray, criterion: str = "iou", threshold: float = 0.1,
                  min_size: int = 1) -> dict[str, int]:
    """Count the true, predicted and matched lesions of one image.

    Shape: pred and truth (H, W) boolean foreground masks.
    Returns: {"lesions_true", "lesions_predicted", "lesions_matched"}; false positives are predicted - matched.
    """
    if criterion not in CRITERIA:
        raise ValueError(f"detection match must be one of {CRITERIA}, got {criterion!r}")
    true_labels, true_sizes = components(truth)
    pred_labels, pred_sizes = components(pred)
    kept = np.flatnonzero(pred_sizes >= min_size) + 1  # predicted regions big enough to count
    n_true, n_pred = len(true_sizes), len(kept)
    if not n_true or not n_pred:
        return {"lesions_true": n_true, "lesions_predicted": n_pred, "lesions_matched": 0}
    remap = np.zeros(len(pred_sizes) + 1, np.int64)
    remap[kept] = np.arange(1, n_pred + 1)
    pairs = true_labels.astype(np.int64) * (n_pred + 1) + remap[pred_labels]
    overlap = np.bincount(pairs.ravel(), minlength=(n_true + 1) * (n_pred + 1)).reshape(n_true + 1, n_pred + 1)
    inter = overlap[1:, 1:].astype(float)
    union = true_sizes[:, None] + pred_sizes[kept - 1][None, :] - inter
    iou = inter / union
    eligible = iou > threshold if criterion == "iou" else inter > 0
    rows, cols = linear_sum_assignment(np.where(eligible, iou, 0.0), maximize=True)
    return {"lesions_true": n_true, "lesions_predicted": n_pred,
            "lesions_matched": int(eligible[rows, cols].sum())}
