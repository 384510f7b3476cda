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


def btxrd_with_blanks(path, n_images: int = 54, normal_fraction: float = 1 / 6) -> str:
    """The synthetic BTXRD-format zip at ``path`` with the published archive's blank cells: every 6th row, from a
    different first row per column, leaves center, age, gender, its bone, its limb or its view blank; every 3rd
    normal image leaves its tumour flags blank too. Returns the zip's "sha256:<hex>"."""
    import hashlib
    import zipfile

    import openpyxl

    from segbench.data import btxrd, synthetic

    synthetic.build_archive(path, n_images, normal_fraction, seed=3)
    with zipfile.ZipFile(path) as archive:
        files = {info.filename: archive.read(info) for info in archive.infolist()}
    book = openpyxl.load_workbook(io.BytesIO(files["BTXRD/dataset.xlsx"]))
    sheet = book.active
    column = {name: i + 1 for i, name in enumerate(btxrd.COLUMNS)}
    blanks = [["center"], ["age"], ["gender"], btxrd.BONES, btxrd.LIMBS, btxrd.VIEWS]
    tumour_flags = ["tumor", "benign", "malignant", *btxrd.SUBTYPES]
    normals = 0
    for r in range(2, sheet.max_row + 1):
        for k, names in enumerate(blanks):
            if (r - 2) % 6 == k:
                for name in names:
                    sheet.cell(r, column[name]).value = None
        if sheet.cell(r, column["tumor"]).value == 0:
            normals += 1
            if normals % 3 == 1:
                for name in tumour_flags:
                    sheet.cell(r, column[name]).value = None
    out = io.BytesIO()
    book.save(out)
    files["BTXRD/dataset.xlsx"] = out.getvalue()
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    return "sha256:" + hashlib.sha256(path.read_bytes()).hexdigest()
