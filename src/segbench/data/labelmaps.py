"""Label-map files (PNG masks) of a user's dataset: read, checked against their image, mapped to class ids."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from segbench import SegbenchError
from segbench.labels import IGNORE

IGNORE_NAME = "ignore"  # a label named so is left out of losses and metrics


def class_map(labels: dict[int, str], where: str) -> tuple[np.ndarray, list[str]]:
    """(look-up table from file value to class id, class names) for ``labels``: file value -> name.

    Values take class ids in increasing order (so masks saved as 0/255 work); a label named
    "ignore" becomes IGNORE. The first value is the background.

    Raises:
        SegbenchError: fewer than two classes, or a value outside 0-255, naming ``where``.
    """
    values = sorted(int(v) for v in labels)
    if any(not 0 <= v <= 255 for v in values):
        raise SegbenchError(f"{where}: label values must be 0-255 (8-bit masks), got {values}")
    kept = [v for v in values if str(labels[v]).lower() != IGNORE_NAME]
    if len(kept) < 2:
        raise SegbenchError(f"{where}: needs a background and at least one class, got {labels}")
    table = np.full(256, -1, np.int16)
    table[kept] = np.arange(len(kept))
    table[[v for v in values if v not in kept]] = IGNORE
    return table, [str(labels[v]) for v in kept]


def read_label_map(path: Path, height: int, width: int, table: np.ndarray) -> np.ndarray:
    """The label map at ``path`` as (height, width) uint8 class ids (or IGNORE).

    Raises:
        SegbenchError: an unreadable file, a size that differs from its image's, or a value that
            is not a label, naming the file and what was expected.
    """
    try:
        raw = np.asarray(Image.open(path))
    except (OSError, SyntaxError, ValueError) as exc:
        raise SegbenchError(f"{path}: cannot decode mask: {exc}") from None
    if raw.ndim == 3:
        if not (raw[..., :3] == raw[..., :1]).all():
            raise SegbenchError(f"{path}: a colour mask; expected one value per pixel (a grey or palette PNG)")
        raw = raw[..., 0]
    if raw.shape != (height, width):
        raise SegbenchError(f"{path}: mask is {raw.shape[1]}x{raw.shape[0]}, its image {width}x{height}")
    if raw.max() > 255:
        raise SegbenchError(f"{path}: mask values up to {raw.max()}; expected 8-bit label values")
    ids = table[raw.astype(np.intp)]
    if (ids < 0).any():
        unknown = sorted(set(np.unique(raw[ids < 0]).tolist()))
        raise SegbenchError(f"{path}: mask values {unknown} are not labels; labels: "
                            f"{sorted(int(v) for v in np.flatnonzero(table >= 0))}")
    return ids.astype(np.uint8)
