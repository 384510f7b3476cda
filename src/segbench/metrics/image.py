"""Every metric of one predicted image against its truth, for any number of classes."""

from __future__ import annotations

import numpy as np

from segbench.labels import IGNORE
from segbench.metrics.boundary import BOUNDARY, boundary_scores
from segbench.metrics.overlap import OVERLAP, class_overlap, confusion_matrix, mean_iou, pixel_accuracy

METRICS = (*OVERLAP, "accuracy", "mean_iou", *BOUNDARY)


def image_metrics(pred: np.ndarray, truth: np.ndarray, classes: int, tolerance: float = 2.0,
                  spacing: tuple[float, float] = (1.0, 1.0), class_names: list[str] | None = None,
                  penalty: float | None = None) -> dict:
    """Overlap and boundary metrics of one image: each foreground class's, and their mean.

    Shape: pred and truth (H, W) of class ids (truth may hold IGNORE, left out everywhere).
    Returns: {metric: mean over the foreground classes present in the truth or the prediction} for METRICS
    (mean_iou and accuracy count every class); a class absent from both is left out of that mean, as
    Metrics Reloaded does (a class at 0.5 beside an absent one reads 0.5, not 0.75), and when every class
    is absent the both-empty values stand (Dice 1, HD95 0). With several foreground classes,
    "<metric>_<class name>" per class (NaN for a class absent from both). "empty": how many foreground
    classes were absent from both masks ("both"), from the truth only ("truth") or from the prediction only
    ("prediction"); "boundary_penalised": classes whose HD95 and ASSD are ``penalty`` (exactly one mask
    empty); "tp", "fp", "fn": foreground pixel counts (class matches over every foreground class).
    """
    matrix = confusion_matrix(pred, truth, classes)
    names = class_names or [str(c) for c in range(classes)]
    valid = truth != IGNORE
    per_class, present, empty = [], [], {"both": 0, "truth": 0, "prediction": 0}
    for label in range(1, classes):
        p, t = (pred == label) & valid, truth == label
        p_any, t_any = bool(p.any()), bool(t.any())
        if not (p_any and t_any):
            empty["both" if not (p_any or t_any) else "truth" if not t_any else "prediction"] += 1
        per_class.append({**class_overlap(matrix, label), **boundary_scores(p, t, tolerance, spacing, penalty)})
        present.append(p_any or t_any)
    scored = [c for c, keep in zip(per_class, present) if keep] or per_class
    out = {name: float(np.mean([c[name] for c in scored])) for name in (*OVERLAP, *BOUNDARY)}
    tp = float(np.trace(matrix[1:, 1:]))
    out.update(accuracy=pixel_accuracy(matrix), mean_iou=mean_iou(matrix), empty=empty,
               boundary_penalised=empty["truth"] + empty["prediction"], tp=tp,
               fp=float(matrix[:, 1:].sum()) - tp, fn=float(matrix[1:, :].sum()) - tp)
    if classes > 2:
        for label, scores, keep in zip(range(1, classes), per_class, present):
            out.update({f"{name}_{names[label]}": value if keep else float("nan") for name, value in scores.items()})
    return out
