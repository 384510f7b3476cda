"""The `evaluate` stage: one pair, one seed; its fold models on their val images, their ensemble on the test.

nnU-Net's protocol, in four steps, each fold checkpoint loaded once:

1. out-of-fold prediction: each fold model predicts the images it was validated on;
2. post-processing choice on those predictions, by the criterion the report leads with: the mean Dice
   over val images with a lesion; a candidate is kept only if it beats none, and only if it does not
   raise the share of normal val images with a false positive (``summary.choose_postprocessing``);
3. test scoring: the mean of the fold models' probabilities, resampled to each image's original size
   before the threshold, post-processed, scored by ``Protocol`` (overlap, boundary, lesion detection);
4. the same ensemble on the other test sets, zero-shot: the split's ``in_group`` images (with a group hold-out,
   the test images from the groups trained on) and each ``evaluate.external`` dataset's test images, one CSV
   each in ``generalisation/``;
5. writing: ``per_image.csv`` (every test image, post-processed metrics and ``*_raw`` ones),
   ``metrics.json`` (results only: the same inputs give the same bytes), ``test_predictions.npz`` /
   ``val_predictions.npz`` (label maps at the evaluation
   resolution, by sample id) and ``test_probabilities.npz`` (the foreground probability on the un-padded
   canvas, uint8 0-255, for figures).

Without cross-validation the one fold is the split's val subset.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm import tqdm

from segbench import SegbenchError, devices, paths
from segbench.data.processed import Processed
from segbench.evaluation.summary import choose_postprocessing, degenerate, summarise
from segbench.io import NpzWriter, read_json, write_csv, write_json
from segbench.labels import IGNORE, has_lesion
from segbench.metrics import image_metrics
from segbench.metrics.detection import match_lesions
from segbench.metrics.overlap import mean_overlap
from segbench.predict.postprocess import CANDIDATES, postprocess
from segbench.predict.predictor import Predictor, foreground, to_labels

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Protocol:
    """How one prediction is scored against its truth (``params.yaml: evaluate`` and the pixel spacing)."""

    original: bool            # at the image's original size, else on the un-padded canvas
    classes: int
    class_names: tuple[str, ...]
    tolerance: float          # NSD tolerance, in the units below
    spacing: float            # mm per pixel, or 1 (boundary metrics in pixels)
    units: str                # "mm" or "px"
    penalty: float | None     # HD95 / ASSD of exactly one empty mask; None: the image's diagonal
    min_fraction: float       # smallest predicted region that counts, as a share of the image
    match: str                # lesion matching: "iou" or "overlap"
    iou_threshold: float

    @classmethod
    def of(cls, params: dict, class_names: list[str]) -> Protocol:
        options, spacing = params["evaluate"], params["dataset"]["spacing_mm"]
        pixel = spacing or 1.0
        penalty = options["boundary_penalty"]
        return cls(options["resolution"] == "original", len(class_names), tuple(class_names),
                   options["nsd_tolerance_px"] * pixel, pixel, "mm" if spacing else "px",
                   None if penalty == "diagonal" else float(penalty), options["min_component_fraction"],
                   options["detection"]["match"], options["detection"]["iou_threshold"])

    def min_size(self, labels: np.ndarray) -> int:
        return max(1, int(np.ceil(self.min_fraction * labels.size)))

    def lesions(self, labels: np.ndarray, truth: np.ndarray) -> dict[str, int]:
        return match_lesions(labels > 0, (truth > 0) & (truth != IGNORE), self.match, self.iou_threshold,
                             self.min_size(labels))

    def score(self, labels: np.ndarray, truth: np.ndarray) -> dict:
        """One image's overlap, boundary and lesion-detection scores (``metrics.image_metrics``)."""
        scores = image_metrics(labels, truth, self.classes, self.tolerance, (self.spacing, self.spacing),
                               list(self.class_names), self.penalty)
        empty = scores.pop("empty")
        return {**scores, **{f"empty_{k}": v for k, v in empty.items()}, **self.lesions(labels, truth)}


def predictions(predictor: Predictor, data: Processed, indices: np.ndarray, batch_size: int, desc: str):
    """(array index, canvas probabilities (K', S, S)) of the images ``indices``, a batch at a time."""
    for start in tqdm(range(0, len(indices), batch_size), desc=desc, leave=False):
        block = indices[start:start + batch_size]
        canvases = np.stack([data.images[i] for i in block])
        yield from zip(block, predictor.canvas_probabilities(canvases))


def out_of_fold(models: dict[int, Predictor], data: Processed, protocol: Protocol, candidates: list[str],
                batch: int, saved: NpzWriter) -> pd.DataFrame:
    """Each fold model on its own val images: per image and candidate post-processing, the Dice and the
    number of predicted lesions. Saves the raw label maps."""
    rows = []
    for fold, model in models.items():
        for index, p in predictions(model, data, data.fold_indices(fold)[1], batch, f"val fold {fold}"):
            labels, truth = to_labels(data.geometry(index).restore(p, protocol.original)), data.truth(
                index, protocol.original)
            row = {"sample_id": data.meta["sample_id"].iloc[index], "fold": fold, "lesion": has_lesion(truth)}
            for name in candidates:
                processed = postprocess(labels, name, protocol.classes, protocol.min_fraction)
                row[f"dice:{name}"] = mean_overlap(processed, truth, protocol.classes)["dice"]
                row[f"lesions:{name}"] = protocol.lesions(processed, truth)["lesions_predicted"]
            rows.append(row)
            # leave-one-group-out validates an image in every fold but its group's: one map per fold
            saved.add(f"{row['sample_id']}/fold{fold}" if data.leave_one_group_out else row["sample_id"], labels)
    return pd.DataFrame(rows)


def score(ensemble: Predictor, data: Processed, protocol: Protocol, strata: list[str], batch: int,
          indices: np.ndarray, desc: str, saved: NpzWriter | None = None,
          probabilities: NpzWriter | None = None) -> pd.DataFrame:
    """The ensemble on the images ``indices``: one row per image of post-processed and raw scores; saves the
    label maps and the foreground probabilities when given writers."""
    rows = []
    for index, p in predictions(ensemble, data, indices, batch, desc):
        geometry, meta = data.geometry(index), data.meta.iloc[index]
        restored, truth = geometry.restore(p, protocol.original), data.truth(index, protocol.original)
        raw, final = to_labels(restored), ensemble.labels(restored)
        raw_scores = protocol.score(raw, truth)
        rows.append({"sample_id": meta["sample_id"], **{c: meta[c] for c in strata if c in meta},
                     "lesion": has_lesion(truth), "foreground_fraction": float((final > 0).mean()),
                     **protocol.score(final, truth),
                     **{f"{k}_raw": v for k, v in raw_scores.items() if not k.startswith(("empty_", "lesions_"))
                        and k not in ("tp", "fp", "fn", "boundary_penalised")}})
        if saved is not None:
            saved.add(meta["sample_id"], final)
            probabilities.add(meta["sample_id"], np.round(geometry.crop(foreground(p)) * 255).astype(np.uint8))
    return pd.DataFrame(rows)


def score_test(models: dict[int, Predictor], chosen: dict, data: Processed, protocol: Protocol, strata: list[str],
               batch: int, out_dir: Path) -> pd.DataFrame:
    """``score`` on the test images, saving their label maps and foreground probabilities: the fold models'
    ensemble on the split's test subset; leave-one-group-out, each fold's model on its held-out group (every
    image tested once, by the one model that never saw its group; a ``fold`` column says which)."""
    with NpzWriter(out_dir / paths.TEST_PREDICTIONS) as saved, \
            NpzWriter(out_dir / paths.TEST_PROBABILITIES) as probabilities:
        if data.leave_one_group_out:
            return pd.concat([score(Predictor.ensemble([model], chosen, str(out_dir)), data, protocol, strata, batch,
                                    data.held_out(fold), f"held-out fold {fold}", saved, probabilities)
                              .assign(fold=fold) for fold, model in models.items()], ignore_index=True)
        test = data.indices("test")
        if not len(test):
            raise SegbenchError("the split's test subset is empty")
        ensemble = Predictor.ensemble(list(models.values()), chosen, str(out_dir))
        return score(ensemble, data, protocol, strata, batch, test, "test", saved, probabilities)


def external_data(key: str, own: Processed) -> Processed:
    """Dataset ``key``'s processed images and split, checked to be scored by a model trained on ``own``.

    Label mapping: two binary datasets share their foreground, whatever its name; otherwise the class names must
    be the same, in the same order.

    Raises:
        SegbenchError: another canvas size or channel count, or classes that cannot be mapped, naming both.
    """
    data = Processed.load(paths.processed_dir(key), paths.split_csv(key))
    if data.images.shape[1:] != own.images.shape[1:]:
        raise SegbenchError(f"evaluate.external: {key}'s images are {list(data.images.shape[1:])} after "
                            f"preprocessing, the models' {list(own.images.shape[1:])}; give both the same "
                            "preprocess.size and channels")
    binary = len(data.class_names) == len(own.class_names) == 2
    if not binary and list(data.class_names) != list(own.class_names):
        raise SegbenchError(f"evaluate.external: {key}'s classes {list(data.class_names)} cannot be mapped to the "
                            f"models' {list(own.class_names)}: segbench maps two binary datasets' foregrounds, or "
                            "classes of the same names in the same order")
    return data


def in_group_scores(models: dict[int, Predictor], chosen: dict, data: Processed, protocol: Protocol,
                    strata: list[str], batch: int, out_dir: Path) -> pd.DataFrame:
    """The in-group test images: by the fold ensemble (a group hold-out); leave-one-group-out, each image by the
    ensemble of the folds that trained on its group (all but its own)."""
    if not data.leave_one_group_out:
        ensemble = Predictor.ensemble(list(models.values()), chosen, str(out_dir))
        return score(ensemble, data, protocol, strata, batch, data.in_group(), paths.IN_GROUP)
    groups = data.meta["fold"].to_numpy()
    return pd.concat([score(Predictor.ensemble([m for f, m in models.items() if f != group], chosen, str(out_dir)),
                            data, protocol, strata, batch, indices, f"{paths.IN_GROUP} ({group})")
                      for group in sorted(set(groups)) if len(indices := np.intersect1d(
                          data.in_group(), np.flatnonzero(groups == group)))], ignore_index=True)


def generalisation(models: dict[int, Predictor], chosen: dict, data: Processed, params: dict, protocol: Protocol,
                   strata: list[str], batch: int, out_dir: Path) -> None:
    """Zero-shot scores on the other test sets, into ``out_dir/generalisation/``: ``in_group.csv`` (the in-group
    test images of a group hold-out or of leave-one-group-out) and ``<dataset>.csv`` per ``evaluate.external``
    dataset but this one (by the fold ensemble); ``sets.json`` lists them (the folder is never empty: DVC and git
    keep no empty folder)."""
    folder = out_dir / paths.GENERALISATION
    folder.mkdir(parents=True, exist_ok=True)
    for stale in folder.iterdir():
        stale.unlink()
    scored = {}
    if len(data.in_group()):
        scored[paths.IN_GROUP] = in_group_scores(models, chosen, data, protocol, strata, batch, out_dir)
    ensemble = Predictor.ensemble(list(models.values()), chosen, str(out_dir))
    for key in params["evaluate"]["external"]:
        if key != params["dataset"]["key"]:
            other = external_data(key, data)
            scored[key] = score(ensemble, other, protocol, strata, batch, other.indices("test"), key)
    for name, table in scored.items():
        write_csv(folder / f"{name}.csv", table)
    write_json(folder / "sets.json", {name: len(table) for name, table in scored.items()})


def evaluate_replicate(arch: str, loss: str, seed: int, params: dict, where: paths.Sweep, processed_dir: Path,
                       split_csv: Path, tracker=None) -> dict:
    """Evaluate the pair's models of ``seed`` (their folders under ``where``); write the seed folder's outputs;
    return metrics.json. ``params``: one dataset's (``config.dataset_params``)."""
    options, folds, batch = params["evaluate"], params["sweep"]["folds"], params["train"]["batch_size"]
    out_dir = where.seed(arch, loss, seed)
    data = Processed.load(processed_dir, split_csv)
    if data.leave_one_group_out and sorted(folds) != sorted(set(data.meta["fold"])):
        raise SegbenchError(f"sweep.folds: {list(folds)}; leave-one-group-out (split.folds: "
                            f"{params['split']['folds']}) has folds {sorted(set(data.meta['fold']))}: list every one, "
                            "so that every group is tested once")
    protocol = Protocol.of(params, data.class_names)
    fold_runs = {f: where.fold(arch, loss, seed, f) for f in folds}
    with devices.device() as dev:  # the GPU the job leased (or was given), else the CPU
        models = {f: Predictor.from_folds([d], source=str(d), map_location=dev) for f, d in fold_runs.items()}
        trained = [read_json(d / paths.TRAINED) for d in fold_runs.values()]

        candidates = [c for c in CANDIDATES if c in options["postprocessing"] or c == "none"]
        with NpzWriter(out_dir / paths.VAL_PREDICTIONS) as saved:
            val = out_of_fold(models, data, protocol, candidates, batch, saved)
        chosen = choose_postprocessing(val, candidates, protocol.min_fraction)
        log.info("%s__%s seed %d: post-processing %r (val lesion Dice %s)", arch, loss, seed, chosen["name"],
                 chosen["val_lesion_dice"])

        strata = [c for c in dict.fromkeys([*data.info["strata"], params["split"]["stratify"]])
                  if c and c in data.meta.columns]
        table = score_test(models, chosen, data, protocol, strata, batch, out_dir)
        generalisation(models, chosen, data, params, protocol, strata, batch, out_dir)
        write_csv(out_dir / paths.PER_IMAGE, table)

    leaked = set(read_json(paths.split_leakage_json(params["dataset"]["key"]))["leaked_test_images"])
    metrics = summarise(table, strata, data.class_names, leaked)
    metrics.update(run=f"{arch}__{loss}/seed{seed}", seed=seed, folds=list(folds), resolution=options["resolution"],
                   units=protocol.units, nsd_tolerance=options["nsd_tolerance_px"],
                   boundary_penalty=options["boundary_penalty"], detection=metrics["detection"] | options["detection"],
                   postprocessing=chosen, best_epochs=[t["best_epoch"] for t in trained],
                   degenerate=degenerate(table, trained))
    write_json(out_dir / paths.METRICS, metrics)
    if tracker:
        tracker.log_test_metrics([t.get("mlflow_run_id") for t in trained], metrics)
    return metrics
