"""Torch access to the preprocessed arrays: the Dataset that augments them, and its epoch sampler."""

from __future__ import annotations

import albumentations as A
import numpy as np
import torch
from torch.utils.data import Dataset, RandomSampler, Sampler

from segbench.data.distance import signed_distance
from segbench.data.images import normalise
from segbench.data.processed import Processed


def augmentation(options: dict) -> A.Compose:
    """Flips, rotation and zoom (image and mask together), brightness/contrast (image only). The dataset seeds
    it per sample (``SegmentationDataset``)."""
    return A.Compose([
        A.HorizontalFlip(p=options["hflip"]),
        A.VerticalFlip(p=options["vflip"]),
        A.Affine(rotate=(-options["rotate"], options["rotate"]), scale=(1 - options["scale"], 1 + options["scale"]),
                 p=options["affine_p"]),
        A.RandomBrightnessContrast(options["brightness_contrast"], options["brightness_contrast"],
                                   p=options["brightness_contrast_p"]),
    ])


class EpochSampler(Sampler):
    """Shuffled indices, each paired with the epoch: (epoch, i). The dataset seeds a sample's augmentation from
    (seed, epoch, index), so what a sample draws depends neither on which loader worker loads it nor on how
    many there are, and a resumed run draws what the uninterrupted one did."""

    def __init__(self, size: int, generator: torch.Generator):
        self.order = RandomSampler(range(size), generator=generator)
        self.epoch = 0

    def __iter__(self):
        return ((self.epoch, i) for i in self.order)

    def __len__(self) -> int:
        return len(self.order)


class SegmentationDataset(Dataset):
    """Items: {"image": (C, S, S) float32 normalised, "mask": (1, S, S) float32 class ids or IGNORE,
    "index": the array index} and, with ``distances``, "distance": (1, S, S) signed distance to the
    foreground's boundary ((K, S, S), one per class, with K > 2 classes).

    The distance map is computed here, per sample on the CPU (scipy), from the augmented
    mask, so it is exact for the geometry the model sees and never costs the training step.
    """

    def __init__(self, data: Processed, indices: np.ndarray, mean: list[float], std: list[float],
                 transform: A.Compose | None = None, distances: bool = False, classes: int = 2, seed: int = 0):
        self.data, self.indices, self.mean, self.std = data, indices, mean, std
        self.transform, self.distances, self.classes, self.seed = transform, distances, classes, seed

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, key: int | tuple[int, int]) -> dict[str, torch.Tensor]:
        """Item ``key``: a position, or (epoch, position) from ``EpochSampler``, which seeds its augmentation."""
        epoch, i = key if isinstance(key, tuple) else (0, key)
        index = self.indices[i]
        image, mask = self.data.images[index], self.data.masks[index]
        if self.transform is not None:
            self.transform.set_random_seed(int(np.random.SeedSequence([self.seed, epoch, int(index)])
                                               .generate_state(1)[0]))
            out = self.transform(image=image, mask=mask)
            image, mask = out["image"], out["mask"]
        item = {"image": normalise(image, self.mean, self.std),
                "mask": torch.from_numpy(mask.astype(np.float32))[None], "index": int(index)}
        if self.distances:
            # binary: the foreground's map; multiclass: one per class, as the boundary terms expect
            wanted = [1] if self.classes == 2 else range(self.classes)
            item["distance"] = torch.from_numpy(signed_distance(np.stack([mask == k for k in wanted])))
        return item
