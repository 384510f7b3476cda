"""One image of a dataset, as the dataset readers (btxrd, pets) hand it to preprocessing."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

IGNORE = 255  # mask value of pixels left out of losses and metrics


@dataclass(frozen=True)
class Sample:
    sample_id: str
    image_path: Path
    annotation_path: Path | None
    meta: dict


class SkipSample(Exception):
    """A sample a dataset reader leaves out, with the reason (a warning, not an error)."""
