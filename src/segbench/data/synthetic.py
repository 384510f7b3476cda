"""The embedded demo dataset: synthetic limb X-rays written in BTXRD's exact on-disk format.

The archive holds ``BTXRD/images/IMG000001.jpeg`` ..., one LabelMe JSON per tumour image
under ``BTXRD/Annotations/`` (a polygon and its bounding rectangle per lesion, labelled
with the subtype) and ``BTXRD/dataset.xlsx`` with BTXRD's 37 columns. Normal images have
no JSON. Subtypes follow BTXRD's frequencies, and each has its own size, contrast and
texture, so the task is learnable but not trivial. Everything derives from one seed and
the archive is byte-for-byte reproducible.

Each image comes from one of BTXRD's three centres (the ``center`` column), and each centre has its own
appearance (``CENTERS``: its scanner's intensity curve, contrast, noise and blur, and its lesion-size mix), so
a model trained on two centres and tested on the third meets a real domain shift. ``center_shift`` scales how
far the centres are from centre 1 (0: all alike); ``centers`` picks the centres a dataset draws from, so two
synthetic datasets can differ in domain.
"""

from __future__ import annotations

import io
import json
import zipfile
from dataclasses import astuple, dataclass
from pathlib import Path

import numpy as np
import openpyxl
from PIL import Image, ImageDraw
from scipy import ndimage

from segbench.data.btxrd import BONES, COLUMNS, SUBTYPES
from segbench.io import ZIP_DATE, xlsx_bytes

SUBTYPE_FREQ = np.array([754, 263, 206, 93, 44, 50, 115, 297, 45], float)  # BTXRD counts, in SUBTYPES order
MALIGNANT = {"osteosarcoma", "other mt"}
UPPER = {"hand", "ulna", "radius", "humerus"}


@dataclass(frozen=True)
class LesionLook:
    """How a subtype looks: size (fraction of bone width), intensity shift, texture, count."""

    size: tuple[float, float]
    contrast: float          # added to the bone intensity; < 0 is lytic (darker)
    texture: float           # std of the lesion's internal texture
    outside: bool            # grows out of the cortex rather than inside the medulla
    count: tuple[int, int] = (1, 1)


LOOKS = {
    "osteochondroma": LesionLook((0.9, 1.5), +45, 10, True),
    "multiple osteochondromas": LesionLook((0.6, 1.0), +45, 10, True, (2, 3)),
    "simple bone cyst": LesionLook((0.6, 0.9), -70, 6, False),
    "giant cell tumor": LesionLook((0.7, 1.1), -55, 22, False),
    "osteofibroma": LesionLook((0.4, 0.6), -40, 8, False),
    "synovial osteochondroma": LesionLook((0.35, 0.55), +55, 8, True, (2, 3)),
    "other bt": LesionLook((0.5, 1.0), -45, 14, False),
    "osteosarcoma": LesionLook((1.2, 1.9), +25, 35, True),
    "other mt": LesionLook((0.7, 1.3), -35, 25, False),
}


def _blob(rng: np.random.Generator, center, radius: float, n: int = 14) -> np.ndarray:
    """An irregular closed polygon (n, 2) of (x, y) points around ``center``."""
    angles = np.sort(rng.uniform(0, 2 * np.pi, n))
    aspect = rng.uniform(0.6, 1.0)
    r = radius * rng.uniform(0.75, 1.15, n)
    theta = rng.uniform(0, np.pi)
    x, y = r * np.cos(angles), aspect * r * np.sin(angles)
    rot = np.array([[np.cos(theta), -np.sin(theta)], [np.sin(theta), np.cos(theta)]])
    return np.stack([x, y], 1) @ rot.T + np.asarray(center)


def _fill(shape: tuple[int, int], polygon: np.ndarray) -> np.ndarray:
    """Rasterise a polygon to a float mask of ``shape`` (h, w)."""
    canvas = Image.new("L", (shape[1], shape[0]), 0)
    ImageDraw.Draw(canvas).polygon([tuple(p) for p in polygon], fill=255)
    return np.asarray(canvas, np.float32) / 255.0


@dataclass(frozen=True)
class CenterLook:
    """One centre's appearance: gamma of the intensity curve, contrast about mid-grey, noise std (grey levels),
    blur sigma (px) and the scale of its lesions."""

    gamma: float = 1.0
    contrast: float = 1.0
    noise: float = 7.0
    blur: float = 0.7
    lesion_scale: float = 1.0

    def shifted(self, amount: float) -> CenterLook:
        """This look moved ``amount`` of the way from centre 1's (0: centre 1's look, 1: its own)."""
        base = CENTERS[1]
        return CenterLook(*(b + amount * (own - b) for b, own in zip(astuple(base), astuple(self))))


CENTERS = {1: CenterLook(),
           2: CenterLook(gamma=0.75, contrast=0.9, noise=11, blur=1.0, lesion_scale=0.9),
           3: CenterLook(gamma=1.7, contrast=0.6, noise=18, blur=1.8, lesion_scale=0.7)}


def _bone(rng, h: int, w: int):
    """Draw soft tissue and one long bone; return (image, bone mask, axis point, direction, width)."""
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    angle = rng.uniform(-0.35, 0.35)                      # bone axis roughly vertical
    direction = np.array([np.sin(angle), np.cos(angle)])  # (dx, dy)
    cx = w * rng.uniform(0.35, 0.65)
    across = (xx - cx) * direction[1] - (yy - h / 2) * direction[0]
    along = (xx - cx) * direction[0] + (yy - h / 2) * direction[1]
    width = w * rng.uniform(0.16, 0.24)
    tissue = np.clip(1.6 - np.abs(across) / (width * 1.6), 0, 1)
    shaft = np.abs(across) < width / 2 * (1 + 0.5 * np.exp(-((np.abs(along) - h * 0.42) / (h * 0.08)) ** 2))
    bone = ndimage.gaussian_filter(shaft.astype(np.float32), 1.0)
    cortex = bone * np.clip(np.abs(across) / (width / 2), 0, 1) ** 3
    image = 25 + 55 * tissue + 110 * bone + 60 * cortex
    return image, bone, np.array([cx, h / 2]), direction, width


def render_image(rng: np.random.Generator, subtype: str | None, look: CenterLook = CenterLook()):
    """One synthetic X-ray as centre ``look`` shows it.

    Returns:
        image: (H, W) uint8; lesions: list of (n, 2) polygons in (x, y) pixel coords.
    """
    h, w = int(rng.integers(160, 257)), int(rng.integers(128, 225))
    image, bone, axis_point, direction, width = _bone(rng, h, w)
    lesions = []
    if subtype is not None:
        lesion = LOOKS[subtype]
        normal = np.array([direction[1], -direction[0]])
        for _ in range(int(rng.integers(lesion.count[0], lesion.count[1] + 1))):
            along = rng.uniform(-0.3, 0.3) * h
            if lesion.outside:  # from the cortex outwards, on either side
                offset = width * rng.uniform(0.45, 0.8) * rng.choice([-1, 1])
            else:
                offset = rng.uniform(-0.2, 0.2) * width
            center = axis_point + direction * along + normal * offset
            radius = width / 2 * rng.uniform(*lesion.size) * look.lesion_scale
            polygon = np.clip(_blob(rng, center, radius), 0, [w - 1, h - 1])
            alpha = ndimage.gaussian_filter(_fill((h, w), polygon), 0.8)
            texture = ndimage.gaussian_filter(rng.normal(0, lesion.texture, (h, w)), 1.2) * 2.5
            base = 150.0 if lesion.outside else image
            image = image * (1 - alpha) + (base + lesion.contrast + texture) * alpha
            lesions.append(polygon)
    image = 255 * (np.clip(image, 0, 255) / 255) ** look.gamma  # the centre's intensity curve and contrast
    image = 128 + look.contrast * (image - 128)
    image = ndimage.gaussian_filter(image, look.blur) + rng.normal(0, look.noise, (h, w))
    return np.clip(image, 0, 255).astype(np.uint8), lesions


def labelme(file_name: str, label: str, lesions: list[np.ndarray], h: int, w: int) -> dict:
    """A LabelMe annotation: one polygon and its bounding rectangle per lesion."""
    shapes = []
    for polygon in lesions:
        points = np.round(polygon, 2).tolist()
        (x0, y0), (x1, y1) = polygon.min(0).round(2), polygon.max(0).round(2)
        shapes.append({"label": label, "points": points, "group_id": None,
                       "shape_type": "polygon", "flags": {}})
        shapes.append({"label": label, "points": [[x0, y0], [x1, y1]], "group_id": None,
                       "shape_type": "rectangle", "flags": {}})
    return {"version": "5.1.1", "flags": {}, "shapes": shapes, "imagePath": f"../images/{file_name}",
            "imageData": None, "imageHeight": h, "imageWidth": w}


def metadata_row(rng: np.random.Generator, image_id: str, subtype: str | None, center: int) -> list:
    """One dataset.xlsx row in COLUMNS order."""
    row = dict.fromkeys(COLUMNS, 0)
    bone = BONES[int(rng.integers(len(BONES)))]
    row.update({"image_id": image_id, "center": center, "age": int(rng.integers(5, 80)),
                "gender": str(rng.choice(["M", "F"])), bone: 1})
    row["upper limb" if bone in UPPER else "pelvis" if bone == "hip bone" else "lower limb"] = 1
    row[str(rng.choice(["frontal", "lateral", "oblique"], p=[0.6, 0.3, 0.1]))] = 1
    if subtype is not None:
        row.update({"tumor": 1, subtype: 1, "malignant" if subtype in MALIGNANT else "benign": 1})
    return [row[c] for c in COLUMNS]


def _xlsx_bytes(rows: list[list]) -> bytes:
    """dataset.xlsx, byte-reproducible."""
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.append(COLUMNS)
    for row in rows:
        sheet.append(row)
    return xlsx_bytes(book)


def build_archive(path: str | Path, n_images: int, normal_fraction: float, seed: int,
                  centers: tuple[int, ...] = tuple(CENTERS), center_shift: float = 1.0) -> None:
    """Write the synthetic BTXRD-format zip to ``path`` (not atomic: callers use a temp path); its images come
    from ``centers``, each looking as ``CENTERS`` says, moved ``center_shift`` of the way from centre 1."""
    unknown = sorted(set(centers) - set(CENTERS))
    if unknown or not centers:
        raise ValueError(f"synthetic.centers: {unknown or 'none'}; the centres are {list(CENTERS)}")
    rng = np.random.default_rng(seed)
    n_normal = int(round(n_images * normal_fraction))
    subtypes = [None] * n_normal + list(rng.choice(SUBTYPES, n_images - n_normal, p=SUBTYPE_FREQ / SUBTYPE_FREQ.sum()))
    rng.shuffle(subtypes)
    rows = []
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as archive:
        def put(name: str, data: bytes) -> None:
            archive.writestr(zipfile.ZipInfo(f"BTXRD/{name}", ZIP_DATE), data)

        for index, subtype in enumerate(subtypes, start=1):
            image_rng = np.random.default_rng([seed, index])
            center = int(np.random.default_rng([seed, index, 1]).choice(centers))  # apart: images stay as they were
            file_name = f"IMG{index:06d}.{'jpg' if index % 25 == 0 else 'jpeg'}"  # BTXRD mixes both
            image, lesions = render_image(image_rng, subtype, CENTERS[center].shifted(center_shift))
            jpeg = io.BytesIO()
            Image.fromarray(image).save(jpeg, "JPEG", quality=92)
            put(f"images/{file_name}", jpeg.getvalue())
            if subtype is not None:
                note = labelme(file_name, subtype, lesions, *image.shape)
                put(f"Annotations/IMG{index:06d}.json", json.dumps(note, indent=1).encode())
            rows.append(metadata_row(image_rng, file_name, subtype, center))
        put("dataset.xlsx", _xlsx_bytes(rows))
