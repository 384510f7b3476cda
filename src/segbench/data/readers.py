"""The dataset readers, by ``dataset.name``: a registry of modules, each following ``Reader`` (checked as it is
added). Adding a dataset format is one module plus one entry here."""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

import numpy as np

from segbench.data.sample import Listing, Sample
from segbench.registry import Registry


class Reader(Protocol):
    """A dataset format: what ``preprocess`` needs to read one."""

    SKIP_UNREADABLE: bool  # an image that does not decode is skipped with a warning (else an error naming it)

    def describe(self, extracted: Path, options: dict) -> Listing:
        """The samples, the class names, the colour mode, the strata and the default stratification."""

    def load_mask(self, sample: Sample, height: int, width: int, options: dict) -> np.ndarray:
        """The (height, width) uint8 class-id mask of ``sample`` (IGNORE where unlabelled)."""


READERS = Registry("dataset", protocol=Reader)
READERS.add("synthetic", "segbench.data.btxrd", "segbench", "the embedded demo, generated in BTXRD's exact format")
READERS.add("btxrd", "segbench.data.btxrd", "Yao et al., 2025 (BTXRD)",
            "bone-tumour X-rays: images/, LabelMe JSON annotations and dataset.xlsx")
READERS.add("oxford_pets", "segbench.data.pets", "Parkhi et al., 2012 (Oxford-IIIT Pet)",
            "pet photographs with trimaps: pet, border (ignored or a class) and background")
READERS.add("folder", "segbench.data.folder", "segbench", "a user's folder of images and label maps")
READERS.add("nnunet", "segbench.data.nnunet", "Isensee et al., 2021 (nnU-Net's raw format)",
            "an nnU-Net raw dataset: dataset.json, imagesTr/ and labelsTr/ (2D)")


def reader(dataset: dict) -> Reader:
    """The reader of ``dataset.name`` (the synthetic demo is in BTXRD's format)."""
    return READERS.entry(dataset["name"]).load()
