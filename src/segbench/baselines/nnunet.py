"""nnU-Net v2 as a sweep member (Isensee et al., Nature Methods 2021; "nnU-Net Revisited", MICCAI 2024): its own
planning, preprocessing, network, loss and training, unmodified, on segbench's split, scored by segbench.

Two entries of the baseline registry: ``nnunet`` (nnU-Net's default plans) and ``nnunet_resenc_m`` (its
residual-encoder M preset, ``nnUNetPlannerResEncM``), each with three stages per dataset
(``sweep.baselines: [nnunet, nnunet_resenc_m]``):

1. ``baseline_prepare``: segbench's processed canvases (the images every pair trains on) exported to nnU-Net's raw
   2D format (PNG, NaturalImage2DIO), the train and val images as its training cases, then nnU-Net's fingerprint,
   ``2d`` plan and preprocessing, and ``splits_final.json`` holding segbench's folds, so nnU-Net trains and
   validates on exactly segbench's subsets. The test images never reach nnU-Net's folders.
2. ``baseline_train`` per fold: nnU-Net's trainer for ``nnunet.epochs`` x ``nnunet.iterations_per_epoch`` (its
   default: 1000 x 250), on the job's device; also writes segbench's train.json and history.csv.
3. ``baseline_evaluate``: segbench's own evaluation (``evaluate.evaluate_replicate``) of the fold models, each
   wrapped as a segbench predictor (``NnunetMember``): the same out-of-fold post-processing choice, resolution,
   metrics and detection as every pair. nnU-Net's own post-processing (``determine_postprocessing`` on its fold
   validations) is recorded beside it.

nnU-Net reads its folders from environment variables when it is imported, so these stages run in their own
process (as Snakemake and DVC run every stage).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import time
from pathlib import Path
from unittest import mock

import numpy as np
import pandas as pd
import torch
from PIL import Image

from segbench import SegbenchError, paths
from segbench.baselines import folds
from segbench.data.processed import Processed
from segbench.io import write_csv, write_json
from segbench.labels import IGNORE
from segbench.provenance import git_commit
from segbench.records import TrainRecord

log = logging.getLogger(__name__)

LOSS = paths.BASELINE_LOSS      # its row: <entry>__default (nnU-Net's network, loss and recipe)
DATASET_ID = 501                # nnU-Net's dataset number inside segbench's folders (its own, one per folder)
CONFIGURATION = "2d"
PRESETS = {"ExperimentPlanner": ("nnUNetPlans", "nnU-Net"),  # planner -> (its plans, the row's name)
           "nnUNetPlannerResEncM": ("nnUNetResEncUNetMPlans", "nnU-Net ResEnc M")}
MODEL = "nnunet"                # a fold folder's nnU-Net results folder (nnUNet_results)
DEFAULT_EPOCHS, DEFAULT_ITERATIONS = 1000, 250  # nnU-Net's own schedule
LATEST = "checkpoint_latest.pth"  # nnU-Net's checkpoint of its last finished epoch
TRAINERS = str(Path(__file__).resolve().parent / "nnunet_trainers")  # segbench's nnU-Net trainer classes


def label(options: dict, planner: str = "ExperimentPlanner") -> str:
    """The row's name wherever the report shows it: nnU-Net (and its preset), its configuration and its schedule
    as a share of nnU-Net's own (1000 epochs of 250 iterations)."""
    epochs, iterations = options["epochs"], options["iterations_per_epoch"]
    share = epochs * iterations / (DEFAULT_EPOCHS * DEFAULT_ITERATIONS)
    return (f"{PRESETS[planner][1]} {CONFIGURATION}, {epochs} × {iterations} it. "
            f"({'its default schedule' if share == 1 else f'{100 * share:.2g} % of default'})")


def setup(options: dict, planner: str = "ExperimentPlanner") -> str:
    """The report's words for the row: what runs, how long, and where it differs from the pairs."""
    mirroring = "with test-time mirroring" if options["tta"] else "without test-time mirroring, as the pairs"
    return (f"nnU-Net v2 unmodified (its {PRESETS[planner][0]} {CONFIGURATION} plan, network, loss, augmentation and "
            f"predictor) on segbench's split, {options['epochs']} epochs of {options['iterations_per_epoch']} "
            f"iterations (nnU-Net's default: {DEFAULT_EPOCHS} of {DEFAULT_ITERATIONS}; the table's budget column "
            "sets its steps and time beside the pairs'); scored by segbench's evaluation like every pair, with "
            "segbench's post-processing choice. Unlike the pairs, it predicts with its final checkpoint (the pairs: "
            f"their best val epoch's) and nnU-Net's own predictor (sliding window, {mirroring}), and its history's "
            "val Dice is nnU-Net's pseudo-Dice of its val patches.")


def dataset_name(key: str) -> str:
    return f"Dataset{DATASET_ID}_{''.join(c for c in key.title() if c.isalnum()) or 'Segbench'}"


@contextlib.contextmanager
def folders(raw: Path | None = None, preprocessed: Path | None = None, results: Path | None = None,
            augmentation_workers: int | None = None):
    """nnU-Net's three folders as its environment variables, set before nnunetv2 is first imported and restored
    after; ``augmentation_workers``: nnU-Net's own knob (``nnUNet_n_proc_DA``), 0 for augmentation in the training
    process."""
    import sys

    if any(name.startswith("nnunetv2.paths") for name in sys.modules):
        raise SegbenchError("nnU-Net was imported before its folders were set: run each nnunet stage in its own "
                            "process (segbench baseline_prepare / baseline_train / baseline_evaluate)")
    values = {key: str((value or Path(os.devnull)).resolve()) for key, value in
              {"nnUNet_raw": raw, "nnUNet_preprocessed": preprocessed, "nnUNet_results": results}.items()}
    values["nnUNet_extTrainer"] = TRAINERS
    if augmentation_workers is not None:
        values["nnUNet_n_proc_DA"] = str(augmentation_workers)
    with mock.patch.dict(os.environ, values):  # restores the environment as it found it
        yield


def check(data: Processed, folds: list[int]) -> None:
    """What nnU-Net cannot take, before anything trains.

    Raises:
        SegbenchError: too few cases in a fold, or a fold without val cases, naming the fold.
    """
    for fold in folds:
        train, val = data.fold_indices(fold)
        if len(train) < 2 or not len(val):
            raise SegbenchError(f"nnU-Net baseline: fold {fold} has {len(train)} training and {len(val)} validation "
                                "cases; nnU-Net's planner and trainer need at least 2 and 1")


def export(data: Processed, folds: list[int], raw_root: Path, key: str) -> Path:
    """Write nnU-Net's raw dataset from segbench's processed canvases (train and val images as training cases),
    with ``dataset.json``; returns its folder. Labels as segbench's class ids; an ignore label, if any, last."""
    check(data, folds)
    root = raw_root / dataset_name(key)
    (root / "imagesTr").mkdir(parents=True, exist_ok=True)
    (root / "labelsTr").mkdir(exist_ok=True)
    cases = np.concatenate([data.indices("train"), data.indices("val")])
    ignore = any((data.masks[i] == IGNORE).any() for i in cases)
    classes = len(data.class_names)
    for index in cases:
        sid = str(data.meta["sample_id"].iloc[index])
        Image.fromarray(data.images[index]).save(root / "imagesTr" / f"{sid}_0000.png")
        mask = data.masks[index].copy()
        mask[mask == IGNORE] = classes
        Image.fromarray(mask).save(root / "labelsTr" / f"{sid}.png")
    labels = {name: value for value, name in enumerate(data.class_names)} | ({"ignore": classes} if ignore else {})
    channels = {"0": "L"} if data.channels == 1 else {"0": "R", "1": "G", "2": "B"}
    write_json(root / "dataset.json", {"channel_names": channels, "labels": labels, "numTraining": len(cases),
                                       "file_ending": ".png", "overwrite_image_reader_writer": "NaturalImage2DIO"})
    return root


def splits(data: Processed) -> list[dict[str, list[str]]]:
    """nnU-Net's splits_final.json: every fold of segbench's split at its own index (nnU-Net reads entry number
    ``fold``, and makes a random 80:20 split of its own for a fold past the end), whichever folds the sweep trains.

    Raises:
        SegbenchError: the split's folds are not 0 ... k-1.
    """
    numbers = sorted(set(data.meta["fold"].tolist()) - {-1}) if "fold" in data.meta else [0]
    if numbers != list(range(len(numbers))):
        raise SegbenchError(f"the split's folds are {numbers}; nnU-Net needs them numbered 0 to {len(numbers) - 1}")
    return [folds.cases(data, fold) for fold in numbers]


def planned_cases(prepared: Path, key: str, fold: int) -> dict[str, list[str]] | None:
    """The cases nnU-Net will train fold ``fold`` on, from its splits_final.json (None: it has no entry ``fold`` and
    would make a random split of its own)."""
    written = json.loads((prepared / "nnUNet_preprocessed" / dataset_name(key) / "splits_final.json").read_text())
    return written[fold] if fold < len(written) else None


def check_split(trainer, expected: dict[str, list[str]]) -> None:
    """Before training: the split nnU-Net's ``trainer`` will use (its own ``do_split``) is ``expected``, segbench's.

    Raises:
        SegbenchError: they differ (``folds.check``).
    """
    train, val = trainer.do_split()
    folds.check({"train": train, "val": val}, expected, trainer.fold, "nnU-Net's trainer")


def prepare(data: Processed, folds: list[int], key: str, out: Path, processes: int = 1,
            planner: str = "ExperimentPlanner") -> None:
    """Stage 1, into ``out`` (``nnUNet_raw`` and ``nnUNet_preprocessed``): export, plan (with ``planner``, a key
    of ``PRESETS``), preprocess, split."""
    raw, preprocessed = out / "nnUNet_raw", out / "nnUNet_preprocessed"
    with folders(raw, preprocessed):
        export(data, folds, raw, key)
        from nnunetv2.experiment_planning.plan_and_preprocess_api import (
            extract_fingerprints,
            plan_experiments,
            preprocess,
        )

        extract_fingerprints([DATASET_ID], num_processes=processes, check_dataset_integrity=True,
                             show_progress_bar=False)
        plan_experiments([DATASET_ID], planner)
        preprocess([DATASET_ID], PRESETS[planner][0], (CONFIGURATION,), (processes,), show_progress_bar=False)
    write_json(preprocessed / dataset_name(key) / "splits_final.json", splits(data))


def build_trainer(base: Path, fold: int, options: dict, device: torch.device, resume: Path | None = None,
                  planner: str = "ExperimentPlanner", resuming: bool = False):
    """nnU-Net's trainer of one fold (``nnUNetTrainer_segbench``), from its preprocessed dataset folder ``base``
    (inside ``folders``), with the training length from params (nnU-Net's own default: 1000 epochs of 250
    iterations) and its latest checkpoint copied to ``resume``."""
    from batchgenerators.utilities.file_and_folder_operations import load_json

    from segbench.baselines.nnunet_trainers.segbench_trainer import nnUNetTrainer_segbench

    plans = load_json(str(base / f"{PRESETS[planner][0]}.json"))
    plans["continue_training"] = resuming  # as nnU-Net's run_training passes it: its log goes on, or starts anew
    trainer = nnUNetTrainer_segbench(plans=plans, configuration=CONFIGURATION, fold=fold,
                                     dataset_json=load_json(str(base / "dataset.json")), device=device)
    trainer.num_epochs, trainer.num_iterations_per_epoch = options["epochs"], options["iterations_per_epoch"]
    trainer.num_val_iterations_per_epoch = options["val_iterations_per_epoch"]
    trainer.resume_dir = str(resume) if resume else None
    return trainer


def resume_dir(fold_dir: Path) -> Path:
    """Where a fold's latest nnU-Net checkpoint waits for a rerun: beside the seed's folds, not in the fold folder
    (a job's declared output, removed before it runs again)."""
    return fold_dir.parents[1] / "resume" / fold_dir.name


def train(name: str, prepared: Path, key: str, fold: int, options: dict, fold_dir: Path, device: torch.device,
          size: int, expected: dict[str, list[str]], tracker=None, planner: str = "ExperimentPlanner") -> dict:
    """Stage 2: one fold, after checking that nnU-Net's split for it is ``expected`` (segbench's);
    writes nnU-Net's model folder and segbench's train.json, history.csv, timing.csv."""
    with folders(prepared / "nnUNet_raw", prepared / "nnUNet_preprocessed", fold_dir / MODEL,
                 augmentation_workers=options["augmentation_workers"]):
        base = prepared / "nnUNet_preprocessed" / dataset_name(key)
        resume = resume_dir(fold_dir)
        trainer = build_trainer(base, fold, options, device, resume, planner, (resume / LATEST).exists())
        plans, dataset_json = trainer.plans_manager.plans, trainer.dataset_json
        check_split(trainer, expected)
        if (resume / LATEST).exists():  # a killed run of this fold: go on from its last epoch
            trainer.load_checkpoint(str(resume / LATEST))
            log.info("nnU-Net fold %d: resuming after epoch %d (%s)", fold, trainer.current_epoch, resume / LATEST)
        run_id = tracker.start_training(name, LOSS, 0, fold, {"baseline": name, "nnunet": options, "planner": planner,
                                                              "configuration": CONFIGURATION}, {}) if tracker else None
        started, before = time.time(), _trained_seconds(trainer.logger.get_checkpoint())
        trainer.run_training()
        seconds = before + time.time() - started
        trainer.perform_actual_validation(False)  # its own validation of this fold, and from it
        from nnunetv2.postprocessing.remove_connected_components import determine_postprocessing

        validation = Path(trainer.output_folder) / "validation"
        determine_postprocessing(str(validation), str(base / "gt_segmentations"), plans,  # its own post-processing
                                 dataset_json, num_processes=1, keep_postprocessed_files=False)
        own = json.loads((validation / "postprocessing.json").read_text())
        logged = trainer.logger.get_checkpoint()  # nnU-Net's per-epoch log: losses, fg Dice, lr, timestamps
        n_params = sum(p.numel() for p in trainer.network.parameters())
        batch_size = int(trainer.configuration_manager.batch_size)
    epochs = len(logged["train_losses"])
    history = pd.DataFrame({"epoch": np.arange(1, epochs + 1), "train_loss": logged["train_losses"],
                            "val_loss": logged["val_losses"], "val_dice": logged["mean_fg_dice"], "lr": logged["lrs"]})
    write_csv(fold_dir / paths.HISTORY, history)
    seconds_per_epoch = np.subtract(logged["epoch_end_timestamps"], logged["epoch_start_timestamps"])[:epochs]
    write_csv(fold_dir / paths.TIMING, pd.DataFrame({"epoch": history["epoch"], "seconds": seconds_per_epoch,
                                                     "train_seconds": seconds_per_epoch, "val_seconds": 0.0,
                                                     "peak_memory_mb": np.nan}))
    summary = TrainRecord(
        name, LOSS, 0, fold, epochs, epochs, float(history["val_dice"].iloc[-1]), round(seconds, 1), str(device),
        size, len(dataset_json["channel_names"]), int(n_params),
        val_dice="nnU-Net's pseudo-Dice: the foreground Dice of its val patches, pooled, each epoch",
        mlflow_run_id=run_id, git_commit=git_commit(), baseline=name,
        iterations_per_epoch=options["iterations_per_epoch"], batch_size=batch_size,
        baseline_settings={**options, "label": label(options, planner), "setup": setup(options, planner),
                           "configuration": CONFIGURATION,
                           "planner": planner, "plans": PRESETS[planner][0],
                           "labels": dataset_json["labels"],
                           "own_postprocessing": own.get("postprocessing_fns", []),
                           "own_validation_dice": json.loads((validation / "summary.json").read_text())
                           ["foreground_mean"]["Dice"]}).write(fold_dir / paths.TRAINED)
    if tracker:
        tracker.log_history(run_id, history.to_dict("records"))
        tracker.end(run_id)
    shutil.rmtree(resume, ignore_errors=True)
    with contextlib.suppress(OSError):
        resume.parent.rmdir()  # the seed's resume folder, once no fold waits in it
    return summary


def _trained_seconds(logged: dict) -> float:
    """The training time of the epochs nnU-Net's log holds (those of a killed run, when resuming)."""
    ends = logged["epoch_end_timestamps"]
    return float(np.sum(np.subtract(ends, logged["epoch_start_timestamps"][:len(ends)])))


class NnunetMember:
    """One trained nnU-Net fold as a segbench predictor member: canvases in, probabilities out.

    nnU-Net's own predictor (sliding window, its normalisation, test-time mirroring unless ``tta: false``) on each
    canvas; its softmax
    gives the layout segbench's models give: the foreground's probability (1, S, S) for two classes, else all K.
    """

    def __init__(self, fold_dir: Path, device: torch.device | str = "cpu"):
        trained = json.loads((fold_dir / paths.TRAINED).read_text())
        settings = trained["baseline_settings"]
        folder = next((fold_dir / MODEL).glob(f"*/*__{settings.get('plans', 'nnUNetPlans')}__{CONFIGURATION}"), None)
        if folder is None:
            raise SegbenchError(f"{fold_dir}: no trained nnU-Net model here; "
                                f"run `segbench baseline_train --baseline {trained['baseline']}` first")
        from nnunetv2.inference.predict_from_raw_data import nnUNetPredictor

        known = os.environ.get("nnUNet_extTrainer", "").split(os.pathsep)
        if TRAINERS not in known:  # where nnU-Net finds the checkpoint's trainer class, to rebuild its network
            os.environ["nnUNet_extTrainer"] = os.pathsep.join(filter(None, [TRAINERS, *known]))
        self.predictor = nnUNetPredictor(device=torch.device(device), verbose=False, allow_tqdm=False,
                                         use_mirroring=settings.get("tta", True))
        self.predictor.initialize_from_trained_model_folder(str(folder), (trained["fold"],), "checkpoint_final.pth")
        self.classes = len(class_names(trained))
        self.net = self.predictor.network  # moved by Predictor.to, as segbench's members are

    def probabilities(self, canvases: np.ndarray) -> torch.Tensor:
        """(N, S, S[, C]) uint8 -> (N, K', S, S) float32."""
        out = []
        for canvas in canvases:
            image = canvas[None, None] if canvas.ndim == 2 else np.moveaxis(canvas, -1, 0)[:, None]
            _, p = self.predictor.predict_single_npy_array(image.astype(np.float32), {"spacing": [999, 1, 1]},
                                                           None, None, True)
            p = torch.from_numpy(np.asarray(p, np.float32))[:, 0]  # (K, S, S)
            out.append(p[1:2] if self.classes == 2 else p)
        return torch.stack(out)


def member(fold_dir: Path, device: torch.device | str = "cpu") -> NnunetMember:
    return NnunetMember(fold_dir, device)


def class_names(trained: dict) -> list[str]:
    """The classes a fold's train.json records, background first (nnU-Net's ignore label left out)."""
    labels = trained["baseline_settings"]["labels"]
    return [n for n, _ in sorted(labels.items(), key=lambda item: item[1]) if n != "ignore"]

