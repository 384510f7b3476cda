"""The `train` stage: one architecture x loss pair, the same recipe for every pair.

The thesis's recipe (section 3.4.4): Adam, L2 weight decay, ReduceLROnPlateau and early
stopping on validation Dice, train-set mean/std normalisation, flip / rotate / zoom /
brightness augmentation; the checkpoint kept is the best on validation Dice.

Outputs: ``model_best.pt``, ``model_last.pt``, ``history.csv`` (one row per epoch) and
``train.json``. ``resume.pt`` (every epoch, removed at the end) lets a killed job continue
where it stopped and finish with the same result as an uninterrupted run on CPU.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import random
import resource
import signal
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch.utils.data import DataLoader
from tqdm import tqdm

from segbench import SegbenchError
from segbench.data.dataset import Processed, SegmentationDataset, augmentation
from segbench.evaluation.metrics import per_image_scores
from segbench.io import atomic_path, write_csv, write_json
from segbench.losses import create_loss
from segbench.models import create_model
from segbench.training.checkpoint import Checkpointer, restore_rng_state, rng_state, to_cpu
from segbench.training.lease import DeviceLease, visible_devices
from segbench.training.optim import build_optimizer, build_scheduler, step_scheduler

log = logging.getLogger(__name__)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


@contextlib.contextmanager
def leased_device():
    """The CPU, or a CUDA device leased for the life of the block."""
    if not torch.cuda.is_available():
        yield torch.device("cpu")
        return
    with DeviceLease(visible_devices(torch.cuda.device_count())) as lease:
        yield torch.device("cuda", lease.index)


def build_model(arch_cfg: dict) -> torch.nn.Module:
    """Model for one grey channel and one tumour logit, from ``architectures.<name>``."""
    cfg = dict(arch_cfg)
    return create_model(cfg.pop("family"), in_channels=1, classes=1, **cfg)


def batch_loss(loss_fn, outputs, batch: dict, dev: torch.device) -> torch.Tensor:
    distance = batch.get("distance")
    return loss_fn(outputs, batch["mask"].to(dev), None if distance is None else distance.to(dev))


def predict(model: torch.nn.Module, loader: DataLoader, dev: torch.device, loss_fn=None, amp_dtype=None,
            memory_format=torch.contiguous_format):
    """Run ``model`` over ``loader``; return (probabilities (N, 1, S, S) on CPU, targets, mean loss).

    A model with deep supervision returns several outputs; only the first (full size) is a prediction.
    """
    model.eval()
    probs, targets, losses = [], [], []
    with torch.no_grad():
        for batch in loader:
            with torch.autocast(dev.type, dtype=amp_dtype, enabled=amp_dtype is not None):
                outputs = model(batch["image"].to(dev, memory_format=memory_format))
            if loss_fn is not None:
                losses.append(batch_loss(loss_fn, outputs, batch, dev).item() * len(batch["image"]))
            logits = outputs[0] if isinstance(outputs, (list, tuple)) else outputs
            probs.append(torch.sigmoid(logits.float()).cpu())
            targets.append(batch["mask"])
    mean_loss = sum(losses) / len(loader.dataset) if losses else float("nan")
    return torch.cat(probs), torch.cat(targets), mean_loss


def peak_memory_mb(dev: torch.device) -> float:
    """Peak GPU memory since the last reset, or the process's peak resident memory on CPU."""
    if dev.type == "cuda":
        return torch.cuda.max_memory_allocated(dev) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def fingerprint(params: dict, arch: str, loss: str, processed_dir: Path, split_csv: Path) -> str:
    """What a resumed run must share with the killed one: recipe, model, loss and data."""
    digest = hashlib.sha256(json.dumps([params["train"], params["architectures"][arch], params["losses"][loss]],
                                       sort_keys=True, default=str).encode())
    for path in (processed_dir / "meta.csv", split_csv):
        digest.update(path.read_bytes())
    return digest.hexdigest()


def _raise_on_sigterm(*_):
    raise KeyboardInterrupt("SIGTERM")


def train_pair(arch: str, loss: str, params: dict, processed_dir: Path, split_csv: Path, out_dir: Path,
               tracker=None, threads: int = 1) -> dict:
    """Train ``arch`` with ``loss``; write the run folder; return the train.json summary."""
    recipe, pair = params["train"], out_dir.name
    seed_everything(recipe["seed"])
    data = Processed.load(processed_dir, split_csv)
    mean, std = data.normalisation()
    loss_fn = create_loss(params["losses"][loss], mode="binary", class_frequencies=data.class_frequencies(),
                          deep_supervision=recipe["deep_supervision"])
    augment = augmentation(recipe["augment"], recipe["seed"])
    train_set = SegmentationDataset(data, data.indices("train"), mean, std, augment, loss_fn.needs_distance)
    val_set = SegmentationDataset(data, data.indices("val"), mean, std, distances=loss_fn.needs_distance)
    if not len(train_set) or not len(val_set):
        raise SegbenchError(f"{split_csv}: the train and val subsets must both be non-empty")

    with leased_device() as dev:
        cuda = dev.type == "cuda"
        torch.backends.cudnn.benchmark = cuda
        amp_dtype = None
        if cuda and recipe["amp"]:
            amp_dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        memory_format = torch.channels_last if cuda and recipe["channels_last"] else torch.contiguous_format
        workers = max(0, threads - 1) if cuda else 0  # CPU: the cores compute; workers would change nothing
        generator = torch.Generator().manual_seed(recipe["seed"])
        loader = DataLoader(train_set, batch_size=recipe["batch_size"], shuffle=True, generator=generator,
                            num_workers=workers, pin_memory=cuda, persistent_workers=workers > 0)
        val_loader = DataLoader(val_set, batch_size=recipe["batch_size"], num_workers=workers, pin_memory=cuda)
        net = build_model(params["architectures"][arch]).to(dev, memory_format=memory_format)
        model = torch.compile(net) if recipe["compile"] else net
        optimizer = build_optimizer(net.parameters(), recipe)
        scheduler = build_scheduler(optimizer, recipe)
        scaler = torch.amp.GradScaler("cuda", enabled=amp_dtype == torch.float16)
        n_params = sum(p.numel() for p in net.parameters())
        meta = {"arch": arch, "loss": loss, "arch_cfg": params["architectures"][arch], "mean": mean, "std": std}

        key = fingerprint(params, arch, loss, processed_dir, split_csv)
        resume_path = out_dir / "resume.pt"
        state = torch.load(resume_path, map_location="cpu", weights_only=False) if resume_path.exists() else None
        if state is not None and state["fingerprint"] != key:
            log.warning("%s: params or data changed since %s was written; starting afresh", pair, resume_path)
            state = None
        history, best, stale, start, run_id = [], {"val_dice": -1.0, "epoch": 0}, 0, 1, None
        if state is not None:
            net.load_state_dict(state["model"])
            optimizer.load_state_dict(state["optimizer"])
            if scheduler is not None:
                scheduler.load_state_dict(state["scheduler"])
            scaler.load_state_dict(state["scaler"])
            restore_rng_state(state["rng"], generator, augment)
            history, best, stale, start = state["history"], state["best"], state["stale"], state["epoch"] + 1
            run_id = tracker.resume_pair(state["mlflow_run_id"]) if tracker and state["mlflow_run_id"] else None
            if run_id:
                tracker.log_history(run_id, history)
            log.info("%s: resuming after epoch %d", pair, state["epoch"])
        if tracker and run_id is None:
            run_id = tracker.start_pair(params["sweep"]["name"], pair, {
                "arch": arch, "loss": loss, "architecture": params["architectures"][arch],
                "loss_terms": params["losses"][loss], "train": recipe, "preprocess": params["preprocess"],
                "split": params["split"], "dataset": params["dataset"]["name"], "n_params": n_params,
            }, tags={"segbench.arch": arch, "segbench.loss": loss})

        checkpoints = Checkpointer()
        best_model = state["best_model"] if state is not None else None
        previous = signal.signal(signal.SIGTERM, _raise_on_sigterm)
        started = time.time()
        try:
            for epoch in range(start, recipe["epochs"] + 1):
                if recipe["early_stopping_patience"] and stale >= recipe["early_stopping_patience"]:
                    break
                tick = time.time()
                if cuda:
                    torch.cuda.reset_peak_memory_stats(dev)
                model.train()
                loss_fn.set_epoch(epoch)
                total = 0.0
                for batch in tqdm(loader, desc=f"{pair} epoch {epoch}/{recipe['epochs']}", leave=False):
                    images = batch["image"].to(dev, non_blocking=True, memory_format=memory_format)
                    with torch.autocast(dev.type, dtype=amp_dtype, enabled=amp_dtype is not None):
                        outputs = model(images)
                    value = batch_loss(loss_fn, outputs, batch, dev)
                    # Only non-finite values are divergence: boundary-type losses may be negative.
                    if not torch.isfinite(value):
                        raise SegbenchError(f"{pair}: loss is {value.item()} at epoch {epoch}; training diverged")
                    optimizer.zero_grad(set_to_none=True)
                    scaler.scale(value).backward()
                    scaler.step(optimizer)
                    scaler.update()
                    total += value.item() * len(images)
                val_tick = time.time()
                probs, targets, val_loss = predict(model, val_loader, dev, loss_fn, amp_dtype, memory_format)
                scores = per_image_scores(probs > 0.5, targets)
                row = {"epoch": epoch, "train_loss": total / len(train_set), "val_loss": val_loss,
                       "val_dice": float(scores["dice"].mean()), "val_iou": float(scores["iou"].mean()),
                       "lr": optimizer.param_groups[0]["lr"]}
                step_scheduler(scheduler, row["val_dice"])
                writes = []
                if row["val_dice"] > best["val_dice"]:
                    best, stale, best_model = {"val_dice": row["val_dice"], "epoch": epoch}, 0, to_cpu(net.state_dict())
                    writes.append((out_dir / "model_best.pt", {"model": best_model, "epoch": epoch, **meta}))
                else:
                    stale += 1
                row.update(train_seconds=val_tick - tick, val_seconds=time.time() - val_tick,
                           peak_memory_mb=peak_memory_mb(dev))
                row["seconds"] = time.time() - tick
                history.append(row)
                writes.append((resume_path, {
                    "fingerprint": key, "epoch": epoch, "model": net.state_dict(), "optimizer": optimizer.state_dict(),
                    "scheduler": scheduler.state_dict() if scheduler is not None else None,
                    "scaler": scaler.state_dict(), "rng": rng_state(generator, augment), "history": history,
                    "best": best, "stale": stale, "best_model": best_model, "mlflow_run_id": run_id}))
                checkpoints.save(writes)
                write_csv(out_dir / "history.csv", pd.DataFrame(history))
                log.info("%s epoch %d: train_loss %.4f val_loss %.4f val_dice %.4f", pair, epoch,
                         row["train_loss"], row["val_loss"], row["val_dice"])
                if tracker:
                    tracker.log_metrics(run_id, {k: v for k, v in row.items() if k != "epoch"}, step=epoch)
            checkpoints.wait()
        except BaseException as exc:
            with contextlib.suppress(BaseException):
                checkpoints.wait()  # the last complete epoch stays resumable
            if tracker and run_id:
                tracker.end(run_id, "KILLED" if isinstance(exc, KeyboardInterrupt) else "FAILED")
            raise
        finally:
            signal.signal(signal.SIGTERM, previous)

        with atomic_path(out_dir / "model_last.pt") as tmp:
            torch.save({"model": to_cpu(net.state_dict()), "epoch": len(history), **meta}, tmp)
        summary = {"arch": arch, "loss": loss, "epochs": len(history), "best_epoch": best["epoch"],
                   "best_val_dice": best["val_dice"], "n_params": n_params, "mean": mean, "std": std,
                   "train_seconds": round(time.time() - started, 1), "device": str(dev), "mlflow_run_id": run_id}
        write_json(out_dir / "train.json", summary)
        if tracker:
            net.load_state_dict(best_model)
            example = np.zeros((1, 1, *data.images.shape[1:]), np.float32)
            tracker.log_model(run_id, net.to("cpu", memory_format=torch.contiguous_format).eval(), example,
                              params["sweep"]["name"])
            tracker.end(run_id)
        resume_path.unlink(missing_ok=True)
    return summary
