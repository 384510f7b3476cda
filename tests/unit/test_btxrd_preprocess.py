import json
import shutil

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from segbench import SegbenchError
from segbench.data import btxrd, synthetic
from segbench.data.download import EXTRACTED, extract
from segbench.data.images import Geometry
from segbench.data.preprocess import preprocess
from segbench.io import MaskZip

pytestmark = pytest.mark.data  # the data stages: make test runs them on pandas 2 as well


@pytest.fixture
def raw(tmp_path):
    """data/raw/synthetic with a small extracted synthetic archive."""
    raw = tmp_path / "raw"
    raw.mkdir()
    synthetic.build_archive(raw / "a.zip", n_images=16, normal_fraction=0.25, seed=1)
    extract([raw / "a.zip"], ["sha256:test"], raw / EXTRACTED)
    return raw


def note(shapes, w=40, h=20):
    return {"shapes": shapes, "imageWidth": w, "imageHeight": h}


def write(tmp_path, data):
    path = tmp_path / "IMG000001.json"
    path.write_text(json.dumps(data))
    return path


def test_polygons_fill_and_box_only_when_no_polygon(tmp_path):
    square = {"shape_type": "polygon", "points": [[2, 2], [9, 2], [9, 9], [2, 9]], "label": "Osteosarcoma"}
    its_box = {"shape_type": "rectangle", "points": [[1, 1], [10, 10]], "label": "osteosarcoma"}
    lone_box = {"shape_type": "rectangle", "points": [[20, 5], [29, 14]], "label": "OTHER MT"}
    mask = btxrd.annotation_mask(write(tmp_path, note([square, its_box, lone_box])), 20, 40)
    assert mask[2:10, 2:10].all() and not mask[1, 1] and not mask[10, 10]  # its box is not filled
    assert mask[5:15, 20:30].all()  # a lesion with only a box
    assert mask.sum() == 64 + 100


def test_points_are_clipped_and_rescaled(tmp_path):
    outside = {"shape_type": "polygon", "points": [[-5, -5], [100, -5], [100, 100], [-5, 100]], "label": "x"}
    assert btxrd.annotation_mask(write(tmp_path, note([outside])), 20, 40).all()
    half = {"shape_type": "polygon", "points": [[0, 0], [19, 0], [19, 9], [0, 9]], "label": "x"}
    mask = btxrd.annotation_mask(write(tmp_path, note([half], w=20, h=10)), 20, 40)  # JSON made at half size
    assert mask[:19, :39].all()
    with pytest.raises(SegbenchError, match="does not match the image"):
        btxrd.annotation_mask(write(tmp_path, note([half], w=20, h=20)), 20, 40)


def test_geometry_keeps_aspect_and_centres():
    g = Geometry.fit(orig_h=300, orig_w=150, size=64)
    assert (g.height, g.width, g.pad_top, g.pad_left) == (64, 32, 0, 16)
    out = g.place(Image.new("L", (150, 300), 200), Image.Resampling.BILINEAR)
    assert out[:, 16:48].min() == 200 and out[:, :16].max() == 0 and out[:, 48:].max() == 0


def test_preprocess_writes_the_data_contract(raw, tmp_path):
    out = tmp_path / "processed"
    meta = preprocess(raw, out, size=32, dataset={"name": "synthetic", "include_normal": False})
    images, masks = np.load(out / "images.npy"), np.load(out / "masks.npy")
    assert images.shape == masks.shape == (12, 32, 32) and images.dtype == masks.dtype == np.uint8
    assert set(np.unique(masks)) == {0, 1}
    saved = pd.read_csv(out / "meta.csv")
    assert len(saved) == 12 and {"sample_id", "image_file", "tumor_type", "benign_malignant", "center", "view",
                                 "bone", "orig_h", "orig_w", "scale", "pad_top", "pad_left", "lesion_area_px",
                                 "lesion_ratio"} <= set(saved.columns)
    assert (saved["lesion_area_px"] > 0).all() and (saved["tumor_type"] != "normal").all()
    row = saved.iloc[0]
    assert row["scale"] == pytest.approx(32 / max(row["orig_h"], row["orig_w"]))
    with_normals = preprocess(raw, tmp_path / "all", size=32, dataset={"name": "synthetic", "include_normal": True})
    normals = with_normals[with_normals.tumor_type == "normal"]
    assert len(with_normals) == 16 and (normals["lesion_area_px"] == 0).all()
    assert len(meta) == 12


def test_corrupt_image_names_the_file_and_writes_nothing(raw, tmp_path):
    root = raw / EXTRACTED / "BTXRD"
    annotated = sorted((root / "Annotations").glob("*.json"))[0].stem
    victim = btxrd.find_image(root / "images", annotated)
    victim.write_bytes(victim.read_bytes()[:200])  # truncated JPEG
    out = tmp_path / "processed"
    with pytest.raises(SegbenchError, match=rf"{victim.name}: cannot decode image"):
        preprocess(raw, out, size=32, dataset={"name": "synthetic", "include_normal": False})
    assert not out.exists() or list(out.iterdir()) == []


def test_annotation_naming_a_missing_image(raw, tmp_path):
    root = raw / EXTRACTED / "BTXRD"
    note_path = sorted((root / "Annotations").glob("*.json"))[0]
    shutil.copy(note_path, root / "Annotations" / "IMG999999.json")
    out = tmp_path / "processed"
    with pytest.raises(SegbenchError, match=r"IMG999999.json: annotates .* not in"):
        preprocess(raw, out, size=32, dataset={"name": "synthetic", "include_normal": False})
    assert not out.exists() or list(out.iterdir()) == []


@pytest.mark.parametrize("note, message", [
    ({"shapes": [{"label": "x", "shape_type": "polygon"}]}, r"shapes\[0\] has no 'points'"),
    ({"shapes": [{"label": "x", "points": [[1, 2], ["a"]]}]}, r"shapes\[0\].points: expected a list of \[x, y\]"),
    ({"shapes": [], "imageWidth": 0}, r"imageWidth: expected a positive number of pixels, got 0"),
    ({"shapes": [], "imageHeight": "tall"}, r"imageHeight: expected a positive number of pixels, got 'tall'"),
    ({"shapes": "none"}, r"shapes: expected a list of LabelMe shapes"),
    ([1, 2], r"shapes: expected a list"),
])
def test_malformed_labelme_names_the_file_and_the_field(tmp_path, note, message):
    path = tmp_path / "IMG000001.json"
    path.write_text(json.dumps(note))
    with pytest.raises(SegbenchError, match=rf"IMG000001.json: {message}"):
        btxrd.annotation_mask(path, 40, 60)


def test_original_masks_are_kept_in_one_compressed_file(raw, tmp_path):
    out = tmp_path / "processed"
    meta = preprocess(raw, out, size=32, dataset={"name": "synthetic", "include_normal": False})
    root = raw / EXTRACTED / "BTXRD"
    with MaskZip(out / "masks_original.zip") as originals:
        assert set(originals.files) == set(meta["sample_id"])
        for row in meta.itertuples():
            mask = originals[row.sample_id]
            assert mask.shape == (row.orig_h, row.orig_w) and int(mask.sum()) == row.lesion_area_px
            assert (mask == btxrd.annotation_mask(root / "Annotations" / f"{row.sample_id}.json", *mask.shape)).all()
