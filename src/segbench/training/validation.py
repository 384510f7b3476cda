"""Validation during training, scored as evaluation scores the test images (one protocol, one scorer).

Probabilities are mapped back to each image's size (``evaluate.resolution``: the original image, or
the un-padded canvas), thresholded, and compared with the truth at that size (``Processed.truth``) by
``metrics.overlap.mean_overlap``. Val Dice, which picks the best epoch, is the mean over the images with
a lesion, as the test's segmentation Dice is; each of those images' own Dice is kept too (``sweep.budget``'s race
tests them, paired by image).
"""

from __future__ import annotations

import contextlib
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import torch
from torch.utils.data import DataLoader

from segbench.data.processed import Processed
from segbench.labels import has_lesion
from segbench.metrics.overlap import mean_overlap
from segbench.predict.outputs import probabilities, to_labels


class Validation:
    """Per-epoch val loss, Dice and IoU of a model on the images ``indices`` of ``data``, and the Dice of each image
    the val Dice averages (``val_images``: sample id -> Dice)."""

    def __init__(self, data: Processed, indices: np.ndarray, classes: int, original: bool):
        self.data, self.classes, self.original = data, classes, original
        self.geometry = {i: data.geometry(i) for i in indices}
        self.lesion = {i: has_lesion(data.masks[i]) for i in indices}
        self.sample_ids = {i: str(data.meta["sample_id"].iat[i]) for i in indices}

    def trivial_dice(self) -> float:
        """The val Dice of predicting every pixel as foreground (class 1): the floor a model must beat."""
        scores = [mean_overlap(np.ones_like(truth), truth, self.classes)["dice"]
                  for truth in (self.data.truth(i, self.original) for i, lesion in self.lesion.items() if lesion)]
        return float(np.mean(scores)) if scores else 0.0

    def score(self, index: int, p: np.ndarray) -> dict:
        """One val image's overlap scores, from its canvas probabilities (K', S, S), at the evaluation's size."""
        labels = to_labels(self.geometry[index].restore(p, self.original))
        return mean_overlap(labels, self.data.truth(index, self.original), self.classes)

    def __call__(self, model: torch.nn.Module, loader: DataLoader, acc, loss_fn, batch_loss,
                 workers: int = 0) -> dict:
        """The model on every val batch; each image scored at its original size by ``workers`` threads while the
        device predicts the next batches (inline with none: the same scores)."""
        model.eval()
        total_loss, pending, lesion, ids = 0.0, [], [], []
        with torch.no_grad(), ThreadPoolExecutor(workers) if workers else contextlib.nullcontext() as pool:
            for batch in loader:
                logits = model(acc.images(batch))  # in float32, as evaluation predicts the test images
                total_loss += batch_loss(loss_fn, logits, batch, acc.device).item() * len(batch["image"])
                for index, p in zip(batch["index"].tolist(), probabilities(logits.float()).cpu().numpy()):
                    pending.append(pool.submit(self.score, index, p) if pool else self.score(index, p))
                    lesion.append(self.lesion[index])
                    ids.append(self.sample_ids[index])
            scores = [s.result() if pool else s for s in pending]
        chosen = [(i, s) for i, s, keep in zip(ids, scores, lesion) if keep] or list(zip(ids, scores))
        return {"val_loss": total_loss / len(loader.dataset),
                "val_dice": float(np.mean([s["dice"] for _, s in chosen])),
                "val_iou": float(np.mean([s["iou"] for _, s in chosen])),
                "val_images": {i: float(s["dice"]) for i, s in chosen}}
