"""One image of a dataset, as the dataset readers hand it to preprocessing."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Sample:
    sample_id: str
    image_path: Path
    annotation_path: Path | None
    meta: dict

