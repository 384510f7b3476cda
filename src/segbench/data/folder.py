"""A user's own dataset as a folder: ``images/`` and ``masks/`` with matching file stems.

::

    my_dataset/
      images/case001.png      PNG, JPEG, TIFF or BMP; grey or RGB
      masks/case001.png       8-bit label map: each pixel a value of dataset.labels
      meta.csv                optional: sample_id, then any columns to stratify or group by

``dataset.labels`` names the mask values, e.g. ``{0: background, 255: lesion}`` or
``{0: background, 1: tumour, 2: oedema}``; a label named ``ignore`` is left out of losses and metrics.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from segbench import SegbenchError
from segbench.data.images import load_image
from segbench.data.labelmaps import class_map, read_label_map
from segbench.data.sample import Listing, Sample

SKIP_UNREADABLE = False  # a user's file that does not decode is an error naming it
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp")


def find_root(extracted: Path) -> Path:
    for candidate in (extracted, *sorted(p for p in extracted.iterdir() if p.is_dir())):
        if (candidate / "images").is_dir() and (candidate / "masks").is_dir():
            return candidate
    raise SegbenchError(f"{extracted}: no images/ and masks/ folders (see the README's 'your own data')")


def _by_stem(folder: Path, suffixes: tuple[str, ...]) -> dict[str, Path]:
    files: dict[str, Path] = {}
    for path in sorted(folder.iterdir()):
        if path.is_file() and path.suffix.lower() in suffixes and not path.name.startswith("."):
            if path.stem in files:
                raise SegbenchError(f"{folder}: two files for {path.stem!r}: {files[path.stem].name} and {path.name}")
            files[path.stem] = path
    return files


def _mismatch(what: str, stems: set[str], folder: Path) -> str:
    shown = ", ".join(sorted(stems)[:5]) + (f" and {len(stems) - 5} more" if len(stems) > 5 else "")
    return f"{what} in {folder}: {shown}"


def describe(extracted: Path, options: dict) -> Listing:
    """Pair images and masks by stem; the classes from ``dataset.labels``, the channels from
    ``dataset.channels`` or the first image (grey: 1, anything else: 3).

    Raises:
        SegbenchError: an image without a mask or a mask without an image, a meta.csv without
            ``sample_id`` or without a row for a sample, naming them.
    """
    root = find_root(extracted)
    _, names = class_map(options["labels"], "dataset.labels")
    images, masks = _by_stem(root / "images", IMAGE_SUFFIXES), _by_stem(root / "masks", (".png",))
    if set(images) - set(masks):
        raise SegbenchError(_mismatch("images without a mask", set(images) - set(masks), root / "masks"))
    if set(masks) - set(images):
        raise SegbenchError(_mismatch("masks without an image", set(masks) - set(images), root / "images"))
    if not images:
        raise SegbenchError(f"{root / 'images'}: no images ({', '.join(IMAGE_SUFFIXES)})")
    meta: dict[str, dict] = {}
    if (root / "meta.csv").is_file():
        table = pd.read_csv(root / "meta.csv", dtype={"sample_id": str})
        if "sample_id" not in table:
            raise SegbenchError(f"{root / 'meta.csv'}: no 'sample_id' column (columns: {list(table.columns)})")
        unnamed = table.index[table["sample_id"].isna()]
        if len(unnamed):
            raise SegbenchError(f"{root / 'meta.csv'}: lines {[int(i) + 2 for i in unnamed[:5]]} have no sample_id")
        meta = table.set_index("sample_id").to_dict("index")
        missing = set(images) - set(meta)
        if missing:
            raise SegbenchError(_mismatch("samples without a row", missing, root / "meta.csv"))
    channels = options.get("channels")
    if channels is None:  # grey when the first image's R, G and B agree everywhere
        rgb = np.asarray(load_image(images[sorted(images)[0]], "RGB")[0])
        channels = 1 if (rgb == rgb[..., :1]).all() else 3
    samples = [Sample(stem, images[stem], masks[stem], meta.get(stem, {})) for stem in sorted(images)]
    columns = [c for c in next(iter(meta.values()), {})]
    return Listing(samples, names, "L" if channels == 1 else "RGB", [*columns, "classes_present", "size_bucket"],
                   "classes_present")


def load_mask(sample: Sample, height: int, width: int, options: dict):
    return read_label_map(sample.annotation_path, height, width, class_map(options["labels"], "dataset.labels")[0])
