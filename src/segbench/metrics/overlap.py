"""Overlap metrics of one image from its confusion matrix.

Empty masks follow Metrics Reloaded (Maier-Hein et al., 2024): a class absent from both the
truth and the prediction scores 1 (perfect agreement); absent from exactly one of them, the
worst value, 0. No value is ever NaN, so no image silently drops out of a mean. Averaged over
classes (``mean_overlap``), a class absent from both is left out.
"""

from __future__ import annotations

import numpy as np

from segbench.labels import IGNORE

OVERLAP = ("dice", "iou", "precision", "recall", "specificity")


def confusion_matrix(pred: np.ndarray, truth: np.ndarray, classes: int) -> np.ndarray:
    """(classes, classes) pixel counts, truth in rows and prediction in columns; IGNORE pixels left out.

    Shape: pred and truth (H, W) of class ids.
    """
    valid = truth != IGNORE
    pairs = truth[valid].astype(np.int64) * classes + np.minimum(pred[valid], classes - 1)
    return np.bincount(pairs, minlength=classes * classes).reshape(classes, classes)


def _ratio(numerator: float, denominator: float, both_empty: bool) -> float:
    if denominator:
        return numerator / denominator
    return 1.0 if both_empty else 0.0


def class_overlap(matrix: np.ndarray, label: int) -> dict[str, float]:
    """Dice (= F1), IoU, precision, recall and specificity of class ``label``.

    Dice = 2TP / (2TP + FP + FN), IoU = TP / (TP + FP + FN), precision = TP / (TP + FP),
    recall = TP / (TP + FN), specificity = TN / (TN + FP); the empty-mask policy above.
    """
    tp = float(matrix[label, label])
    fp = float(matrix[:, label].sum()) - tp
    fn = float(matrix[label, :].sum()) - tp
    tn = float(matrix.sum()) - tp - fp - fn
    both_empty = tp + fp + fn == 0
    return {"dice": _ratio(2 * tp, 2 * tp + fp + fn, both_empty), "iou": _ratio(tp, tp + fp + fn, both_empty),
            "precision": _ratio(tp, tp + fp, both_empty), "recall": _ratio(tp, tp + fn, both_empty),
            "specificity": _ratio(tn, tn + fp, fp == 0)}


def pixel_accuracy(matrix: np.ndarray) -> float:
    """Share of (non-ignored) pixels whose class is right."""
    total = matrix.sum()
    return float(np.trace(matrix) / total) if total else 1.0


def mean_iou(matrix: np.ndarray) -> float:
    """IoU averaged over every class, background included (the thesis's "mean IoU")."""
    return float(np.mean([class_overlap(matrix, c)["iou"] for c in range(len(matrix))]))


def mean_overlap(pred: np.ndarray, truth: np.ndarray, classes: int) -> dict[str, float]:
    """Dice and IoU of one image, averaged over the foreground classes present in the truth or the prediction
    (all of them when none is): the one scorer of validation, post-processing choice, evaluation and the
    web page's ground-truth comparison.

    Shape: pred and truth (H, W) of class ids (truth may hold IGNORE).
    """
    matrix = confusion_matrix(pred, truth, classes)
    labels = [c for c in range(1, classes) if matrix[c, :].sum() or matrix[:, c].sum()] or list(range(1, classes))
    scores = [class_overlap(matrix, c) for c in labels]
    return {"dice": float(np.mean([s["dice"] for s in scores])), "iou": float(np.mean([s["iou"] for s in scores]))}
