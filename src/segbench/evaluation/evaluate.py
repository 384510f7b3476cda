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
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from tqdm import tqdm

from segbench import SegbenchError, devices, paths
from segbench.data.processed import Processed
from segbench.evaluation.summary import choose_postprocessing, degenerate, summarise
from segbench.io import NpzWriter, read_json, write_csv, write_json
from segbench.labels import IGNORE, has_lesion
from segbench.metrics.detection import match_lesions
from segbench.metrics.image import image_metrics
from segbench.metrics.overlap import mean_overlap
from segbench.predict.postprocess import CANDIDATES, postprocess
from segbench.predict.predictor import Predictor, foreground, label_map, to_labels

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


@dataclass
class Scored:
    """One set of images a model predicts: ``name`` (the progress bar's and the CSV's), its ``data`` and array
    ``indices``, the ``predictor`` whose forward passes give its canvas probabilities, and those probabilities
    ((len(indices), K', S, S) float32, in a file) once computed; ``fold``: the fold a leave-one-group-out set
    belongs to."""

    name: str
    data: Processed
    indices: np.ndarray
    predictor: Predictor
    fold: int | None = None
    probabilities: np.ndarray | None = None

    def forward(self, batch: int, folder: Path) -> None:
        """The predictor's canvas probabilities of every image, a batch at a time, into a file of ``folder``."""
        for start in tqdm(range(0, len(self.indices), batch), desc=self.name, leave=False):
            block = self.indices[start:start + batch]
            p = self.predictor.canvas_probabilities(np.stack([self.data.images[i] for i in block]))
            if self.probabilities is None:
                self.probabilities = np.lib.format.open_memmap(
                    folder / f"{len(list(folder.iterdir()))}.npy", "w+", np.float32, (len(self.indices), *p.shape[1:]))
            self.probabilities[start:start + len(block)] = p

    def each(self):
        """(array index, canvas probabilities (K', S, S)) of every image."""
        return zip(self.indices, self.probabilities)


def out_of_fold(sets: list[Scored], protocol: Protocol, candidates: list[str], saved: NpzWriter) -> pd.DataFrame:
    """Each fold model on its own val images (``sets``, one per fold): per image and candidate post-processing,
    the Dice and the number of predicted lesions. Saves the raw label maps."""
    rows = []
    for scored in sets:
        data = scored.data
        for index, p in scored.each():
            labels, truth = to_labels(data.geometry(index).restore(p, protocol.original)), data.truth(
                index, protocol.original)
            row = {"sample_id": data.meta["sample_id"].iloc[index], "fold": scored.fold, "lesion": has_lesion(truth)}
            for name in candidates:
                processed = postprocess(labels, name, protocol.classes, protocol.min_fraction)
                row[f"dice:{name}"] = mean_overlap(processed, truth, protocol.classes)["dice"]
                row[f"lesions:{name}"] = protocol.lesions(processed, truth)["lesions_predicted"]
            rows.append(row)
            # leave-one-group-out validates an image in every fold but its group's: one map per fold
            saved.add(f"{row['sample_id']}/fold{scored.fold}" if data.leave_one_group_out else row["sample_id"],
                      labels)
    return pd.DataFrame(rows)


def score(scored: Scored, chosen: dict, protocol: Protocol, strata: list[str], saved: NpzWriter | None = None,
          probabilities: NpzWriter | None = None) -> pd.DataFrame:
    """The set's predictions, post-processed as ``chosen``: one row per image of post-processed and raw scores
    (with a ``fold`` column for a leave-one-group-out set); saves the label maps and the foreground probabilities
    when given writers."""
    rows, data = [], scored.data
    for index, p in scored.each():
        geometry, meta = data.geometry(index), data.meta.iloc[index]
        restored, truth = geometry.restore(p, protocol.original), data.truth(index, protocol.original)
        raw, final = to_labels(restored), label_map(restored, chosen, protocol.classes)
        raw_scores = protocol.score(raw, truth)
        rows.append({"sample_id": meta["sample_id"], **{c: meta[c] for c in strata if c in meta},
                     "lesion": has_lesion(truth), "foreground_fraction": float((final > 0).mean()),
                     **protocol.score(final, truth),
                     **{f"{k}_raw": v for k, v in raw_scores.items() if not k.startswith(("empty_", "lesions_"))
                        and k not in ("tp", "fp", "fn", "boundary_penalised")}})
        if saved is not None:
            saved.add(meta["sample_id"], final)
            probabilities.add(meta["sample_id"], np.round(geometry.crop(foreground(p)) * 255).astype(np.uint8))
    table = pd.DataFrame(rows)
    return table.assign(fold=scored.fold) if scored.fold is not None else table


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


def plan(models: dict[int, Predictor], data: Processed, params: dict) -> dict[str, list[Scored]]:
    """Every set the pair's models predict, by kind, in the order they are scored:

    - ``val``: each fold model on its own val images (out-of-fold);
    - ``test``: the fold models' ensemble on the split's test subset; leave-one-group-out, each fold's model on
      its held-out group (every image tested once, by the one model that never saw its group);
    - ``in_group``: the in-group test images (a group hold-out) by the ensemble; leave-one-group-out, each group's
      by the ensemble of the folds that trained on it (all but its own);
    - ``external``: each ``evaluate.external`` dataset's test images but this one's, by the ensemble.

    Raises:
        SegbenchError: an empty test subset, or an external dataset the models cannot read.
    """
    ensemble = Predictor.ensemble(list(models.values()), {"name": "none"})
    sets: dict[str, list[Scored]] = {"val": [Scored(f"val fold {f}", data, data.fold_indices(f)[1], m, f)
                                             for f, m in models.items()]}
    if data.leave_one_group_out:
        sets["test"] = [Scored(f"held-out fold {f}", data, data.held_out(f), m, f) for f, m in models.items()]
        groups = data.meta["fold"].to_numpy()
        sets["in_group"] = [Scored(f"{paths.IN_GROUP} ({g})", data, indices, Predictor.ensemble(
            [m for f, m in models.items() if f != g], {"name": "none"})) for g in sorted(set(groups))
            if len(indices := np.intersect1d(data.in_group(), np.flatnonzero(groups == g)))]
    else:
        if not len(data.indices("test")):
            raise SegbenchError("the split's test subset is empty")
        sets["test"] = [Scored("test", data, data.indices("test"), ensemble)]
        sets["in_group"] = [Scored(paths.IN_GROUP, data, data.in_group(), ensemble)] if len(data.in_group()) else []
    sets["external"] = [Scored(key, other, other.indices("test"), ensemble) for key in params["evaluate"]["external"]
                        if key != params["dataset"]["key"] for other in [external_data(key, data)]]
    return sets


def write_generalisation(tables: dict[str, pd.DataFrame], out_dir: Path) -> None:
    """Zero-shot scores on the other test sets, into ``out_dir/generalisation/``: ``in_group.csv`` and
    ``<dataset>.csv`` per external dataset; ``sets.json`` lists them (the folder is never empty: DVC and git keep
    no empty folder)."""
    folder = out_dir / paths.GENERALISATION
    folder.mkdir(parents=True, exist_ok=True)
    for stale in folder.iterdir():
        stale.unlink()
    for name, table in tables.items():
        write_csv(folder / f"{name}.csv", table)
    write_json(folder / "sets.json", {name: len(table) for name, table in tables.items()})


def evaluate_replicate(arch: str, loss: str, seed: int, params: dict, where: paths.Sweep, processed_dir: Path,
                       split_csv: Path, tracker=None, device: str | None = None) -> dict:
    """Evaluate the pair's models of ``seed`` (their folders under ``where``); write the seed folder's outputs;
    return metrics.json. ``params``: one dataset's (``config.dataset_params``); ``device``: as
    ``segbench.devices.device`` takes it (default train.device).

    Two phases: the forward passes of every set (``plan``), on the device, a GPU leased for them alone; then,
    with the device free for other jobs, the scoring on the CPU. The log says how long the device was held.
    """
    options, folds, batch = params["evaluate"], params["sweep"]["folds"], params["train"]["batch_size"]
    out_dir = where.seed(arch, loss, seed)
    data = Processed.load(processed_dir, split_csv)
    if data.leave_one_group_out and sorted(folds) != sorted(set(data.meta["fold"])):
        raise SegbenchError(f"sweep.folds: {list(folds)}; leave-one-group-out (split.folds: "
                            f"{params['split']['folds']}) has folds {sorted(set(data.meta['fold']))}: list every one, "
                            "so that every group is tested once")
    protocol = Protocol.of(params, data.class_names)
    fold_runs = {f: where.fold(arch, loss, seed, f) for f in folds}
    for folder in fold_runs.values():
        if not (folder / paths.TRAINED).is_file():
            raise SegbenchError(f"{folder / paths.TRAINED}: missing; train this run first")
    trained = [read_json(d / paths.TRAINED) for d in fold_runs.values()]
    started = time.monotonic()
    out_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out_dir, prefix=".forward-") as folder:
        with devices.device(device or params["train"]["device"]) as dev:
            held = time.monotonic()
            models = {f: Predictor.from_folds([d], source=str(d), map_location=dev) for f, d in fold_runs.items()}
            sets = plan(models, data, params)
            for scored in (s for kind in sets.values() for s in kind):
                scored.forward(batch, Path(folder))
            for scored in (s for kind in sets.values() for s in kind):
                scored.predictor = None  # the models leave the device with the lease
            del models
            if dev.type == "cuda":
                torch.cuda.empty_cache()
            held = time.monotonic() - held
        candidates = [c for c in CANDIDATES if c in options["postprocessing"] or c == "none"]
        with NpzWriter(out_dir / paths.VAL_PREDICTIONS) as saved:
            val = out_of_fold(sets["val"], protocol, candidates, saved)
        chosen = choose_postprocessing(val, candidates, protocol.min_fraction)
        log.info("%s__%s seed %d: post-processing %r (val lesion Dice %s)", arch, loss, seed, chosen["name"],
                 chosen["val_lesion_dice"])
        strata = [c for c in dict.fromkeys([*data.info["strata"], params["split"]["stratify"]])
                  if c and c in data.meta.columns]
        with NpzWriter(out_dir / paths.TEST_PREDICTIONS) as saved, \
                NpzWriter(out_dir / paths.TEST_PROBABILITIES) as probabilities:
            table = pd.concat([score(s, chosen, protocol, strata, saved, probabilities) for s in sets["test"]],
                              ignore_index=True)
        others = {s.name: score(s, chosen, protocol, strata) for s in sets["external"]}
        if sets["in_group"]:
            others = {paths.IN_GROUP: pd.concat([score(s, chosen, protocol, strata) for s in sets["in_group"]],
                                                ignore_index=True), **others}
        write_generalisation(others, out_dir)
        write_csv(out_dir / paths.PER_IMAGE, table)
    total = time.monotonic() - started
    log.info("%s__%s seed %d: %s held %.1f s of the job's %.1f s (%.0f %%: the forward passes only)", arch, loss,
             seed, dev if dev.type == "cuda" else "the CPU (no GPU lease)", held, total, 100 * held / total)

    leaked = set(read_json(paths.split_leakage_json(params["dataset"]["key"]))["leaked_test_images"])
    metrics = summarise(table, strata, data.class_names, leaked)
    metrics.update(run=str(paths.RunId(arch, loss, seed)), seed=seed, folds=list(folds),
                   resolution=options["resolution"],
                   units=protocol.units, nsd_tolerance=options["nsd_tolerance_px"],
                   boundary_penalty=options["boundary_penalty"], detection=metrics["detection"] | options["detection"],
                   postprocessing=chosen, best_epochs=[t["best_epoch"] for t in trained],
                   degenerate=degenerate(table, trained))
    write_json(out_dir / paths.METRICS, metrics)
    if tracker:
        tracker.log_test_metrics([t.get("mlflow_run_id") for t in trained], metrics)
    return metrics
