"""BTXRD on disk: ``BTXRD/images/*.jpe?g``, ``BTXRD/Annotations/*.json`` (LabelMe), ``dataset.xlsx``.

Layout and quirks as documented for figshare article 27865398 (Yao et al., 2025, "A radiograph
dataset for the classification, localization, and segmentation of primary bone tumors").
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image, ImageDraw

from segbench import SegbenchError
from segbench.data.sample import Listing, Sample

log = logging.getLogger(__name__)

BONES = ["hand", "ulna", "radius", "humerus", "foot", "tibia", "fibula", "femur", "hip bone"]
JOINTS = ["ankle-joint", "knee-joint", "hip-joint", "wrist-joint", "elbow-joint", "shoulder-joint"]
SUBTYPES = ["osteochondroma", "multiple osteochondromas", "simple bone cyst", "giant cell tumor",
            "osteofibroma", "synovial osteochondroma", "other bt", "osteosarcoma", "other mt"]
LIMBS = ["upper limb", "lower limb", "pelvis"]
VIEWS = ["frontal", "lateral", "oblique"]
COLUMNS = (["image_id", "center", "age", "gender"] + BONES + JOINTS + ["tumor", "benign", "malignant"]
           + SUBTYPES + LIMBS + VIEWS)
IMAGE_SUFFIXES = (".jpeg", ".jpg", ".JPEG", ".JPG")
SKIP_UNREADABLE = False  # a corrupt X-ray is an error naming the file


def _first_flag(row: pd.Series, names: list[str]) -> str | None:
    """The first of ``names`` flagged 1, or None (blank in meta.csv) when none is: unknown, not a value."""
    hits = [n for n in names if row.get(n, 0) == 1]
    return hits[0] if hits else None


def _cell(row: pd.Series, name: str):
    """A cell's value, None where it is blank (or the column is absent); whole numbers as int."""
    value = row.get(name)
    if value is None or pd.isna(value):
        return None
    return int(value) if isinstance(value, float) and value.is_integer() else value


def read_metadata(xlsx: Path) -> pd.DataFrame:
    """dataset.xlsx as a tidy table, one row per image, indexed by sample_id (file stem).

    Columns: image_id, center, age, gender, tumor_type ('normal' or a subtype),
    benign_malignant, bone, limb, view. An image with two subtype flags keeps the first
    in BTXRD's column order, with a warning naming it. A blank cell, or no flag set among the
    bones, limbs or views, is None (unknown): blank in meta.csv.
    """
    try:
        table = pd.read_excel(xlsx, engine="openpyxl")
    except Exception as exc:  # openpyxl raises many types on a damaged workbook
        raise SegbenchError(f"{xlsx}: cannot read the metadata table: {exc}") from None
    missing = [c for c in ["image_id", "tumor", *SUBTYPES] if c not in table.columns]
    if missing:
        raise SegbenchError(f"{xlsx}: missing columns {missing}")
    table = table.dropna(how="all")  # rows a spreadsheet formatted but left empty
    unnamed = table.index[table["image_id"].isna()]
    if len(unnamed):
        raise SegbenchError(f"{xlsx}: rows {[int(i) + 2 for i in unnamed[:5]]} have no image_id")
    rows = []
    for _, row in table.iterrows():
        subtypes = [s for s in SUBTYPES if row[s] == 1]
        if len(subtypes) > 1:
            log.warning("%s: %s has subtype flags %s; using %r", xlsx.name, row["image_id"], subtypes, subtypes[0])
        tumour = row["tumor"] == 1
        rows.append({
            "sample_id": Path(str(row["image_id"])).stem,
            "image_id": str(row["image_id"]),
            "center": _cell(row, "center"),
            "age": _cell(row, "age"),
            "gender": _cell(row, "gender"),
            "tumor_type": subtypes[0] if tumour and subtypes else "normal",
            "benign_malignant": "malignant" if row.get("malignant", 0) == 1 else "benign" if tumour else "normal",
            "bone": _first_flag(row, BONES),
            "limb": _first_flag(row, LIMBS),
            "view": _first_flag(row, VIEWS),
        })
    return pd.DataFrame(rows).set_index("sample_id")


def find_root(raw_dir: Path) -> Path:
    """The ``BTXRD/`` folder inside an extracted archive."""
    for candidate in (raw_dir / "BTXRD", raw_dir):
        if (candidate / "images").is_dir() and (candidate / "dataset.xlsx").is_file():
            return candidate
    raise SegbenchError(f"{raw_dir}: no BTXRD/ folder with images/ and dataset.xlsx; "
                        "rerun `segbench download`")


def find_image(images: Path, stem: str) -> Path | None:
    for suffix in IMAGE_SUFFIXES:
        if (images / f"{stem}{suffix}").is_file():
            return images / f"{stem}{suffix}"
    return None


def list_samples(extracted: Path, options: dict) -> list[Sample]:
    """Every tumour image (one per top-level annotation), plus normals with ``options['include_normal']``.

    Raises:
        SegbenchError: an annotation naming an image that is not in ``images/``.
    """
    root = find_root(extracted)
    meta = read_metadata(root / "dataset.xlsx")
    samples = []
    for note in sorted((root / "Annotations").glob("*.json")):  # top level only: skips a nested duplicate
        image = find_image(root / "images", note.stem)
        if image is None:
            try:
                named = json.loads(note.read_text()).get("imagePath", note.stem)
            except (ValueError, AttributeError):  # unreadable JSON: name the image by the file's stem
                named = note.stem
            raise SegbenchError(f"{note}: annotates {named!r}, which is not in {root / 'images'}")
        if note.stem not in meta.index:
            raise SegbenchError(f"{note}: image {note.stem} has no row in {root / 'dataset.xlsx'}")
        samples.append(Sample(note.stem, image, note, meta.loc[note.stem].to_dict()))
    if options["include_normal"]:
        for stem, row in meta[meta["tumor_type"] == "normal"].iterrows():
            image = find_image(root / "images", stem)
            if image is None:
                raise SegbenchError(f"{root / 'dataset.xlsx'}: lists {row['image_id']}, "
                                    f"which is not in {root / 'images'}")
            samples.append(Sample(stem, image, None, row.to_dict()))
    if not samples:
        raise SegbenchError(f"{root}: no annotated images found under Annotations/")
    return sorted(samples, key=lambda s: s.sample_id)


def _points(path: Path, index: int, shape: dict) -> np.ndarray:
    """A LabelMe shape's points as an (n, 2) float array, or an error naming the file and the field."""
    if "points" not in shape:
        raise SegbenchError(f"{path}: shapes[{index}] has no 'points'")
    try:
        points = np.asarray(shape["points"], float)
    except (TypeError, ValueError):
        points = np.empty(0)
    if points.ndim != 2 or points.shape[1] != 2 or not np.isfinite(points).all():
        raise SegbenchError(f"{path}: shapes[{index}].points: expected a list of [x, y] numbers, "
                            f"got {str(shape['points'])[:80]}")
    return points


def _declared_size(path: Path, note: dict, key: str, actual: int) -> float:
    value = note.get(key, actual)
    if not isinstance(value, (int, float)) or isinstance(value, bool) or value <= 0:
        raise SegbenchError(f"{path}: {key}: expected a positive number of pixels, got {value!r}")
    return float(value)


def annotation_mask(path: Path, height: int, width: int) -> np.ndarray:
    """Fill a LabelMe annotation's lesions into a (height, width) uint8 mask of 0/1.

    Every polygon is filled; a rectangle counts only when no polygon lies inside it
    (a lesion annotated by its box alone). Points are clipped to the image, and
    rescaled when the JSON's imageWidth/imageHeight differ from the real image.

    Raises:
        SegbenchError: a malformed annotation, naming the file and the field at fault.
    """
    try:
        note = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise SegbenchError(f"{path}: not a LabelMe annotation: {exc}") from None
    if not isinstance(note, dict) or not isinstance(note.get("shapes"), list):
        raise SegbenchError(f"{path}: shapes: expected a list of LabelMe shapes")
    sx = width / _declared_size(path, note, "imageWidth", width)
    sy = height / _declared_size(path, note, "imageHeight", height)
    if abs(sx - sy) > 0.02 * max(sx, sy):
        raise SegbenchError(f"{path}: imageWidth x imageHeight {note.get('imageWidth')}x{note.get('imageHeight')} "
                            f"does not match the image's {width}x{height} aspect")
    canvas = Image.new("L", (width, height), 0)
    draw = ImageDraw.Draw(canvas)
    scaled = [(s.get("shape_type", "polygon") if isinstance(s, dict) else None,
               np.clip(_points(path, i, s if isinstance(s, dict) else {}) * [sx, sy], 0, [width - 1, height - 1]))
              for i, s in enumerate(note["shapes"])]
    polygons = [p for kind, p in scaled if kind == "polygon" and len(p) >= 3]
    for polygon in polygons:
        draw.polygon([tuple(p) for p in polygon], fill=1)
    for kind, box in scaled:
        if kind == "rectangle" and len(box) == 2:
            (x0, y0), (x1, y1) = box.min(0), box.max(0)
            inside = any(((p >= [x0, y0]) & (p <= [x1, y1])).all(1).mean() > 0.5 for p in polygons)
            if not inside:
                draw.rectangle([x0, y0, x1, y1], fill=1)
    return np.asarray(canvas, np.uint8)


def load_mask(sample: Sample, height: int, width: int, options: dict) -> np.ndarray:
    """The sample's lesion mask (height, width) in {0, 1}; empty for a normal image."""
    if sample.annotation_path is None:
        return np.zeros((height, width), np.uint8)
    return annotation_mask(sample.annotation_path, height, width)


def describe(extracted: Path, options: dict) -> Listing:
    """X-rays, read as greyscale whatever their JPEG's colour mode; background and tumour."""
    return Listing(list_samples(extracted, options), ["background", "tumour"], "L",
                   ["tumor_type", "benign_malignant", "size_bucket", "center", "view"], "tumor_type",
                   groups=["center", "age", "gender", "tumor_type", "bone"])  # no patient id: this stands for one
