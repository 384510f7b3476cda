"""Per-image overlap metrics from smp's confusion statistics.

Policy for empty masks (documented in the README): Dice and IoU are 1 when prediction
and ground truth are both empty (perfect agreement). Precision is undefined (NaN) for
an empty prediction and recall for an empty ground truth; means skip NaNs, and the
number of undefined values is reported alongside.
"""

from __future__ import annotations

import numpy as np
import segmentation_models_pytorch as smp
import torch

from segbench.data.sample import IGNORE

METRICS = ("dice", "iou", "precision", "recall")


def per_image_scores(pred: torch.Tensor, target: torch.Tensor, classes: int = 2) -> dict[str, np.ndarray]:
    """Label maps -> one score per image.

    Shape: pred (N, H, W) or (N, 1, H, W) in {0..classes-1}; target the same, or IGNORE.
    Pixels whose target is IGNORE count nowhere. With more than 2 classes each score is the
    mean over the foreground classes (1..classes-1), and "dice_per_class" is (N, classes-1).
    Returns: {"dice", "iou", "precision", "recall", "tp", "fp", "fn"} -> arrays (N,).
    """
    pred, target = pred.reshape(len(pred), 1, -1).long(), target.reshape(len(target), 1, -1).long()
    if classes == 2:  # smp's binary stats take no ignore index
        valid = target != IGNORE
        tp, fp, fn, tn = smp.metrics.get_stats(pred * valid, target * valid, mode="binary")
    else:
        tp, fp, fn, tn = (s[:, 1:] for s in smp.metrics.get_stats(pred[:, 0], target[:, 0], mode="multiclass",
                                                                   num_classes=classes, ignore_index=IGNORE))
    nan = float("nan")
    scores = {
        "dice": smp.metrics.f1_score(tp, fp, fn, tn, reduction="none", zero_division=1.0),
        "iou": smp.metrics.iou_score(tp, fp, fn, tn, reduction="none", zero_division=1.0),
        "precision": smp.metrics.precision(tp, fp, fn, tn, reduction="none", zero_division=nan),
        "recall": smp.metrics.recall(tp, fp, fn, tn, reduction="none", zero_division=nan),
    }
    out = {k: v.double().nanmean(1).numpy() for k, v in scores.items()}
    out.update({k: v.sum(1).double().numpy() for k, v in (("tp", tp), ("fp", fp), ("fn", fn))})
    if classes > 2:
        out["dice_per_class"] = scores["dice"].double().numpy()
    return out


def summarise(scores: dict[str, np.ndarray]) -> dict[str, float]:
    """Means over images (NaN-skipping), their std, pooled Dice, and undefined counts."""
    out: dict[str, float] = {"n_images": int(len(scores["dice"]))}
    for name in METRICS:
        values = scores[name]
        defined = values[~np.isnan(values)]
        out[name] = float(defined.mean()) if len(defined) else float("nan")
        out[f"{name}_std"] = float(defined.std()) if len(defined) else float("nan")
        if len(defined) < len(values):
            out[f"{name}_undefined"] = int(len(values) - len(defined))
    tp, fp, fn = (float(scores[k].sum()) for k in ("tp", "fp", "fn"))
    out["dice_pooled"] = 2 * tp / (2 * tp + fp + fn) if tp + fp + fn else 1.0
    return out
