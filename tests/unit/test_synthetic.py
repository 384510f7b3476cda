import hashlib
import io
import json
import time
import zipfile

import pandas as pd
import pytest

from segbench.data import synthetic
from segbench.data.btxrd import COLUMNS, SUBTYPES

pytestmark = pytest.mark.data  # the data stages: make test runs them on pandas 2 as well


def build(tmp_path, name="a.zip", **kw):
    path = tmp_path / name
    synthetic.build_archive(path, **{"n_images": 30, "normal_fraction": 0.2, "seed": 3, **kw})
    return path


def test_archive_has_btxrd_layout(tmp_path):
    with zipfile.ZipFile(build(tmp_path)) as archive:
        names = archive.namelist()
        table = pd.read_excel(io.BytesIO(archive.read("BTXRD/dataset.xlsx")))
        notes = {n: json.loads(archive.read(n)) for n in names if n.startswith("BTXRD/Annotations/")}
    images = [n for n in names if n.startswith("BTXRD/images/")]
    assert len(images) == 30 and images[0] == "BTXRD/images/IMG000001.jpeg"
    assert any(n.endswith(".jpg") for n in images) and any(n.endswith(".jpeg") for n in images)
    assert list(table.columns) == COLUMNS and len(COLUMNS) == 37
    tumours = table[table["tumor"] == 1]
    assert len(notes) == len(tumours) == 24  # normals have no JSON
    assert set(tumours["image_id"].str.split(".").str[0]) == {n.split("/")[-1][:-5] for n in notes}
    assert (table[SUBTYPES].sum(axis=1) == table["tumor"]).all()
    assert ((table["benign"] + table["malignant"]) == table["tumor"]).all()
    for note in notes.values():
        assert set(note) == {"version", "flags", "shapes", "imagePath", "imageData", "imageHeight", "imageWidth"}
        kinds = [s["shape_type"] for s in note["shapes"]]
        assert kinds.count("polygon") == kinds.count("rectangle") >= 1
        assert {s["label"] for s in note["shapes"]} <= set(SUBTYPES)


def test_archive_is_byte_reproducible_and_seeded(tmp_path):
    digest = lambda p: hashlib.sha256(p.read_bytes()).hexdigest()  # noqa: E731
    first = digest(build(tmp_path, "a.zip"))
    time.sleep(1.1)  # across a clock second: no timestamp may leak into the bytes
    assert first == digest(build(tmp_path, "b.zip"))
    assert digest(build(tmp_path, "a.zip")) != digest(build(tmp_path, "c.zip", seed=4))


def test_subtypes_look_different(tmp_path):
    import numpy as np

    rng = np.random.default_rng(0)
    ratios = {}
    for subtype in ("osteosarcoma", "osteofibroma"):
        sizes = []
        for _ in range(10):
            image, lesions = synthetic.render_image(rng, subtype)
            sizes.append(sum(synthetic._fill(image.shape, p).sum() for p in lesions) / image.size)
        ratios[subtype] = np.mean(sizes)
    assert ratios["osteosarcoma"] > 3 * ratios["osteofibroma"]


def _by_center(path) -> dict[int, list[bytes]]:
    with zipfile.ZipFile(path) as archive:
        table = pd.read_excel(io.BytesIO(archive.read("BTXRD/dataset.xlsx")))
        return {c: [archive.read(f"BTXRD/images/{n}") for n in group["image_id"]]
                for c, group in table.groupby("center")}


def test_each_center_has_its_own_look_and_a_dataset_can_draw_from_some_centers(tmp_path):
    import numpy as np
    from PIL import Image
    from scipy import ndimage

    shifted, alike = _by_center(build(tmp_path)), _by_center(build(tmp_path, "b.zip", center_shift=0.0))
    assert set(shifted) == {1, 2, 3}
    assert shifted[1] == alike[1] and shifted[3] != alike[3]  # centre 1 is the reference look

    def noise(images):  # grey-level std of the finest detail (the scanner's noise)
        return np.mean([np.std(a - ndimage.median_filter(a, 3)) for a in
                        (np.asarray(Image.open(io.BytesIO(b)), float) for b in images)])

    assert noise(shifted[3]) > 1.5 * noise(shifted[1]) and noise(alike[3]) < 1.2 * noise(alike[1])
    assert set(_by_center(build(tmp_path, "c.zip", centers=[3]))) == {3}
