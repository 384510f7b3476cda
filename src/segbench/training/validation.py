"""Validation during training, scored as evaluation scores the test images (one protocol).

Probabilities are mapped back to each image's size (``evaluate.resolution``: the original
image, or the un-padded canvas), thresholded, and compared with the truth at that size.
Val Dice, which picks the best epoch, is the mean over the images with a lesion, as the
test's segmentation Dice is.
"""

from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import DataLoader

from segbench.data.dataset import Processed
from segbench.data.images import Geometry
from segbench.predict.predictor import probabilities, to_labels
from segbench.metrics.overlap import class_overlap, confusion_matrix


class Validation:
    """Per-epoch val loss, Dice and IoU of a model on the images ``indices`` of ``data``."""

    def __init__(self, data: Processed, indices: np.ndarray, classes: int, original: bool):
        self.data, self.classes, self.original = data, classes, original
        rows = data.meta.iloc[indices]
        self.geometry = {i: Geometry.of(row, data.size) for i, (_, row) in zip(indices, rows.iterrows())}
        self.sample_id = dict(zip(indices, rows["sample_id"]))
        self.originals = data.original_masks() if original else None

    def truth(self, index: int) -> np.ndarray:
        if self.originals is not None:
            return self.originals[self.sample_id[index]]
        return self.geometry[index].crop(self.data.masks[index])

    def __call__(self, model: torch.nn.Module, loader: DataLoader, acc, loss_fn, batch_loss) -> dict[str, float]:
        model.eval()
        total_loss, dice, iou, lesion = 0.0, [], [], []
        with torch.no_grad():
            for batch in loader:
                with acc.autocast():
                    logits = model(acc.images(batch))
                total_loss += batch_loss(loss_fn, logits, batch, acc.device).item() * len(batch["image"])
                for index, p in zip(batch["index"].tolist(), probabilities(logits.float()).cpu().numpy()):
                    truth = self.truth(index)
                    labels = to_labels(self.geometry[index].restore(p, self.original))
                    matrix = confusion_matrix(labels, truth, self.classes)
                    scores = [class_overlap(matrix, c) for c in range(1, self.classes)]
                    dice.append(np.mean([s["dice"] for s in scores]))
                    iou.append(np.mean([s["iou"] for s in scores]))
                    lesion.append(bool(matrix[1:, :].sum()))
        chosen = np.asarray(lesion) if any(lesion) else np.ones(len(lesion), bool)
        return {"val_loss": total_loss / len(loader.dataset), "val_dice": float(np.asarray(dice)[chosen].mean()),
                "val_iou": float(np.asarray(iou)[chosen].mean())}
