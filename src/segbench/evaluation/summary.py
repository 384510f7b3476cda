"""From per-image scores to a run's metrics.json: means, detection rates, strata, post-processing choice."""

from __future__ import annotations

import pandas as pd

from segbench.metrics import METRICS

STRATUM_METRICS = ("dice", "iou", "hd95", "nsd")


def choose_postprocessing(val: pd.DataFrame, candidates: list[str], min_fraction: float) -> dict:
    """The candidate with the best mean val Dice (one column per candidate), kept only if it beats "none"."""
    means = {c: float(val[c].mean()) for c in candidates}
    best = max(candidates, key=lambda c: means[c])
    return {"name": best if means[best] > means["none"] else "none", "min_fraction": min_fraction,
            "val_dice": means}


def summarise(table: pd.DataFrame, strata: list[str], class_names: list[str]) -> dict:
    """metrics.json's numbers from per_image.csv's rows.

    Segmentation metrics are means (and SDs, n - 1) over the images with a lesion: an image without
    one (a normal X-ray) is a detection question, where one false-positive pixel would give Dice 0.
    Detection counts an image as positive when a predicted region reaches the minimum size.
    """
    lesion = table["lesion"].to_numpy(bool)
    segmented = table[lesion] if lesion.any() else table
    out: dict = {"n_images": int(len(table)), "n_lesion_images": int(lesion.sum()),
                 "n_normal_images": int((~lesion).sum())}
    for name in METRICS:
        out[name] = float(segmented[name].mean())
        out[f"{name}_std"] = float(segmented[name].std()) if len(segmented) > 1 else 0.0
    out["raw"] = {name: float(segmented[f"{name}_raw"].mean()) for name in METRICS}
    tp, fp, fn = (float(segmented[c].sum()) for c in ("tp", "fp", "fn"))
    out["dice_pooled"] = 2 * tp / (2 * tp + fp + fn) if tp + fp + fn else 1.0
    out["iou_pooled"] = tp / (tp + fp + fn) if tp + fp + fn else 1.0
    out["empty"] = {kind: int(table[f"empty_{kind}"].sum()) for kind in ("both", "truth", "prediction")}
    detected = table["detected"].to_numpy(bool)
    out["detection"] = {
        "sensitivity": float(detected[lesion].mean()) if lesion.any() else None,
        "specificity": float((~detected[~lesion]).mean()) if (~lesion).any() else None,
        "false_positive_rate_normals": float(detected[~lesion].mean()) if (~lesion).any() else None}
    if len(class_names) > 2:
        out["per_class"] = {c: {m: float(segmented[f"{m}_{c}"].mean()) for m in STRATUM_METRICS}
                            for c in class_names[1:]}
    out["strata"] = {column: {str(value): {"n": int(len(group)), **{m: float(group[m].mean()) for m in STRATUM_METRICS}}
                              for value, group in segmented.groupby(column)}
                     for column in strata}
    return out
