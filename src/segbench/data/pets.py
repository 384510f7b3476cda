"""Oxford-IIIT Pet on disk (Parkhi et al., 2012, "Cats and dogs"): ``images/*.jpg`` and
``annotations/{trimaps/*.png, trainval.txt, test.txt}``, from two archives.

Trimap pixels: 1 pet, 2 background, 3 border. The list files hold lines
``<name> <class_id> <species> <breed_id>`` (species 1 = cat, 2 = dog).
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

from segbench import SegbenchError
from segbench.data.sample import Listing, Sample
from segbench.labels import IGNORE

log = logging.getLogger(__name__)

SKIP_UNREADABLE = True  # a file that does not decode at all is skipped, with a warning naming it
PET, BORDER = 1, 3  # trimap values; 2 is background
LISTS = {"trainval": "trainval.txt", "test": "test.txt"}


def find_root(extracted: Path) -> Path:
    """The folder holding ``images/`` and ``annotations/``."""
    for candidate in (extracted, *extracted.iterdir()):
        if (candidate / "images").is_dir() and (candidate / "annotations" / "trimaps").is_dir():
            return candidate
    raise SegbenchError(f"{extracted}: no images/ and annotations/trimaps/ from the two Oxford-IIIT Pet "
                        "archives; rerun `segbench download`")


def read_lists(annotations: Path) -> pd.DataFrame:
    """trainval.txt and test.txt as one table: sample_id, class_id, species, breed_id, breed, official_split."""
    rows = []
    for subset, file_name in LISTS.items():
        path = annotations / file_name
        if not path.is_file():
            raise SegbenchError(f"{path}: missing from the annotations archive")
        for number, line in enumerate(path.read_text().splitlines(), 1):
            if not line.strip() or line.startswith("#"):
                continue
            try:
                name, class_id, species, breed_id = line.split()
                rows.append({"sample_id": name, "class_id": int(class_id),
                             "species": {"1": "cat", "2": "dog"}[species], "breed_id": int(breed_id),
                             "breed": name.rsplit("_", 1)[0].lower(), "official_split": subset})
            except (ValueError, KeyError):
                raise SegbenchError(f"{path}:{number}: expected '<name> <class_id> <species 1|2> <breed_id>', "
                                    f"got {line!r}") from None
    return pd.DataFrame(rows).drop_duplicates("sample_id")


def list_samples(extracted: Path, options: dict) -> list[Sample]:
    """Every listed image that has both its JPEG and its trimap; the others are skipped with a warning."""
    root = find_root(extracted)
    samples = []
    for row in read_lists(root / "annotations").to_dict("records"):
        image = root / "images" / f"{row['sample_id']}.jpg"
        trimap = root / "annotations" / "trimaps" / f"{row['sample_id']}.png"
        if not image.is_file() or not trimap.is_file():
            log.warning("%s: skipped: %s is missing", row["sample_id"], image if not image.is_file() else trimap)
            continue
        samples.append(Sample(row["sample_id"], image, trimap, row))
    if not samples:
        raise SegbenchError(f"{root}: no listed image has both its JPEG and its trimap")
    return sorted(samples, key=lambda s: s.sample_id)


def describe(extracted: Path, options: dict) -> Listing:
    """Images kept in colour (CMYK, greyscale and PNG-behind-.jpg files converted); background and pet,
    plus the border as a class of its own with ``border_as: class``."""
    names = ["background", "pet", "border"] if options["border_as"] == "class" else ["background", "pet"]
    return Listing(list_samples(extracted, options), names, "RGB", ["breed", "species", "size_bucket"], "breed")


def load_mask(sample: Sample, height: int, width: int, options: dict) -> np.ndarray:
    """Trimap -> (height, width) uint8: 1 pet, 0 background; the border per ``options['border_as']``
    (``foreground`` 1, ``background`` 0, ``ignore`` 255, left out of losses and metrics, ``class`` 2)."""
    try:
        trimap = np.asarray(Image.open(sample.annotation_path))
    except (OSError, SyntaxError, ValueError) as exc:
        raise SegbenchError(f"{sample.annotation_path}: cannot decode trimap: {exc}") from None
    if trimap.shape != (height, width):
        raise SegbenchError(f"{sample.annotation_path}: trimap is {trimap.shape[1]}x{trimap.shape[0]}, "
                            f"its image {width}x{height}")
    border = {"foreground": 1, "background": 0, "ignore": IGNORE, "class": 2}[options["border_as"]]
    mask = np.where(trimap == PET, 1, 0).astype(np.uint8)
    mask[trimap == BORDER] = border
    return mask
