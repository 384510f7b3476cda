"""The `preprocess` stage: LabelMe polygons to masks, then resize-longest-side and zero-pad.

As in the thesis (section 3.3.1): the longest side goes to ``size`` with the aspect kept,
then black pixels pad the image to ``size x size`` (centred). ``scale`` and the pads are
stored so that any prediction maps back to the original image.
"""

from __future__ import annotations

import contextlib
import logging
import math
from dataclasses import dataclass
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image, ImageOps
from tqdm import tqdm

from segbench import SegbenchError
from segbench.data import btxrd
from segbench.data.download import EXTRACTED
from segbench.io import atomic_path, write_csv

log = logging.getLogger(__name__)


def load_image(path: Path, scale_to: int) -> tuple[Image.Image, tuple[int, int]]:
    """Decode a greyscale image, EXIF-rotated, JPEG-drafted near its final size.

    Returns:
        The image and its original (height, width) after EXIF rotation.
    """
    try:
        image = Image.open(path)
        w, h = image.size
        scale = scale_to / max(w, h)
        image.draft("L", (math.ceil(w * scale), math.ceil(h * scale)))  # JPEG: decode at 1/2^k size
        rotated = ImageOps.exif_transpose(image)
        orig = (h, w) if rotated.size == image.size else (w, h)
        return rotated.convert("L"), orig
    except (OSError, SyntaxError, ValueError) as exc:  # PIL's errors for truncated / corrupt files
        raise SegbenchError(f"{path}: cannot decode image: {exc}") from None


@dataclass(frozen=True)
class Geometry:
    """Where an (orig_h, orig_w) image lands in the (size, size) canvas."""

    size: int
    scale: float
    height: int
    width: int
    pad_top: int
    pad_left: int

    @classmethod
    def fit(cls, orig_h: int, orig_w: int, size: int) -> "Geometry":
        scale = size / max(orig_h, orig_w)
        h, w = max(1, round(orig_h * scale)), max(1, round(orig_w * scale))
        return cls(size, scale, h, w, (size - h) // 2, (size - w) // 2)

    def place(self, image: Image.Image, resample: int) -> np.ndarray:
        """Resize ``image`` to (height, width) and zero-pad it: (size, size) uint8."""
        out = np.zeros((self.size, self.size), np.uint8)
        out[self.pad_top:self.pad_top + self.height, self.pad_left:self.pad_left + self.width] = \
            np.asarray(image.resize((self.width, self.height), resample))
        return out


def process_sample(sample: btxrd.Sample, size: int) -> tuple[np.ndarray, np.ndarray, dict]:
    """One sample -> image (size, size) uint8, mask (size, size) uint8 in {0, 1}, meta row."""
    image, (orig_h, orig_w) = load_image(sample.image_path, size)
    if sample.annotation_path is None:
        mask = np.zeros((orig_h, orig_w), np.uint8)
    else:
        mask = btxrd.annotation_mask(sample.annotation_path, orig_h, orig_w)
    geometry = Geometry.fit(orig_h, orig_w, size)
    area = int(mask.sum())
    row = {"sample_id": sample.sample_id, "image_file": sample.image_path.name,
           **{k: sample.meta.get(k) for k in ("tumor_type", "benign_malignant", "center", "view", "bone",
                                               "limb", "age", "gender")},
           "orig_h": orig_h, "orig_w": orig_w, "scale": geometry.scale,
           "pad_top": geometry.pad_top, "pad_left": geometry.pad_left,
           "lesion_area_px": area, "lesion_ratio": area / (orig_h * orig_w)}
    return (geometry.place(image, Image.Resampling.BILINEAR),
            geometry.place(Image.fromarray(mask), Image.Resampling.NEAREST), row)


def preprocess(raw_dir: Path, out_dir: Path, size: int, include_normal: bool, workers: int = 1) -> pd.DataFrame:
    """Write ``images.npy`` (N, S, S), ``masks.npy`` (N, S, S) and ``meta.csv`` into ``out_dir``.

    Arrays are filled in memory-mapped temporary files (bounded memory) and renamed into
    place only when every sample has been processed; a bad file raises before any output.
    """
    samples = btxrd.list_samples(btxrd.find_root(raw_dir / EXTRACTED), include_normal)
    out_dir.mkdir(parents=True, exist_ok=True)
    rows = []
    with atomic_path(out_dir / "images.npy") as images_tmp, atomic_path(out_dir / "masks.npy") as masks_tmp:
        images = np.lib.format.open_memmap(images_tmp, "w+", np.uint8, (len(samples), size, size))
        masks = np.lib.format.open_memmap(masks_tmp, "w+", np.uint8, (len(samples), size, size))
        with ProcessPoolExecutor(workers) if workers > 1 else contextlib.nullcontext() as pool:
            results = (pool.map if pool else map)(process_sample, samples, [size] * len(samples))
            for i, (image, mask, row) in enumerate(tqdm(results, total=len(samples), desc="preprocess")):
                images[i], masks[i] = image, mask
                rows.append(row)
        images.flush(), masks.flush()
        del images, masks
        meta = pd.DataFrame(rows)
        write_csv(out_dir / "meta.csv", meta)
    log.info("preprocessed %d images to %dx%d in %s", len(samples), size, size, out_dir)
    return meta
