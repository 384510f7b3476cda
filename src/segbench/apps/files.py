"""``segbench predict``: image files in, per image a mask PNG, an overlay PNG and a JSON out."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image
from tqdm import tqdm

from segbench import SegbenchError
from segbench.apps import drawing as draw
from segbench.io import atomic_path

if TYPE_CHECKING:  # the predictor imports torch: files are listed and names checked before it loads
    from segbench.predict.predictor import Predictor

log = logging.getLogger(__name__)
SUFFIXES = {".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".dcm", ".dicom"}


def image_files(inputs: list[Path]) -> list[Path]:
    """The files named, and the image files under the folders named (recursively, sorted).

    Raises:
        SegbenchError: a path that does not exist, or nothing to predict.
    """
    files = []
    for path in map(Path, inputs):
        if path.is_dir():
            files += sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in SUFFIXES)
        elif path.is_file():
            files.append(path)
        else:
            raise SegbenchError(f"{path}: no such file or folder")
    if not files:
        raise SegbenchError(f"no image files ({', '.join(sorted(SUFFIXES))}) in {[str(p) for p in inputs]}")
    return files


def describe(predictor: Predictor, mask: np.ndarray, probability: np.ndarray) -> dict:
    """The JSON record of one prediction: size, lesion count and each lesion."""
    found = draw.lesions(mask, probability, predictor.class_names, predictor.postprocessing.get("min_fraction", 1e-4))
    return {"width": int(mask.shape[1]), "height": int(mask.shape[0]), "run": predictor.source,
            "postprocessing": predictor.postprocessing["name"], "lesion_count": len(found), "lesions": found}


def predict_files(predictor: Predictor, files: list[Path], out_dir: Path) -> list[dict]:
    """Predict each file; write ``<stem>_mask.png`` (original size; class c as c * 255 // (K - 1)),
    ``<stem>_overlay.png`` and ``<stem>.json`` into ``out_dir``. A file that does not decode is skipped
    with a warning naming it (an error when it is the only one)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    records, stems = [], set()
    for path in tqdm(files, desc="predict", disable=len(files) < 2):
        try:
            image, mask, probability = predictor.predict_file(path)
        except SegbenchError as exc:
            if len(files) == 1:
                raise
            log.warning("skipped %s", exc)
            continue
        stem = path.stem if path.stem not in stems else f"{path.stem}_{len(stems)}"
        stems.add(stem)
        record = {"image": str(path), **describe(predictor, mask, probability)}
        image = image.resize((mask.shape[1], mask.shape[0]), Image.Resampling.BILINEAR)  # back from draft size
        outputs = {f"{stem}_mask.png": draw.mask_image(mask, predictor.classes),
                   f"{stem}_overlay.png": draw.annotate(draw.overlay(image, mask), record["lesions"])}
        for name, picture in outputs.items():
            with atomic_path(out_dir / name) as tmp:
                picture.save(tmp, "PNG")
        with atomic_path(out_dir / f"{stem}.json") as tmp:
            tmp.write_text(json.dumps(record, indent=2) + "\n")
        records.append(record)
    return records
