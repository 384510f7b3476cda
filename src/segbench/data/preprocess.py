"""The `preprocess` stage: annotations to masks, then resize-longest-side and zero-pad.

As in the thesis (section 3.3.1): the longest side goes to ``size`` with the aspect kept,
then black pixels pad the image to ``size x size`` (centred). ``scale`` and the pads are
stored so that any prediction maps back to the original image, and the masks at their
original size go into one file, ``masks_original.zip`` (a PNG per sample), for evaluation at the
original resolution.
"""

from __future__ import annotations

import contextlib
import logging
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image
from tqdm import tqdm

from segbench import SegbenchError, paths
from segbench.data import readers
from segbench.data.audit import image_hashes
from segbench.data.download import EXTRACTED, STAMP
from segbench.data.images import Geometry, load_image
from segbench.data.sample import Sample
from segbench.io import MaskZip, atomic_path, png_bytes, write_csv, write_json
from segbench.labels import IGNORE

log = logging.getLogger(__name__)


def process_sample(sample: Sample, size: int, dataset: dict, mode: str, class_names: list[str]):
    """One sample -> (image (size, size[, 3]) uint8, mask (size, size) uint8, original mask as PNG bytes, its
    perceptual hashes (``audit.image_hashes``), meta row), or the reason it is skipped (a string) where the dataset
    skips unreadable images rather than failing."""
    reader = readers.reader(dataset)
    try:
        image, (orig_h, orig_w) = load_image(sample.image_path, mode, scale_to=size)
    except SegbenchError as exc:
        if reader.SKIP_UNREADABLE:
            return str(exc)
        raise
    mask = reader.load_mask(sample, orig_h, orig_w, dataset)
    geometry = Geometry.fit(orig_h, orig_w, size)
    area = int(((mask > 0) & (mask != IGNORE)).sum())
    row = {"sample_id": sample.sample_id, "image_file": sample.image_path.name,
           **{k: v for k, v in sample.meta.items() if k != "sample_id"},
           "orig_h": orig_h, "orig_w": orig_w, "scale": geometry.scale,
           "pad_top": geometry.pad_top, "pad_left": geometry.pad_left,
           "lesion_area_px": area, "lesion_ratio": area / (orig_h * orig_w),
           "classes_present": "+".join(class_names[c] for c in range(1, len(class_names)) if (mask == c).any())
           or "none"}
    return (geometry.place(image, Image.Resampling.BILINEAR),
            geometry.place(Image.fromarray(mask), Image.Resampling.NEAREST), png_bytes(mask), image_hashes(image), row)


def size_buckets(ratio: pd.Series) -> tuple[pd.Series, list[float]]:
    """small / medium / large by the tertiles of the lesion ratio over images with a lesion; none without.

    Tertiles, not fixed cut-offs, because lesion sizes differ by orders of magnitude between datasets.
    """
    has_lesion = ratio > 0
    edges = list(ratio[has_lesion].quantile([1 / 3, 2 / 3])) if has_lesion.any() else [0.0, 0.0]
    names = np.array(["small", "medium", "large"])[np.digitize(ratio, edges, right=True)]
    return pd.Series(np.where(has_lesion, names, "none"), index=ratio.index), edges


def _compact(path: Path, keep: list[int], shape: tuple[int, ...]) -> None:
    """Rewrite the .npy at ``path`` with only the rows ``keep`` (after skipped samples)."""
    source = np.load(path, mmap_mode="r")
    with atomic_path(path) as tmp:
        out = np.lib.format.open_memmap(tmp, "w+", np.uint8, (len(keep), *shape))
        for j, i in enumerate(keep):
            out[j] = source[i]
        out.flush()
        del out
    del source


def preprocess(raw_dir: Path, out_dir: Path, size: int, dataset: dict, workers: int = 1) -> pd.DataFrame:
    """Write ``images.npy`` (N, S, S) grey or (N, S, S, 3) RGB, ``masks.npy`` (N, S, S), ``meta.csv``,
    ``masks_original.zip`` (each mask at its image's size, a PNG named by its sample id), ``hashes.npy``
    (N, 10, 4) uint64 (each image's perceptual hashes, for the leakage audit) and ``info.json`` (class names,
    channels, strata, default stratification and grouping, the images skipped and why, the source archive's
    checksum).

    Arrays are filled in memory-mapped temporary files (bounded memory) and renamed into
    place only when every sample has been processed; a bad file raises before any output.
    """
    listing = readers.reader(dataset).describe(raw_dir / EXTRACTED, dataset)
    samples = listing.samples
    out_dir.mkdir(parents=True, exist_ok=True)
    image_shape = (size, size) if listing.mode == "L" else (size, size, 3)
    rows, keep, hashes, skipped = [], [], [], []
    with atomic_path(out_dir / paths.IMAGES) as images_tmp, atomic_path(out_dir / paths.MASKS) as masks_tmp, \
            MaskZip.writer(out_dir / paths.ORIGINAL_MASKS) as add_original:
        images = np.lib.format.open_memmap(images_tmp, "w+", np.uint8, (len(samples), *image_shape))
        masks = np.lib.format.open_memmap(masks_tmp, "w+", np.uint8, (len(samples), size, size))
        n = len(samples)
        with ProcessPoolExecutor(workers) if workers > 1 else contextlib.nullcontext() as pool:
            results = (pool.map if pool else map)(process_sample, samples, [size] * n, [dataset] * n,
                                                  [listing.mode] * n, [listing.class_names] * n)
            for i, result in enumerate(tqdm(results, total=n, desc="preprocess")):
                if isinstance(result, str):
                    log.warning("skipped %s", result)
                    skipped.append({"file": str(samples[i].image_path.name), "reason": result})
                    continue
                images[i], masks[i], original, image_hash, row = result
                add_original(row["sample_id"], original)
                hashes.append(image_hash)
                rows.append(row)
                keep.append(i)
        images.flush(), masks.flush()
        del images, masks
        if not rows:
            raise SegbenchError(f"{raw_dir}: every image was skipped")
        if len(keep) < n:
            _compact(images_tmp, keep, image_shape)
            _compact(masks_tmp, keep, (size, size))
        meta = pd.DataFrame(rows)
        meta["size_bucket"], edges = size_buckets(meta["lesion_ratio"])
        write_csv(out_dir / paths.META, meta)
        with atomic_path(out_dir / paths.HASHES) as tmp, open(tmp, "wb") as handle:
            np.save(handle, np.stack(hashes), allow_pickle=False)
        stamp = raw_dir / EXTRACTED / STAMP
        write_json(out_dir / paths.INFO, {"class_names": listing.class_names, "channels": 1 if listing.mode == "L"
                                           else 3, "strata": listing.strata, "stratify": listing.stratify,
                                           "groups": listing.groups, "skipped": skipped,
                                           "source_checksum": stamp.read_text().strip() if stamp.exists() else None})
    log.info("preprocessed %d images to %dx%d in %s (%d skipped); size buckets at lesion ratio %.4f / %.4f",
             len(rows), size, size, out_dir, n - len(rows), *edges)
    return meta
