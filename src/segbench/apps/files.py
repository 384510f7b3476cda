"""``segbench predict``: image files in, per image a mask PNG, an overlay PNG and a JSON out."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image
from tqdm import tqdm

from segbench import SegbenchError
from segbench.apps import drawing as draw
from segbench.io import atomic_path, write_json

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


def output_names(files: list[Path]) -> dict[Path, str]:
    """Each file's name for its outputs: its path below the folder all the files share, extension kept
    (``a/x.png``, ``a/x.jpeg``, ``b/x.png`` stay three names), so no two inputs write the same output."""
    files = [f.resolve() for f in files]
    root = Path(os.path.commonpath([f.parent for f in files]))
    return {f: f.relative_to(root).as_posix() for f in dict.fromkeys(files)}


def predict_files(predictor: Predictor, files: list[Path], out_dir: Path) -> tuple[list[dict], list[dict]]:
    """Predict each file; per input ``<name>`` (``output_names``) write ``<name>.mask.png`` (original size; class c
    as c * 255 // (K - 1)), ``<name>.overlay.png`` (numbered lesions) and ``<name>.json`` into ``out_dir``,
    then ``summary.json``. A file that does not decode is skipped with a warning naming it.

    Returns:
        (one record per predicted image, one {"image", "reason"} per skipped file).

    Raises:
        SegbenchError: when no file could be predicted.
    """
    records, skipped = [], []
    for path, name in tqdm(output_names(files).items(), desc="predict", disable=len(files) < 2):
        try:
            image, mask, probability = predictor.predict_file(path)
        except SegbenchError as exc:
            log.warning("skipped %s", exc)
            skipped.append({"image": str(path), "reason": str(exc).removeprefix(f"{path}: ")})
            continue
        record = {"image": str(path), **describe(predictor, mask, probability)}
        image = image.resize((mask.shape[1], mask.shape[0]), Image.Resampling.BILINEAR)  # back from draft size
        outputs = {f"{name}.mask.png": draw.mask_image(mask, predictor.classes),
                   f"{name}.overlay.png": draw.annotate(draw.overlay(image, mask), record["lesions"])}
        for output, picture in outputs.items():
            with atomic_path(out_dir / output) as tmp:
                picture.save(tmp, "PNG")
        write_json(out_dir / f"{name}.json", record)
        records.append(record)
    if not records:
        raise SegbenchError("nothing predicted: " + "; ".join(f"{s['image']}: {s['reason']}" for s in skipped))
    write_json(out_dir / "summary.json", {"run": predictor.source, "images": len(records),
                                          "lesions": sum(r["lesion_count"] for r in records), "skipped": skipped})
    return records, skipped
