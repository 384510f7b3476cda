"""The `train` stage: one architecture x loss pair, one seed, one fold; the same recipe for every pair.

The thesis's recipe (section 3.4.4): Adam, L2 weight decay, ReduceLROnPlateau and early
stopping on validation Dice, train-set mean/std normalisation, flip / rotate / zoom /
brightness augmentation; the checkpoint kept is the best on validation Dice, scored as the
test will be (``validation.py``).

The loop (``fit``) trains, validates, steps the schedule and keeps the best epoch; its callbacks
(``callbacks.py``) write the checkpoints and history, mirror to MLflow, stop early and turn SIGTERM into a
clean stop. Outputs, in the fold folder: ``model_best.pt``, ``model_last.pt``, ``history.csv`` (one row per
epoch: losses, val Dice, learning rate), ``timing.csv`` (each epoch's seconds and peak memory) and
``train.json``. ``resume.pt`` (removed at the end) lets a killed job continue where it stopped and finish with
the same result as an uninterrupted run on CPU. It is written at the end of an epoch once
``train.resume_every_minutes`` have passed since the last one: copying the model and optimiser state costs
8-12 % of a short epoch of smp's U-Net on two CPU cores (``benchmarks/train_throughput.py``), so writing it
every epoch would tax small datasets most.
Checkpoints hold tensors and plain values only: they load with ``weights_only=True``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import random
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader
from tqdm import tqdm

from segbench import SegbenchError, devices, paths
from segbench.data.dataset import EpochSampler, SegmentationDataset, augmentation
from segbench.data.processed import Processed
from segbench.losses import BLIND_ON_EMPTY, create_loss
from segbench.models import MODELS, build_model
from segbench.models.complexity import complexity
from segbench.provenance import git_commit
from segbench.records import TrainRecord
from segbench.training.callbacks import Checkpoints, EarlyStopping, History, Tracking, sigterm_interrupts
from segbench.training.checkpoint import link_or_copy, restore_rng_state, rng_state, to_cpu
from segbench.training.device import Accelerator
from segbench.training.optim import build_optimizer, build_scheduler, step_scheduler
from segbench.training.validation import Validation

log = logging.getLogger(__name__)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def input_normalisation(arch_cfg: dict, data: Processed, train: np.ndarray) -> tuple[list[float], list[float]]:
    """Per-channel mean and std of the inputs: the train images' own, or, for an smp encoder with
    pretrained weights, the statistics those weights were trained with (ImageNet's); one grey
    channel takes their mean, as smp sums the RGB kernels of the first convolution."""
    options = {**MODELS.entry(arch_cfg["family"]).options, **arch_cfg}  # the entry's defaults, then params'
    weights = options.get("encoder_weights")
    if not weights:
        return data.normalisation(train)
    from segmentation_models_pytorch.encoders import get_preprocessing_params

    encoder = options["encoder"]
    try:
        stats = get_preprocessing_params(encoder, pretrained=weights)
    except Exception as exc:  # smp reads them from the Hugging Face hub, beside the weights
        raise SegbenchError(f"cannot fetch the {weights!r} settings (mean, std) of encoder {encoder!r} ({exc}). "
                            "Set encoder_weights: null, or run once where the internet is reachable so the "
                            "hub cache (HF_HOME) has them") from None
    mean, std = list(stats["mean"]), list(stats["std"])
    return ([float(np.mean(mean))], [float(np.mean(std))]) if data.channels == 1 else (mean, std)


def batch_loss(loss_fn, outputs, batch: dict, dev: torch.device) -> torch.Tensor:
    distance = batch.get("distance")
    return loss_fn(outputs, batch["mask"].to(dev), None if distance is None else distance.to(dev))


def fingerprint(params: dict, arch: str, loss: str, seed: int, fold: int | str, processed_dir: Path,
                split_csv: Path) -> str:
    """What a resumed run must share with the killed one: recipe, model, loss, seed, fold and data."""
    digest = hashlib.sha256(json.dumps([params["train"], params["architectures"][arch], params["losses"][loss],
                                        params["evaluate"]["resolution"], seed, fold],
                                       sort_keys=True, default=str).encode())
    for path in (processed_dir / paths.META, split_csv):
        digest.update(path.read_bytes())
    return digest.hexdigest()


class Session:
    """Everything a training run changes, and its (de)serialisation for ``resume.pt``."""

    def __init__(self, net, recipe: dict, acc: Accelerator, seed: int):
        self.net, self.acc = net, acc
        self.model = torch.compile(net) if recipe["compile"] else net
        self.optimizer = build_optimizer(net.parameters(), recipe)
        self.scheduler = build_scheduler(self.optimizer, recipe)
        self.scaler = torch.amp.GradScaler("cuda", enabled=acc.amp_dtype == torch.float16)
        self.generator = torch.Generator().manual_seed(seed)  # the loader's shuffling
        self.history: list[dict] = []
        self.best = {"val_dice": -1.0, "epoch": 0, "model": None}
        self.stale = 0  # epochs since the best
        self.non_finite = 0  # non-finite losses in a row
        self.run_id: str | None = None
        self.stopped: dict = {}  # what stopped the run early (``fit``'s return), kept across a resume
        self.seconds_before, self.started = 0.0, time.time()  # the seconds earlier jobs of this run trained

    @property
    def seconds(self) -> float:
        """Seconds this run has trained, over every job that trained it (a resumed run's, a rung's)."""
        return self.seconds_before + time.time() - self.started

    def state(self, key: str) -> dict:
        """All but the best model's weights, which live in model_best.pt / resume_best.pt."""
        return {"fingerprint": key, "epoch": len(self.history), "model": self.net.state_dict(),
                "optimizer": self.optimizer.state_dict(),
                "scheduler": self.scheduler.state_dict() if self.scheduler is not None else None,
                "scaler": self.scaler.state_dict(), "rng": rng_state(self.generator, self.acc.device),
                "precision": self.acc.precision,
                "history": self.history, "best": {k: v for k, v in self.best.items() if k != "model"},
                "stale": self.stale, "mlflow_run_id": self.run_id, "stopped": self.stopped, "seconds": self.seconds}

    def load(self, state: dict) -> None:
        self.net.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        if self.scheduler is not None:
            self.scheduler.load_state_dict(state["scheduler"])
        if state["scaler"]:  # empty when the killed run had no fp16 scaler
            self.scaler.load_state_dict(state["scaler"])
        restore_rng_state(state["rng"], self.generator, self.acc.device)
        self.history, self.best, self.stale, self.run_id = state["history"], state["best"], state["stale"], \
            state["mlflow_run_id"]
        self.stopped, self.seconds_before = state.get("stopped", {}), state.get("seconds", 0.0)

    def record(self, row: dict, val_images: dict[str, float]) -> None:
        """Append an epoch's ``row``; keep a copy of the weights, and each val image's Dice (``val_images``), when
        its val Dice is the best so far."""
        if row["val_dice"] > self.best["val_dice"]:
            self.best = {"val_dice": row["val_dice"], "epoch": row["epoch"], "val_images": val_images,
                         "model": to_cpu(self.net.state_dict())}
            self.stale = 0
        else:
            self.stale += 1
        self.history.append(row)

    def resume(self, out_dir: Path, key: str, pair: str) -> None:
        """Continue from ``out_dir``'s resume.pt if it was written for the same ``key`` (``fingerprint``).

        Raises:
            SegbenchError: resume.pt was written training on another kind of device or autocast dtype.
        """
        resume_path, resume_best = out_dir / paths.RESUME, out_dir / paths.RESUME_BEST
        if not resume_path.exists():
            return
        state = torch.load(resume_path, map_location="cpu", weights_only=True)
        if state["fingerprint"] != key:
            log.warning("%s: params or data changed since %s was written; starting afresh", pair, resume_path)
            return
        if state.get("precision") != self.acc.precision:
            raise SegbenchError(f"{resume_path} was written training on {state.get('precision')}; this job "
                                f"trains on {self.acc.precision}: resume it on the same kind of device, or delete "
                                "it to start the run afresh")
        self.load(state)
        if self.best["epoch"]:  # model_best.pt under a second name: Snakemake deletes a failed job's outputs
            self.best["model"] = torch.load(resume_best, map_location="cpu", weights_only=True)["model"]
            if not (out_dir / paths.CHECKPOINT).exists():
                link_or_copy(resume_best, out_dir / paths.CHECKPOINT)
        log.info("%s: resuming after epoch %d", pair, state["epoch"])

    def train_epoch(self, loader: DataLoader, loss_fn, pair: str, epoch: int, epochs: int,
                    steps: int | None = None) -> float:
        """One pass over ``loader`` (or its first ``steps`` batches); returns the mean loss of its finite steps.

        A non-finite loss is a skipped step: with fp16, GradScaler skips it and lowers its scale, as PyTorch's AMP
        recipe does (an overflow, not a divergence); otherwise the step is not taken. Only ``DIVERGED_STEPS`` of them
        in a row are divergence.

        Raises:
            Diverged: ``DIVERGED_STEPS`` non-finite losses in a row, or an epoch without a finite one, before they
                reach the weights.
        """
        self.model.train()
        loader.sampler.epoch = epoch
        total, seen = torch.zeros((), device=self.acc.device), 0
        bar = tqdm(loader, desc=f"{pair} epoch {epoch}/{epochs}", leave=False, total=min(len(loader), steps or
                                                                                           len(loader)))
        for step, batch in enumerate(bar):
            if steps and step >= steps:
                break
            images = self.acc.images(batch)
            with self.acc.autocast():
                outputs = self.model(images)
            value = batch_loss(loss_fn, outputs, batch, self.acc.device)
            self.optimizer.zero_grad(set_to_none=True)
            # Only non-finite values are divergence: boundary-type losses may be negative. The step's one sync.
            if not torch.isfinite(value):
                self.non_finite += 1
                if self.non_finite >= DIVERGED_STEPS:
                    raise Diverged(epoch, value.item())
                if self.scaler.is_enabled():  # an fp16 overflow: the scaler skips the step and lowers its scale
                    self.scaler.scale(value).backward()
                    self.scaler.step(self.optimizer)
                    self.scaler.update()
                continue
            self.non_finite = 0
            self.scaler.scale(value).backward()
            self.scaler.step(self.optimizer)
            self.scaler.update()
            total += value.detach() * len(images)
            seen += len(images)
        if not seen and self.non_finite:  # not one finite step this epoch
            raise Diverged(epoch, float("nan"))
        return total.item() / max(1, seen)


DIVERGED_STEPS = 5  # non-finite losses in a row that are a divergence, not an fp16 overflow


class Diverged(Exception):
    """The loss went non-finite at ``epoch``: training stops there, and train.json says so."""

    def __init__(self, epoch: int, loss: float):
        super().__init__(f"loss {loss} at epoch {epoch}")
        self.epoch, self.loss = epoch, loss


def out_of_memory(pair: str, recipe: dict, acc: Accelerator) -> str:
    """What ran out of GPU memory, in one line, and what to change."""
    peak = acc.peak_memory_mb()
    total = torch.cuda.get_device_properties(acc.device).total_memory / 2**20 if acc.cuda else float("nan")
    amp = acc.precision["amp"]
    if acc.cuda:
        torch.cuda.empty_cache()
    return (f"out of GPU memory training {pair} at batch size {recipe['batch_size']} (AMP {amp}, peak {peak:.0f} of "
            f"{total:.0f} MB on {acc.device}): lower train.batch_size"
            + (", set train.amp: true" if amp == "off" else "") + " or preprocess.size")


def fit(run: Session, loader: DataLoader, val_loader: DataLoader, loss_fn, validate: Validation, recipe: dict,
        pair: str, callbacks: list, until: int | None = None) -> dict:
    """Epochs from the run's next to ``train.epochs`` (or to ``until``, a rung's end: the schedule is still the
    one of ``train.epochs``): train, validate, step the schedule, record; then each callback's ``epoch_end``.
    Returns {} or what stopped it (also ``run.stopped``, so a resumed run stays stopped): {"diverged": {"epoch",
    "loss"}} (a non-finite loss), or {"failed": {"epoch", "reason"}} (out of GPU memory)."""
    run.stopped = run.stopped or _fit(run, loader, val_loader, loss_fn, validate, recipe, pair, callbacks,
                                      min(until or recipe["epochs"], recipe["epochs"]))
    return run.stopped


def _fit(run: Session, loader: DataLoader, val_loader: DataLoader, loss_fn, validate: Validation, recipe: dict,
         pair: str, callbacks: list, until: int) -> dict:
    stopping = EarlyStopping(recipe["early_stopping_patience"])
    for epoch in range(len(run.history) + 1, until + 1):
        if stopping.stop(run):
            log.info("%s: early stop, no better val Dice for %d epochs", pair, run.stale)
            break
        tick = time.time()
        run.acc.reset_peak_memory()
        loss_fn.set_epoch(epoch)
        try:
            train_loss = run.train_epoch(loader, loss_fn, pair, epoch, recipe["epochs"], recipe["steps_per_epoch"])
            val_tick = time.time()
            scores = validate(run.model, val_loader, run.acc, loss_fn, batch_loss, run.acc.scorers)
            val_images = scores.pop("val_images")
        except Diverged as exc:  # a failed run, flagged in every table: not a failed sweep
            log.warning("%s: training diverged (%s); stopping, the best epoch so far is kept", pair, exc)
            return {"diverged": {"epoch": exc.epoch, "loss": str(exc.loss)}}
        except torch.OutOfMemoryError:  # the pair does not fit at these settings: flagged like a divergence
            reason = out_of_memory(pair, recipe, run.acc)
            log.error("%s; stopping, the best epoch so far is kept", reason)
            return {"failed": {"epoch": epoch, "reason": reason}}
        row = {"epoch": epoch, "train_loss": train_loss, **scores,
               "lr": run.optimizer.param_groups[0]["lr"], "train_seconds": val_tick - tick,
               "val_seconds": time.time() - val_tick, "peak_memory_mb": run.acc.peak_memory_mb()}
        step_scheduler(run.scheduler, row["val_dice"])
        row["seconds"] = time.time() - tick
        run.record(row, val_images)
        for callback in callbacks:
            callback.epoch_end(run, row, last=epoch == recipe["epochs"] or stopping.stop(run))
        log.info("%s epoch %d: train_loss %.4f val_loss %.4f val_dice %.4f", pair, epoch, row["train_loss"],
                 row["val_loss"], row["val_dice"])
    return {}


@dataclass
class Prepared:
    """What one pair's training reads: the loss, the train and val datasets, the validation scorer, and
    ``meta`` (what a checkpoint records to rebuild the model and its inputs)."""

    data: Processed
    loss_fn: torch.nn.Module
    train_set: SegmentationDataset
    val_set: SegmentationDataset
    validate: Validation
    meta: dict


def prepare(arch: str, loss: str, params: dict, processed_dir: Path, split_csv: Path, seed: int, fold: int | str,
            pair: str) -> Prepared:
    """Load the processed dataset and build the loss, datasets and validation of fold ``fold``.

    Raises:
        SegbenchError: the fold leaves no train or no val images.
    """
    recipe = params["train"]
    data = Processed.load(processed_dir, split_csv)
    train_idx, val_idx = data.fold_indices(fold)
    if not len(train_idx) or not len(val_idx):
        raise SegbenchError(f"{split_csv}: fold {fold} leaves no train or no val images")
    arch_cfg = params["architectures"][arch]
    mean, std = input_normalisation(arch_cfg, data, train_idx)
    classes = len(data.class_names)
    blind = [t["term"] for t in params["losses"][loss] if t["term"] in BLIND_ON_EMPTY and not t.get("smooth")]
    if params["dataset"]["include_normal"] and blind:
        log.warning("%s: with include_normal, %s give no loss on a batch without a lesion, so they never penalise "
                    "false positives on normal images; give them `smooth: 1.0e-5` (nnU-Net's batch Dice)", pair, blind)
    loss_fn = create_loss(params["losses"][loss], mode="binary" if classes == 2 else "multiclass", classes=classes,
                          class_frequencies=data.class_frequencies(train_idx, classes),
                          deep_supervision=recipe["deep_supervision"])
    return Prepared(
        data, loss_fn,
        SegmentationDataset(data, train_idx, mean, std, augmentation(recipe["augment"]), loss_fn.needs_distance,
                            classes, seed),
        SegmentationDataset(data, val_idx, mean, std, distances=loss_fn.needs_distance, classes=classes),
        Validation(data, val_idx, classes, params["evaluate"]["resolution"] == "original"),
        {"arch": arch, "loss": loss, "seed": seed, "fold": fold, "arch_cfg": arch_cfg, "mean": mean, "std": std,
         "in_channels": data.channels, "classes": classes, "class_names": data.class_names, "size": data.size})


def train_pair(arch: str, loss: str, params: dict, processed_dir: Path, split_csv: Path, out_dir: Path,
               seed: int = 0, fold: int | str = 0, tracker=None, device: str | None = None, until: int | None = None,
               pause: bool = False, pruned: dict | None = None, tracked_as: str | None = None) -> dict:
    """Train ``arch`` with ``loss`` from ``seed``, validating on ``fold`` (or on the images a reference training's
    split column marks val: ``paths.REFERENCES``); write the fold folder
    ``out_dir``; return the train.json summary. ``params``: one dataset's (``config.dataset_params``);
    ``device``: as ``segbench.devices.device`` takes it (default: train.device).

    Successive halving (``training.halving``) trains a run in parts: ``until`` stops it after that epoch, and
    ``pause`` keeps its state (resume.pt) for the next part to resume; ``pruned`` is recorded in train.json (the
    rung that stopped the run). ``tracked_as``: the fold name MLflow files the run under (a tuning candidate's:
    "0/candidate1"), default ``fold``."""
    recipe, pair = params["train"], str(paths.RunId(arch, loss, seed, fold))
    seed_everything(seed)
    job = prepare(arch, loss, params, processed_dir, split_csv, seed, fold, pair)
    data, meta = job.data, job.meta

    with devices.device(device or recipe["device"]) as dev:
        acc = Accelerator.for_device(dev, recipe)
        net = build_model(meta["arch_cfg"], data.channels, meta["classes"]).to(dev, memory_format=acc.memory_format)
        run = Session(net, recipe, acc, seed)
        # Workers are started afresh each epoch (not persistent), so the loader draws from run.generator the
        # same way with any number of them: the history does not depend on the worker count.
        # a last batch of one image is dropped: batch norm cannot train on it (a 1 x 1 bottleneck of one sample)
        loader = DataLoader(job.train_set, batch_size=recipe["batch_size"], sampler=EpochSampler(
                            len(job.train_set), run.generator), generator=run.generator, num_workers=acc.workers,
                            pin_memory=acc.cuda, drop_last=len(job.train_set) % recipe["batch_size"] == 1)
        val_loader = DataLoader(job.val_set, batch_size=recipe["batch_size"], num_workers=acc.workers,
                                pin_memory=acc.cuda)
        efficiency = complexity(net, data.channels, data.size)

        key = fingerprint(params, arch, loss, seed, fold, processed_dir, split_csv)
        run.resume(out_dir, key, pair)
        checkpoints = Checkpoints(out_dir, meta, key, recipe["resume_every_minutes"], pause)
        callbacks = [checkpoints, History(out_dir)]
        if tracker:
            checksum = data.info.get("source_checksum")
            tracking = Tracking(tracker)
            tracking.open(run, (arch, loss, seed, tracked_as or fold), {
                "arch": arch, "loss": loss, "seed": seed, "fold": fold, "architecture": meta["arch_cfg"],
                "loss_terms": params["losses"][loss], "train": recipe, "preprocess": params["preprocess"],
                "split": params["split"], "dataset": params["dataset"], "n_params": efficiency["parameters"],
            }, {"segbench.data_checksum": checksum} if checksum else {})
            callbacks.append(tracking)
        else:
            run.run_id = None  # a resumed run's MLflow id means nothing to an untracked rerun

        try:
            with sigterm_interrupts():
                stopped = fit(run, loader, val_loader, job.loss_fn, job.validate, recipe, pair, callbacks, until)
                checkpoints.finish(run)
        except BaseException as exc:
            for callback in callbacks:
                callback.failed(run, exc)
            raise
        summary = TrainRecord(
            arch, loss, seed, fold, len(run.history), run.best["epoch"], run.best["val_dice"],
            round(run.seconds, 1), str(dev), data.size, data.channels, efficiency["parameters"],
            efficiency["gflops"], data.size, meta["mean"], meta["std"], trivial_val_dice=job.validate.trivial_dice(),
            diverged=stopped.get("diverged"), failed=stopped.get("failed"), mlflow_run_id=run.run_id,
            git_commit=git_commit(), iterations_per_epoch=len(loader),
            batch_size=recipe["batch_size"], pruned=pruned,
            best_val_images=run.best.get("val_images")).write(out_dir / paths.TRAINED)
        for callback in callbacks:
            callback.closed(run)
    return summary
