"""The `train` stage: one architecture x loss pair, one seed, one fold; the same recipe for every pair.

The thesis's recipe (section 3.4.4): Adam, L2 weight decay, ReduceLROnPlateau and early
stopping on validation Dice, train-set mean/std normalisation, flip / rotate / zoom /
brightness augmentation; the checkpoint kept is the best on validation Dice, scored as the
test will be (``validation.py``).

Outputs, in the fold folder: ``model_best.pt``, ``model_last.pt``, ``history.csv`` (one row per epoch:
losses, val Dice, learning rate), ``timing.csv`` (each epoch's seconds and peak memory: apart, because a
rerun changes them and history.csv is kept in git) and ``train.json``. ``resume.pt`` (every epoch, removed
at the end) lets a killed job continue where it stopped and finish with the same result as an
uninterrupted run on CPU. It is written at the end of an epoch once ``train.resume_every_minutes`` have passed
since the last one: copying the model and optimiser state costs 8-12 % of a short epoch of smp's U-Net on
two CPU cores (``benchmarks/train_throughput.py``), so writing it every epoch would tax small datasets most.
Checkpoints hold tensors and plain values only: they load with ``weights_only=True``.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import random
import signal
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch.utils.data import DataLoader
from tqdm import tqdm

from segbench import SegbenchError, devices, paths
from segbench.data.dataset import EpochSampler, Processed, SegmentationDataset, augmentation
from segbench.io import atomic_path, write_csv, write_json
from segbench.losses import BLIND_ON_EMPTY, create_loss
from segbench.models import MODELS, build_model
from segbench.models.complexity import complexity
from segbench.tracking import git_commit
from segbench.training.checkpoint import Checkpointer, link_or_copy, restore_rng_state, rng_state, to_cpu
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


def fingerprint(params: dict, arch: str, loss: str, seed: int, fold: int, processed_dir: Path,
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
        self.run_id: str | None = None

    def state(self, key: str) -> dict:
        """All but the best model's weights, which live in model_best.pt / resume_best.pt."""
        return {"fingerprint": key, "epoch": len(self.history), "model": self.net.state_dict(),
                "optimizer": self.optimizer.state_dict(),
                "scheduler": self.scheduler.state_dict() if self.scheduler is not None else None,
                "scaler": self.scaler.state_dict(), "rng": rng_state(self.generator, self.acc.device),
                "precision": self.acc.precision,
                "history": self.history, "best": {k: v for k, v in self.best.items() if k != "model"},
                "stale": self.stale, "mlflow_run_id": self.run_id}

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

    def train_epoch(self, loader: DataLoader, loss_fn, pair: str, epoch: int, epochs: int,
                    steps: int | None = None) -> float:
        """One pass over ``loader`` (or its first ``steps`` batches); returns the mean loss.

        Raises:
            Diverged: a non-finite loss, before it reaches the weights.
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
            # Only non-finite values are divergence: boundary-type losses may be negative. The step's one sync.
            if not torch.isfinite(value):
                raise Diverged(epoch, value.item())
            self.optimizer.zero_grad(set_to_none=True)
            self.scaler.scale(value).backward()
            self.scaler.step(self.optimizer)
            self.scaler.update()
            total += value.detach() * len(images)
            seen += len(images)
        return total.item() / max(1, seen)


class Diverged(Exception):
    """The loss went non-finite at ``epoch``: training stops there, and train.json says so."""

    def __init__(self, epoch: int, loss: float):
        super().__init__(f"loss {loss} at epoch {epoch}")
        self.epoch, self.loss = epoch, loss


def _raise_on_sigterm(*_):
    raise KeyboardInterrupt("SIGTERM")


TIMING = ("seconds", "train_seconds", "val_seconds", "peak_memory_mb")  # timing.csv's columns, not history.csv's


def train_pair(arch: str, loss: str, params: dict, processed_dir: Path, split_csv: Path, out_dir: Path,
               seed: int = 0, fold: int = 0, tracker=None, device: str | None = None) -> dict:
    """Train ``arch`` with ``loss`` from ``seed``, validating on ``fold``; write the fold folder
    ``out_dir``; return the train.json summary. ``params``: one dataset's (``config.dataset_params``);
    ``device``: as ``segbench.devices.device`` takes it (default: a leased GPU, else the CPU)."""
    recipe, pair = params["train"], f"{arch}__{loss}/seed{seed}/fold{fold}"
    seed_everything(seed)
    data = Processed.load(processed_dir, split_csv)
    train_idx, val_idx = data.fold_indices(fold)
    if not len(train_idx) or not len(val_idx):
        raise SegbenchError(f"{split_csv}: fold {fold} leaves no train or no val images")
    arch_cfg = params["architectures"][arch]
    mean, std = input_normalisation(arch_cfg, data, train_idx)
    names = data.class_names
    classes = len(names)
    blind = [t["term"] for t in params["losses"][loss] if t["term"] in BLIND_ON_EMPTY and not t.get("smooth")]
    if params["dataset"]["include_normal"] and blind:
        log.warning("%s: with include_normal, %s give no loss on a batch without a lesion, so they never penalise "
                    "false positives on normal images; give them `smooth: 1.0e-5` (nnU-Net's batch Dice)", pair, blind)
    loss_fn = create_loss(params["losses"][loss], mode="binary" if classes == 2 else "multiclass", classes=classes,
                          class_frequencies=data.class_frequencies(train_idx, classes),
                          deep_supervision=recipe["deep_supervision"])
    train_set = SegmentationDataset(data, train_idx, mean, std, augmentation(recipe["augment"]),
                                    loss_fn.needs_distance, classes, seed)
    val_set = SegmentationDataset(data, val_idx, mean, std, distances=loss_fn.needs_distance, classes=classes)
    validate = Validation(data, val_idx, classes, params["evaluate"]["resolution"] == "original")
    meta = {"arch": arch, "loss": loss, "seed": seed, "fold": fold, "arch_cfg": arch_cfg, "mean": mean, "std": std,
            "in_channels": data.channels, "classes": classes, "class_names": names, "size": data.size}

    with devices.device(device) as dev:
        acc = Accelerator.for_device(dev, recipe)
        net = build_model(arch_cfg, data.channels, classes).to(dev, memory_format=acc.memory_format)
        run = Session(net, recipe, acc, seed)
        # Workers are started afresh each epoch (not persistent), so the loader draws from run.generator the
        # same way with any number of them: the history does not depend on the worker count.
        # a last batch of one image is dropped: batch norm cannot train on it (a 1 x 1 bottleneck of one sample)
        loader = DataLoader(train_set, batch_size=recipe["batch_size"], sampler=EpochSampler(len(train_set),
                            run.generator), generator=run.generator, num_workers=acc.workers, pin_memory=acc.cuda,
                            drop_last=len(train_set) % recipe["batch_size"] == 1)
        val_loader = DataLoader(val_set, batch_size=recipe["batch_size"], num_workers=acc.workers,
                                pin_memory=acc.cuda)
        efficiency = complexity(net, data.channels, data.size)
        n_params = efficiency["parameters"]

        key = fingerprint(params, arch, loss, seed, fold, processed_dir, split_csv)
        resume_path = out_dir / paths.RESUME
        # model_best.pt under a second name: Snakemake deletes a failed job's outputs, not this
        resume_best = out_dir / paths.RESUME_BEST
        state = torch.load(resume_path, map_location="cpu", weights_only=True) if resume_path.exists() else None
        if state is not None and state["fingerprint"] != key:
            log.warning("%s: params or data changed since %s was written; starting afresh", pair, resume_path)
            state = None
        if state is not None:
            if state.get("precision") != acc.precision:
                raise SegbenchError(f"{resume_path} was written training on {state.get('precision')}; this job "
                                    f"trains on {acc.precision}: resume it on the same kind of device, or delete "
                                    "it to start the run afresh")
            run.load(state)
            if run.best["epoch"]:
                run.best["model"] = torch.load(resume_best, map_location="cpu", weights_only=True)["model"]
                if not (out_dir / paths.CHECKPOINT).exists():
                    link_or_copy(resume_best, out_dir / paths.CHECKPOINT)
            log.info("%s: resuming after epoch %d", pair, state["epoch"])
            run.run_id = tracker.resume(run.run_id) if tracker and run.run_id else None
            if run.run_id:
                tracker.log_history(run.run_id, run.history)
        if tracker and run.run_id is None:
            checksum = data.info.get("source_checksum")
            run.run_id = tracker.start_training(arch, loss, seed, fold, {
                "arch": arch, "loss": loss, "seed": seed, "fold": fold, "architecture": arch_cfg,
                "loss_terms": params["losses"][loss], "train": recipe, "preprocess": params["preprocess"],
                "split": params["split"], "dataset": params["dataset"], "n_params": n_params,
            }, {"segbench.data_checksum": checksum} if checksum else {})

        checkpoints, started, diverged = Checkpointer(), time.time(), None
        resumable = started  # when resume.pt was last written (or the run started)
        previous = signal.signal(signal.SIGTERM, _raise_on_sigterm)
        try:
            for epoch in range(len(run.history) + 1, recipe["epochs"] + 1):
                if recipe["early_stopping_patience"] and run.stale >= recipe["early_stopping_patience"]:
                    log.info("%s: early stop, no better val Dice for %d epochs", pair, run.stale)
                    break
                tick = time.time()
                acc.reset_peak_memory()
                loss_fn.set_epoch(epoch)
                try:
                    train_loss = run.train_epoch(loader, loss_fn, pair, epoch, recipe["epochs"],
                                                 recipe["steps_per_epoch"])
                except Diverged as exc:  # a failed run, flagged in every table: not a failed sweep
                    log.warning("%s: training diverged (%s); stopping, the best epoch so far is kept", pair, exc)
                    diverged = {"epoch": exc.epoch, "loss": str(exc.loss)}
                    break
                val_tick = time.time()
                row = {"epoch": epoch, "train_loss": train_loss,
                       **validate(run.model, val_loader, acc, loss_fn, batch_loss),
                       "lr": run.optimizer.param_groups[0]["lr"], "train_seconds": val_tick - tick,
                       "val_seconds": time.time() - val_tick, "peak_memory_mb": acc.peak_memory_mb()}
                step_scheduler(run.scheduler, row["val_dice"])
                writes, links = [], []
                if row["val_dice"] > run.best["val_dice"]:
                    run.best = {"val_dice": row["val_dice"], "epoch": epoch, "model": to_cpu(net.state_dict())}
                    run.stale = 0
                    writes.append((out_dir / paths.CHECKPOINT, {"model": run.best["model"], "epoch": epoch, **meta}))
                    links.append((out_dir / paths.CHECKPOINT, resume_best))
                else:
                    run.stale += 1
                row["seconds"] = time.time() - tick
                run.history.append(row)
                patience = recipe["early_stopping_patience"]
                due = time.time() - resumable >= recipe["resume_every_minutes"] * 60
                if due and epoch < recipe["epochs"] and not (patience and run.stale >= patience):
                    writes.append((resume_path, run.state(key)))  # the last epoch needs no resuming
                    resumable = time.time()
                checkpoints.save(writes, links)
                history = pd.DataFrame(run.history)
                write_csv(out_dir / paths.HISTORY, history.drop(columns=list(TIMING)))
                write_csv(out_dir / paths.TIMING, history[["epoch", *TIMING]])
                log.info("%s epoch %d: train_loss %.4f val_loss %.4f val_dice %.4f", pair, epoch,
                         row["train_loss"], row["val_loss"], row["val_dice"])
                if tracker:
                    tracker.log_metrics(run.run_id, {k: v for k, v in row.items() if k != "epoch"}, step=epoch)
            checkpoints.wait()
        except BaseException as exc:
            with contextlib.suppress(BaseException):
                checkpoints.wait()  # the last complete epoch stays resumable
            if tracker and run.run_id:
                tracker.end(run.run_id, "KILLED" if isinstance(exc, KeyboardInterrupt) else "FAILED")
            raise
        finally:
            signal.signal(signal.SIGTERM, previous)

        if not run.best["epoch"]:  # diverged in the first epoch: its weights are the only ones there are
            with atomic_path(out_dir / paths.CHECKPOINT) as tmp:
                torch.save({"model": to_cpu(net.state_dict()), "epoch": 0, **meta}, tmp)
        with atomic_path(out_dir / paths.LAST) as tmp:
            torch.save({"model": to_cpu(net.state_dict()), "epoch": len(run.history), **meta}, tmp)
        summary = {"arch": arch, "loss": loss, "seed": seed, "fold": fold, "epochs": len(run.history),
                   "best_epoch": run.best["epoch"], "best_val_dice": run.best["val_dice"], "n_params": n_params,
                   "gflops": efficiency["gflops"], "gflops_size": data.size, "mean": mean, "std": std,
                   "train_seconds": round(time.time() - started, 1), "device": str(dev),
                   "mlflow_run_id": run.run_id, "git_commit": git_commit(), "diverged": diverged,
                   "trivial_val_dice": validate.trivial_dice()}
        write_json(out_dir / paths.TRAINED, summary)
        if tracker:
            tracker.end(run.run_id)
        resume_path.unlink(missing_ok=True)
        resume_best.unlink(missing_ok=True)
    return summary
