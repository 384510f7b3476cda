"""Torch access to the preprocessed arrays of one split subset."""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path

import albumentations as A
import numpy as np
import pandas as pd
import torch
from torch.utils.data import Dataset

from segbench import SegbenchError
from segbench.data.sample import IGNORE
from segbench.losses.functional import signed_distance


@dataclass
class Processed:
    """The preprocess stage's outputs, memory-mapped, with the split assignment joined to meta."""

    images: np.ndarray  # (N, S, S) grey or (N, S, S, 3) RGB, uint8
    masks: np.ndarray   # (N, S, S) uint8: 0, 1, or IGNORE
    meta: pd.DataFrame  # one row per array index, with a 'subset' column

    @classmethod
    def load(cls, processed_dir: Path, split_csv: Path) -> "Processed":
        for path in (processed_dir / "images.npy", processed_dir / "masks.npy", processed_dir / "meta.csv", split_csv):
            if not path.exists():
                raise SegbenchError(f"{path}: missing; run the stage that makes it first")
        meta = pd.read_csv(processed_dir / "meta.csv")
        subsets = pd.read_csv(split_csv).set_index("sample_id")["subset"]
        meta["subset"] = meta["sample_id"].map(subsets)
        if meta["subset"].isna().any():
            missing = meta.loc[meta["subset"].isna(), "sample_id"].head(3).tolist()
            raise SegbenchError(f"{split_csv}: no subset for samples {missing}...; rerun `segbench split`")
        return cls(np.load(processed_dir / "images.npy", mmap_mode="r"),
                   np.load(processed_dir / "masks.npy", mmap_mode="r"), meta)

    @property
    def channels(self) -> int:
        return 1 if self.images.ndim == 3 else self.images.shape[-1]

    @property
    def size(self) -> int:
        return self.images.shape[1]

    def indices(self, subset: str) -> np.ndarray:
        return np.flatnonzero(self.meta["subset"].to_numpy() == subset)

    def normalisation(self) -> tuple[float, float]:
        """Mean and std of the train images' pixels in [0, 1] (the thesis normalises this way)."""
        train = self.images[self.indices("train")].astype(np.float64) / 255.0
        return float(train.mean()), float(train.std()) or 1.0

    def class_frequencies(self, classes: int = 2) -> list[float]:
        """Pixel share of each class in the train subset's masks (ignored pixels left out)."""
        counts = np.bincount(np.asarray(self.masks[self.indices("train")]).ravel(), minlength=IGNORE + 1)[:classes]
        return (counts / max(1, counts.sum())).tolist()


def augmentation(options: dict, seed: int) -> A.Compose:
    """Flips, rotation and zoom (image and mask together), brightness/contrast (image only).

    One seeded generator pair drives every transform, so its state can be saved and restored.
    """
    compose = A.Compose([
        A.HorizontalFlip(p=options["hflip"]),
        A.VerticalFlip(p=options["vflip"]),
        A.Affine(rotate=(-options["rotate"], options["rotate"]), scale=(1 - options["scale"], 1 + options["scale"]),
                 p=options["affine_p"]),
        A.RandomBrightnessContrast(options["brightness_contrast"], options["brightness_contrast"],
                                   p=options["brightness_contrast_p"]),
    ], seed=seed)
    compose.set_random_state(np.random.default_rng(seed), random.Random(seed))
    return compose


class SegmentationDataset(Dataset):
    """Items: {"image": (C, S, S) float32 normalised, "mask": (1, S, S) float32 class ids or IGNORE} and,
    with ``distances``, "distance": (1, S, S) signed distance to the foreground's boundary
    ((K, S, S), one per class, with K > 2 classes).

    The distance map is computed here, per sample on the CPU (scipy), from the augmented
    mask, so it is exact for the geometry the model sees and never costs the training step.
    """

    def __init__(self, data: Processed, indices: np.ndarray, mean: float, std: float,
                 transform: A.Compose | None = None, distances: bool = False, classes: int = 2):
        self.data, self.indices, self.mean, self.std = data, indices, mean, std
        self.transform, self.distances, self.classes = transform, distances, classes

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        image, mask = np.array(self.data.images[self.indices[i]]), np.array(self.data.masks[self.indices[i]])
        if self.transform is not None:
            out = self.transform(image=image, mask=mask)
            image, mask = out["image"], out["mask"]
        image = (image.astype(np.float32) / 255.0 - self.mean) / self.std
        image = torch.from_numpy(image)
        image = image[None] if image.ndim == 2 else image.permute(2, 0, 1)
        item = {"image": image.contiguous(), "mask": torch.from_numpy(mask.astype(np.float32))[None]}
        if self.distances:
            # binary: the foreground's map; multiclass: one per class, as the boundary terms expect
            wanted = [1] if self.classes == 2 else range(self.classes)
            item["distance"] = torch.from_numpy(signed_distance(np.stack([mask == k for k in wanted])))
        return item
