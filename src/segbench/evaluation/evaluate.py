"""The `evaluate` stage: the best checkpoint of one pair on the held-out test subset."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch.utils.data import DataLoader

from segbench import SegbenchError
from segbench.data.dataset import Processed, SegmentationDataset
from segbench.data.sample import IGNORE
from segbench.evaluation.metrics import METRICS, per_image_scores, summarise
from segbench.io import read_json, write_csv, write_json
from segbench.training.device import Accelerator
from segbench.training.trainer import build_model, predict


def valid_region(meta: pd.DataFrame, size: int) -> torch.Tensor:
    """(N, 1, S, S) bool: the resized image inside its zero padding, from scale and pads."""
    region = torch.zeros(len(meta), 1, size, size, dtype=torch.bool)
    for i, row in enumerate(meta.itertuples()):
        h, w = max(1, round(row.orig_h * row.scale)), max(1, round(row.orig_w * row.scale))
        region[i, :, row.pad_top:row.pad_top + h, row.pad_left:row.pad_left + w] = True
    return region


def load_best(run_dir: Path) -> tuple[torch.nn.Module, dict]:
    """The pair's best model (on CPU) and its checkpoint (epoch, arch_cfg, normalisation)."""
    checkpoint_path = run_dir / "model_best.pt"
    if not checkpoint_path.exists():
        raise SegbenchError(f"{checkpoint_path}: missing; run `segbench train` for this pair first")
    checkpoint = torch.load(checkpoint_path, map_location="cpu", weights_only=False)
    model = build_model(checkpoint["arch_cfg"], checkpoint.get("in_channels", 1), checkpoint.get("classes", 2))
    model.load_state_dict(checkpoint["model"])
    return model, checkpoint


def evaluate_pair(run_dir: Path, processed_dir: Path, split_csv: Path, batch_size: int, tracker=None,
                  group_by: str | None = "tumor_type") -> dict:
    """Write ``per_image.csv`` and ``metrics.json`` into ``run_dir``; return the metrics.

    Predictions (sigmoid > 0.5, or the argmax of several classes) are scored only inside the
    un-padded image. Mean Dice
    is also given per value of the ``group_by`` column and per lesion size bucket.
    """
    model, checkpoint = load_best(run_dir)
    dev = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    model.to(dev)

    data = Processed.load(processed_dir, split_csv)
    test = data.indices("test")
    if not len(test):
        raise SegbenchError(f"{split_csv}: the test subset is empty")
    loader = DataLoader(SegmentationDataset(data, test, checkpoint["mean"], checkpoint["std"]), batch_size=batch_size)
    labels, targets, _ = predict(model, loader, Accelerator(dev))
    meta = data.meta.iloc[test].reset_index(drop=True)
    pred = labels * valid_region(meta, labels.shape[-1])
    classes = checkpoint.get("classes", 2)
    scores = per_image_scores(pred, targets, classes)
    groups = [c for c in (group_by, "size_bucket") if c and c in meta.columns]
    per_image = meta[["sample_id", *groups]].assign(
        **{name: scores[name] for name in METRICS},
        gt_px=((targets > 0) & (targets != IGNORE)).sum((1, 2, 3)).long().numpy(),
        pred_px=(pred > 0).sum((1, 2, 3)).long().numpy())
    write_csv(run_dir / "per_image.csv", per_image)

    metrics = summarise(scores)
    for column in groups:
        metrics[f"dice_by_{column}"] = {str(k): float(np.nanmean(v)) for k, v in per_image.groupby(column)["dice"]}
    if classes > 2:
        metrics["dice_by_class"] = {str(k + 1): float(np.nanmean(v)) for k, v in enumerate(scores["dice_per_class"].T)}
    metrics["best_epoch"] = int(checkpoint["epoch"])
    write_json(run_dir / "metrics.json", metrics)
    run_id = read_json(run_dir / "train.json").get("mlflow_run_id") if (run_dir / "train.json").exists() else None
    if tracker and run_id:
        tracker.log_metrics(run_id, {f"test_{k}": v for k, v in metrics.items() if isinstance(v, (int, float))})
    return metrics
