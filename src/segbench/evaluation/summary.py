"""From per-image scores to a run's metrics.json: means, boundary penalties, lesion detection, strata, the
post-processing choice and the signs of a failed run."""

from __future__ import annotations

import numpy as np
import pandas as pd

from segbench.data.metadata import labels
from segbench.metrics.image import METRICS

STRATUM_METRICS = ("dice", "iou", "hd95", "nsd")
BOUNDARY_DISTANCES = ("hd95", "assd")
# A run whose test predictions look like this did not learn the task (see ``degenerate``)
ALL_FOREGROUND = 0.95     # an image predicted (nearly) all foreground
MOSTLY = 0.5              # ... on at least this share of the test images
MISSED = 0.9              # nothing predicted on at least this share of the images with a lesion
MIN_SPECIFICITY = 0.75    # a quarter of the background marked as lesion, on average
TRIVIAL_MARGIN = 0.01     # best val Dice no better than predicting everything as foreground


def choose_postprocessing(val: pd.DataFrame, candidates: list[str], min_fraction: float) -> dict:
    """The candidate with the best mean Dice over the val images with a lesion (the criterion the report
    leads with), kept only if it beats "none", and only among candidates that do not raise the share of
    normal val images with a predicted lesion above none's. ``val``: ``dice:<candidate>`` and
    ``lesions:<candidate>`` columns, one row per val image (``evaluate.out_of_fold``)."""
    lesion = val["lesion"].to_numpy(bool)
    dice = {c: float(val.loc[lesion, f"dice:{c}"].mean()) if lesion.any() else float("nan") for c in candidates}
    false_positives = {c: float((val.loc[~lesion, f"lesions:{c}"] > 0).mean()) if (~lesion).any() else None
                       for c in candidates}
    allowed = [c for c in candidates if false_positives[c] is None or false_positives[c] <= false_positives["none"]]
    best = max(allowed, key=lambda c: dice[c])
    return {"name": best if dice[best] > dice["none"] else "none", "min_fraction": min_fraction,
            "criterion": "mean Dice of the val images with a lesion; no more normal val images with a false "
                         "positive than without post-processing",
            "val_lesion_dice": dice, "val_false_positive_rate_normals": false_positives}


def _detection(table: pd.DataFrame, lesion: np.ndarray) -> dict:
    """Lesion-level and image-level detection (``metrics.detection``): lesions matched to true lesions."""
    true, predicted, matched = (table[f"lesions_{k}"].to_numpy() for k in ("true", "predicted", "matched"))
    normal = ~lesion
    return {
        "lesion_sensitivity": float(matched.sum() / true.sum()) if true.sum() else None,
        "false_positives_per_image": float((predicted - matched).mean()),
        "image_sensitivity": float((matched[lesion] > 0).mean()) if lesion.any() else None,
        "image_specificity": float((predicted[normal] == 0).mean()) if normal.any() else None,
        "false_positives_per_normal_image": float(predicted[normal].mean()) if normal.any() else None,
        "lesions_true": int(true.sum()), "lesions_matched": int(matched.sum()),
        "lesions_false_positive": int((predicted - matched).sum())}


def summarise(table: pd.DataFrame, strata: list[str], class_names: list[str], leaked: set[str] = frozenset()) -> dict:
    """metrics.json's numbers from per_image.csv's rows.

    Segmentation metrics are means (and SDs, n - 1) over the images with a lesion: an image without
    one (a normal X-ray) is a detection question, where one false-positive pixel would give Dice 0.
    HD95 and ASSD also come as ``<metric>_matched``: the mean over the images where no mask was empty, so
    no penalty enters it, beside ``boundary_penalised``, the number of images that took the penalty.
    ``without_leaked``: the same means without the test images the leakage audit found a near-duplicate or a
    group mate of in training (``leaked``).
    """
    lesion = table["lesion"].to_numpy(bool)
    segmented = table[lesion] if lesion.any() else table
    out: dict = {"n_images": int(len(table)), "n_lesion_images": int(lesion.sum()),
                 "n_normal_images": int((~lesion).sum())}
    for name in METRICS:
        out[name] = float(segmented[name].mean())
        out[f"{name}_std"] = float(segmented[name].std()) if len(segmented) > 1 else 0.0
    matched = segmented[segmented["boundary_penalised"] == 0]
    for name in BOUNDARY_DISTANCES:
        out[f"{name}_matched"] = float(matched[name].mean()) if len(matched) else None
    out["boundary_penalised"] = int((segmented["boundary_penalised"] > 0).sum())
    out["raw"] = {name: float(segmented[f"{name}_raw"].mean()) for name in METRICS}
    tp, fp, fn = (float(segmented[c].sum()) for c in ("tp", "fp", "fn"))
    out["dice_pooled"] = 2 * tp / (2 * tp + fp + fn) if tp + fp + fn else 1.0
    out["iou_pooled"] = tp / (tp + fp + fn) if tp + fp + fn else 1.0
    out["empty"] = {kind: int(table[f"empty_{kind}"].sum()) for kind in ("both", "truth", "prediction")}
    out["detection"] = _detection(table, lesion)
    if len(class_names) > 2:  # a class absent from both masks of an image is left out of its mean
        out["per_class"] = {c: {m: float(segmented[f"{m}_{c}"].mean()) for m in STRATUM_METRICS}
                            for c in class_names[1:]}
    clean = segmented[~segmented["sample_id"].astype(str).isin(leaked)]
    out["without_leaked"] = {"n_lesion_images": int(len(clean)),
                             **{m: float(clean[m].mean()) if len(clean) else None for m in STRATUM_METRICS}}
    out["strata"] = {column: {value: {"n": int(len(group)), **{m: float(group[m].mean()) for m in STRATUM_METRICS}}
                              for value, group in segmented.groupby(labels(segmented[column]))}  # blanks: BLANK
                     for column in strata}
    return out


def degenerate(table: pd.DataFrame, trained: list[dict]) -> list[str]:
    """Why a run did not learn the task, if it did not: the reasons the report marks it with (and keeps it
    from being called best unless nothing else trained). Empty for a run that learned.

    ``table``: its per_image.csv; ``trained``: its folds' train.json.
    """
    reasons = []
    for run in trained:
        # the fold by its number; a reference training (its fold a split column) is named by its caller
        fold = f"fold {run['fold']}" if isinstance(run["fold"], int) else None
        in_fold = f" ({fold})" if fold else ""
        if run.get("diverged"):
            reasons.append(f"the loss went non-finite at epoch {run['diverged']['epoch']}{in_fold}")
        if run.get("failed"):
            reasons.append(f"training stopped at epoch {run['failed']['epoch']}, {run['failed']['reason']}{in_fold}")
        trivial = run.get("trivial_val_dice")
        if trivial is not None and run["best_val_dice"] <= trivial + TRIVIAL_MARGIN:
            reasons.append(f"best val Dice {run['best_val_dice']:.3f} never beat predicting everything as "
                           f"foreground ({'; '.join(filter(None, (f'{trivial:.3f}', fold)))})")
    lesion = table["lesion"].to_numpy(bool)
    everything = float((table["foreground_fraction"] >= ALL_FOREGROUND).mean())
    if everything >= MOSTLY:
        reasons.append(f"predicts (nearly) the whole image as lesion on {everything:.0%} of the test images")
    if lesion.any():
        nothing = float((table.loc[lesion, "foreground_fraction"] == 0).mean())
        if nothing >= MISSED:
            reasons.append(f"predicts nothing on {nothing:.0%} of the test images with a lesion")
        specificity = float(table.loc[lesion, "specificity"].mean())
        if specificity < MIN_SPECIFICITY:
            reasons.append(f"marks {1 - specificity:.0%} of the background as lesion on average")
    return reasons
