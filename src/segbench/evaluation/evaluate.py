"""The `evaluate` stage: one pair, one seed; its fold models on their val images, their ensemble on the test.

nnU-Net's protocol: each fold model predicts the images it was validated on (out-of-fold);
the post-processing is chosen on those predictions (a candidate is kept only if it improves
the mean val Dice over all val images); the test images are predicted by the mean of the
fold models' probabilities, resampled to each image's original size before the threshold,
then post-processed. Without cross-validation the one fold is the split's val subset.

Outputs, in the seed folder: ``per_image.csv`` (every test image, post-processed metrics and
``*_raw`` ones), ``metrics.json`` (results only: the same inputs give the same bytes), ``timing.json``
(latency and memory, measured), ``test_predictions.npz`` / ``val_predictions.npz`` (the label maps at
the evaluation resolution, keyed by sample id) and ``test_probabilities.npz`` (the foreground
probability on the un-padded canvas, uint8 0-255, for figures).
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm import tqdm

from segbench import SegbenchError, paths
from segbench.data.dataset import Processed
from segbench.data.images import Geometry
from segbench.evaluation.summary import choose_postprocessing, summarise
from segbench.evaluation import latency
from segbench.predict.postprocess import CANDIDATES, lesion_count, postprocess
from segbench.predict.predictor import Predictor, foreground, to_labels
from segbench.io import NpzWriter, read_json, write_csv, write_json
from segbench.labels import IGNORE
from segbench.metrics import image_metrics
from segbench.metrics.overlap import class_overlap, confusion_matrix

log = logging.getLogger(__name__)


class Truth:
    """Each image's geometry and its truth at the evaluation resolution."""

    def __init__(self, data: Processed, original: bool):
        self.data, self.original = data, original
        self.originals = data.original_masks() if original else None

    def geometry(self, index: int) -> Geometry:
        return Geometry.of(self.data.meta.iloc[index], self.data.size)

    def mask(self, index: int) -> np.ndarray:
        if self.original:
            return self.originals[self.data.meta["sample_id"].iloc[index]]
        return self.geometry(index).crop(self.data.masks[index])


def predictions(predictor: Predictor, data: Processed, indices: np.ndarray, batch_size: int, desc: str):
    """(array index, canvas probabilities (K', S, S)) of the images ``indices``, a batch at a time."""
    for start in tqdm(range(0, len(indices), batch_size), desc=desc, leave=False):
        block = indices[start:start + batch_size]
        canvases = np.stack([data.images[i] for i in block])
        yield from zip(block, predictor.canvas_probabilities(canvases))


def _mean_dice(labels: np.ndarray, truth: np.ndarray, classes: int) -> float:
    matrix = confusion_matrix(labels, truth, classes)
    return float(np.mean([class_overlap(matrix, c)["dice"] for c in range(1, classes)]))


def evaluate_replicate(arch: str, loss: str, seed: int, params: dict, where: paths.Sweep, processed_dir: Path,
                       split_csv: Path, tracker=None) -> dict:
    """Evaluate the pair's models of ``seed`` (their folders under ``where``); write the seed folder's outputs;
    return metrics.json. ``params``: one dataset's (``config.dataset_params``)."""
    options, folds = params["evaluate"], params["sweep"]["folds"]
    out_dir = where.seed(arch, loss, seed)
    original = options["resolution"] == "original"
    pixel = params["dataset"]["spacing_mm"] or 1.0  # boundary metrics in mm with a spacing, else in pixels
    spacing, tolerance = (pixel, pixel), options["nsd_tolerance_px"] * pixel
    min_fraction, batch = options["min_component_fraction"], params["train"]["batch_size"]
    data = Processed.load(processed_dir, split_csv)
    names = data.class_names
    classes = len(names)
    truth = Truth(data, original)
    fold_runs = {f: where.fold(arch, loss, seed, f) for f in folds}
    models = {f: Predictor.from_checkpoints([d / paths.CHECKPOINT], source=str(d)) for f, d in fold_runs.items()}

    # out-of-fold validation: the mean Dice of each post-processing candidate
    candidates, rows = [c for c in CANDIDATES if c in options["postprocessing"] or c == "none"], []
    with NpzWriter(out_dir / paths.VAL_PREDICTIONS) as saved:
        for fold, model in models.items():
            for index, p in predictions(model, data, data.fold_indices(fold)[1], batch, f"val fold {fold}"):
                labels, mask = to_labels(truth.geometry(index).restore(p, original)), truth.mask(index)
                rows.append({"sample_id": data.meta["sample_id"].iloc[index], "fold": fold,
                             **{c: _mean_dice(postprocess(labels, c, classes, min_fraction), mask, classes)
                                for c in candidates}})
                saved.add(rows[-1]["sample_id"], labels)
    chosen = choose_postprocessing(pd.DataFrame(rows), candidates, min_fraction)
    log.info("%s__%s seed %d: post-processing %r (val Dice %s)", arch, loss, seed, chosen["name"], chosen["val_dice"])

    # the test images: the fold ensemble, post-processed
    test = data.indices("test")
    if not len(test):
        raise SegbenchError(f"{split_csv}: the test subset is empty")
    ensemble = Predictor([m.members[0] for m in models.values()], data.size, data.channels, classes, chosen,
                         str(out_dir), names)
    strata = [c for c in dict.fromkeys([*data.info["strata"], params["split"]["stratify"]])
              if c and c in data.meta.columns]
    per_image = []
    with NpzWriter(out_dir / paths.TEST_PREDICTIONS) as saved, NpzWriter(out_dir / paths.TEST_PROBABILITIES) as probs:
        for index, p in predictions(ensemble, data, test, batch, "test"):
            geometry, row = truth.geometry(index), data.meta.iloc[index]
            restored, mask = geometry.restore(p, original), truth.mask(index)
            raw = to_labels(restored)
            final = ensemble.labels(restored)
            scores = image_metrics(final, mask, classes, tolerance, spacing, names)
            raw_scores = image_metrics(raw, mask, classes, tolerance, spacing, names)
            per_image.append({"sample_id": row["sample_id"], **{c: row[c] for c in strata},
                              "lesion": bool(((mask > 0) & (mask != IGNORE)).any()),
                              "detected": lesion_count(final, min_fraction) > 0,
                              **{k: v for k, v in scores.items() if k != "empty"},
                              **{f"empty_{k}": v for k, v in scores["empty"].items()},
                              **{f"{k}_raw": v for k, v in raw_scores.items() if k not in ("empty", "tp", "fp", "fn")}})
            saved.add(row["sample_id"], final)
            probs.add(row["sample_id"], np.round(geometry.crop(foreground(p)) * 255).astype(np.uint8))
    table = pd.DataFrame(per_image)
    write_csv(out_dir / paths.PER_IMAGE, table)

    metrics = summarise(table, strata, names)
    metrics.update(run=f"{arch}__{loss}/seed{seed}", seed=seed, folds=list(folds), resolution=options["resolution"],
                   units="mm" if params["dataset"]["spacing_mm"] else "px",
                   nsd_tolerance=options["nsd_tolerance_px"], postprocessing=chosen,
                   out_of_fold_dice=float(pd.DataFrame(rows)[chosen["name"]].mean()))
    trained = [read_json(d / paths.TRAINED) for d in fold_runs.values()]
    metrics["best_epochs"] = [t["best_epoch"] for t in trained]
    write_json(out_dir / paths.METRICS, metrics)
    del models, ensemble  # latency is measured on a fresh copy, alone
    write_json(out_dir / paths.LATENCY, latency.measure(lambda dev: Predictor.from_checkpoints(
        [d / paths.CHECKPOINT for d in fold_runs.values()], chosen, map_location=dev)))
    if tracker:
        tracker.log_test_metrics([t.get("mlflow_run_id") for t in trained], metrics)
    return metrics
