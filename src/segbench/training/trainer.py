"""The `train` stage: one architecture x loss pair, the same recipe for every pair.

Adam with L2 weight decay, train-set mean/std normalisation, flip / rotate / zoom /
brightness augmentation, and the checkpoint kept is the best on validation Dice (the
thesis's recipe, section 3.4). Outputs: ``model_best.pt``, ``model_last.pt``,
``history.csv`` (one row per epoch) and ``train.json``.
"""

from __future__ import annotations

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

from segbench import SegbenchError
from segbench.data.dataset import Processed, SegmentationDataset, augmentation
from segbench.evaluation.metrics import per_image_scores
from segbench.io import atomic_path, write_csv, write_json
from segbench.losses import create_loss
from segbench.models import create_model

log = logging.getLogger(__name__)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def build_model(arch_cfg: dict) -> torch.nn.Module:
    """Model for one grey channel and one tumour logit, from ``architectures.<name>``."""
    cfg = dict(arch_cfg)
    return create_model(cfg.pop("family"), in_channels=1, classes=1, **cfg)


def save_checkpoint(path: Path, model: torch.nn.Module, **extra) -> None:
    with atomic_path(path) as tmp:
        torch.save({"model": model.state_dict(), **extra}, tmp)


def batch_loss(loss_fn, logits, batch: dict, dev: torch.device) -> torch.Tensor:
    distance = batch.get("distance")
    return loss_fn(logits, batch["mask"].to(dev), None if distance is None else distance.to(dev))


def predict(model: torch.nn.Module, loader: DataLoader, dev: torch.device, loss_fn=None):
    """Run ``model`` over ``loader``; return (probabilities (N, 1, S, S) on CPU, targets, mean loss).

    A model with deep supervision returns several outputs; only the first (full size) is a prediction.
    """
    model.eval()
    probs, targets, losses = [], [], []
    with torch.no_grad():
        for batch in loader:
            outputs = model(batch["image"].to(dev))
            if loss_fn is not None:
                losses.append(batch_loss(loss_fn, outputs, batch, dev).item() * len(batch["image"]))
            logits = outputs[0] if isinstance(outputs, (list, tuple)) else outputs
            probs.append(torch.sigmoid(logits).float().cpu())
            targets.append(batch["mask"])
    mean_loss = sum(losses) / len(loader.dataset) if losses else float("nan")
    return torch.cat(probs), torch.cat(targets), mean_loss


def _raise_on_sigterm(*_):
    raise KeyboardInterrupt("SIGTERM")


def train_pair(arch: str, loss: str, params: dict, processed_dir: Path, split_csv: Path, out_dir: Path,
               tracker=None) -> dict:
    """Train ``arch`` with ``loss``; write the run folder; return the train.json summary."""
    recipe = params["train"]
    seed_everything(recipe["seed"])
    data = Processed.load(processed_dir, split_csv)
    mean, std = data.normalisation()
    loss_fn = create_loss(params["losses"][loss], mode="binary", class_frequencies=data.class_frequencies(),
                          deep_supervision=recipe["deep_supervision"])
    needs = loss_fn.needs_distance
    train_set = SegmentationDataset(data, data.indices("train"), mean, std, augmentation(recipe["seed"]), needs)
    val_set = SegmentationDataset(data, data.indices("val"), mean, std, distances=needs)
    if not len(train_set) or not len(val_set):
        raise SegbenchError(f"{split_csv}: the train and val subsets must both be non-empty")
    loader = DataLoader(train_set, batch_size=recipe["batch_size"], shuffle=True,
                        generator=torch.Generator().manual_seed(recipe["seed"]))
    val_loader = DataLoader(val_set, batch_size=recipe["batch_size"])

    dev = device()
    model = build_model(params["architectures"][arch]).to(dev)
    optimiser = torch.optim.Adam(model.parameters(), lr=recipe["lr"], weight_decay=recipe["weight_decay"])
    n_params = sum(p.numel() for p in model.parameters())
    pair = out_dir.name
    run_id = tracker.start_pair(params["sweep"]["name"], pair, {
        "arch": arch, "loss": loss, "architecture": params["architectures"][arch],
        "loss_terms": params["losses"][loss], "train": recipe, "preprocess": params["preprocess"],
        "split": params["split"], "dataset": params["dataset"]["name"], "n_params": n_params,
    }, tags={"segbench.arch": arch, "segbench.loss": loss}) if tracker else None
    checkpoint_extra = {"arch": arch, "loss": loss, "arch_cfg": params["architectures"][arch],
                        "mean": mean, "std": std}

    history, best = [], {"val_dice": -1.0, "epoch": 0}
    started = time.time()
    previous = signal.signal(signal.SIGTERM, _raise_on_sigterm)
    try:
        for epoch in range(1, recipe["epochs"] + 1):
            tick = time.time()
            model.train()
            loss_fn.set_epoch(epoch)
            total = 0.0
            for batch in tqdm(loader, desc=f"{pair} epoch {epoch}/{recipe['epochs']}", leave=False):
                value = batch_loss(loss_fn, model(batch["image"].to(dev)), batch, dev)
                # Only non-finite values are divergence: boundary-type losses may be negative.
                if not torch.isfinite(value):
                    raise SegbenchError(f"{pair}: loss is {value.item()} at epoch {epoch}; training diverged")
                optimiser.zero_grad(set_to_none=True)
                value.backward()
                optimiser.step()
                total += value.item() * len(batch["image"])
            probs, targets, val_loss = predict(model, val_loader, dev, loss_fn)
            scores = per_image_scores(probs > 0.5, targets)
            row = {"epoch": epoch, "train_loss": total / len(train_set), "val_loss": val_loss,
                   "val_dice": float(scores["dice"].mean()), "val_iou": float(scores["iou"].mean()),
                   "lr": optimiser.param_groups[0]["lr"], "seconds": time.time() - tick}
            history.append(row)
            log.info("%s epoch %d: train_loss %.4f val_loss %.4f val_dice %.4f", pair, epoch,
                     row["train_loss"], row["val_loss"], row["val_dice"])
            if row["val_dice"] > best["val_dice"]:
                best = {"val_dice": row["val_dice"], "epoch": epoch}
                save_checkpoint(out_dir / "model_best.pt", model, epoch=epoch, **checkpoint_extra)
            save_checkpoint(out_dir / "model_last.pt", model, epoch=epoch, **checkpoint_extra)
            write_csv(out_dir / "history.csv", pd.DataFrame(history))
            if tracker:
                tracker.log_metrics(run_id, {k: v for k, v in row.items() if k != "epoch"}, step=epoch)
    except BaseException as exc:
        if tracker:
            tracker.end(run_id, "KILLED" if isinstance(exc, KeyboardInterrupt) else "FAILED")
        raise
    finally:
        signal.signal(signal.SIGTERM, previous)
    summary = {"arch": arch, "loss": loss, "epochs": len(history), "best_epoch": best["epoch"],
               "best_val_dice": best["val_dice"], "n_params": n_params, "mean": mean, "std": std,
               "train_seconds": round(time.time() - started, 1), "device": str(dev), "mlflow_run_id": run_id}
    write_json(out_dir / "train.json", summary)
    if tracker:
        tracker.end(run_id)
    return summary
