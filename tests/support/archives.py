"""Pieces of a BTXRD archive in its real format: JPEG X-rays, LabelMe annotations, rows of dataset.xlsx."""

from __future__ import annotations

import io
import json

import numpy as np
from PIL import Image

from segbench.data.btxrd import COLUMNS


def jpeg(size=(60, 40), mode="L", exif_orientation=None) -> bytes:
    image = Image.fromarray(np.random.default_rng(sum(size)).integers(0, 255, (size[1], size[0], 3), np.uint8))
    out = io.BytesIO()
    exif = Image.Exif()
    if exif_orientation:
        exif[0x0112] = exif_orientation
    image.convert(mode).save(out, "JPEG", exif=exif)
    return out.getvalue()


def polygon(x0, y0, x1, y1, label="osteosarcoma"):
    return {"label": label, "points": [[x0, y0], [x1, y0], [x1, y1], [x0, y1]], "shape_type": "polygon",
            "group_id": None, "flags": {}}


def labelme(shapes, width=60, height=40, name="IMG000001.jpeg"):
    return json.dumps({"version": "5.0.1", "flags": {}, "shapes": shapes, "imagePath": name, "imageData": None,
                       "imageHeight": height, "imageWidth": width}).encode()


def row(image_id, subtypes=(), **extra):
    values = dict.fromkeys(COLUMNS, 0)
    values.update(image_id=image_id, center=1, age=30, gender="M", femur=1, **{"lower limb": 1, "frontal": 1})
    for subtype in subtypes:
        values.update({subtype: 1, "tumor": 1, "malignant" if subtype == "osteosarcoma" else "benign": 1})
    values.update(extra)
    return values
