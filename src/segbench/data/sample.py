"""What the dataset readers hand to preprocessing: the samples, and what the dataset is."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class Sample:
    sample_id: str
    image_path: Path
    annotation_path: Path | None
    meta: dict


@dataclass(frozen=True)
class Listing:
    """A dataset as a reader finds it.

    samples:     every sample, sorted by id;
    class_names: the mask's classes, background first;
    mode:        "L" (1 channel) or "RGB" (3);
    strata:      meta.csv columns worth a result per value;
    stratify:    the column ``split.stratify: auto`` stratifies on (None: random);
    groups:      meta.csv columns whose values together stand for one patient or lesion (the leakage audit's
                 metadata groups, and ``split.group_by: auto``'s); none when the dataset has no such columns.
    """

    samples: list[Sample]
    class_names: list[str]
    mode: str
    strata: list[str] = field(default_factory=list)
    stratify: str | None = None
    groups: list[str] = field(default_factory=list)
