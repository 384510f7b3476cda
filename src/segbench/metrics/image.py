"""Every metric of one predicted image against its truth, for any number of classes."""

from __future__ import annotations

import numpy as np

from segbench.labels import IGNORE
from segbench.metrics.boundary import BOUNDARY, boundary_scores
from segbench.metrics.overlap import OVERLAP, class_overlap, confusion_matrix, mean_iou, pixel_accuracy

METRICS = (*OVERLAP, "accuracy", "mean_iou", *BOUNDARY)


def image_metrics(pred: np.ndarray, truth: np.ndarray, classes: int, tolerance: float = 2.0,
                  spacing: tuple[float, float] = (1.0, 1.0), class_names: list[str] | None = None) -> dict:
    """Overlap and boundary metrics of one image: each foreground class's, and their mean.

    Shape: pred and truth (H, W) of class ids (truth may hold IGNORE, left out everywhere).
    Returns: {metric: mean over foreground classes} for METRICS (mean_iou and accuracy count every
    class), "<metric>_<class name>" per foreground class when there are several, and "empty":
    how many foreground classes were absent from both masks ("both"), from the truth only
    ("truth") or from the prediction only ("prediction"); "tp", "fp", "fn": foreground pixel counts
    (class matches over every foreground class), for pooled scores.
    """
    matrix = confusion_matrix(pred, truth, classes)
    names = class_names or [str(c) for c in range(classes)]
    valid = truth != IGNORE
    per_class, empty = [], {"both": 0, "truth": 0, "prediction": 0}
    for label in range(1, classes):
        p, t = (pred == label) & valid, truth == label
        p_any, t_any = bool(p.any()), bool(t.any())
        if not (p_any and t_any):
            empty["both" if not (p_any or t_any) else "truth" if not t_any else "prediction"] += 1
        per_class.append({**class_overlap(matrix, label), **boundary_scores(p, t, tolerance, spacing)})
    out = {name: float(np.mean([c[name] for c in per_class])) for name in (*OVERLAP, *BOUNDARY)}
    tp = float(np.trace(matrix[1:, 1:]))
    out.update(accuracy=pixel_accuracy(matrix), mean_iou=mean_iou(matrix), empty=empty, tp=tp,
               fp=float(matrix[:, 1:].sum()) - tp, fn=float(matrix[1:, :].sum()) - tp)
    if classes > 2:
        for label, scores in zip(range(1, classes), per_class):
            out.update({f"{name}_{names[label]}": value for name, value in scores.items()})
    return out
