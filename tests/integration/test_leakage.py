"""The leakage audit on a dataset with planted near-duplicates: found across subsets, kept together by
`split.group_by: auto`, and reported where people look."""

import io
import json

import numpy as np
import pandas as pd
import pytest
import yaml
from PIL import Image, ImageEnhance

from segbench.apps.cli import main
from segbench.data import synthetic
from support import TINY

pytestmark = pytest.mark.data  # the data stages: make test runs them on pandas 2 as well

ORIGINALS, PLANTED = 100, 25  # distinct X-rays; of them, this many get each kind of copy


def jpeg70(image: Image.Image) -> Image.Image:
    out = io.BytesIO()
    image.save(out, "JPEG", quality=70)
    return Image.open(io.BytesIO(out.getvalue())).convert("L")


def trimmed(image: Image.Image, share: float = 0.05) -> Image.Image:
    """5 % of the width and of the height trimmed from the borders, half from each side."""
    w, h = image.size
    dx, dy = round(w * share / 2), round(h * share / 2)
    return image.crop((dx, dy, w - dx, h - dy))


COPIES = {"resized": lambda im: im.resize((round(im.width * 0.8), round(im.height * 0.8)), Image.Resampling.BILINEAR),
          "jpeg70": jpeg70, "brighter": lambda im: ImageEnhance.Brightness(im).enhance(1.1), "cropped": trimmed}


def planted_folder(root):
    """A folder dataset of synthetic X-rays; 25 of them copied each way (resized to 80 %, JPEG 70, 10 % brighter,
    5 % trimmed). Returns {copy's stem: original's stem}."""
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    copies = {}
    for i in range(ORIGINALS):
        pixels, lesions = synthetic.render_image(np.random.default_rng([7, i]), "osteosarcoma")
        image = Image.fromarray(pixels)
        mask = Image.fromarray((synthetic._fill(pixels.shape, lesions[0]) > 0.5).astype(np.uint8))
        stem = f"x{i:03d}"
        image.save(root / "images" / f"{stem}.png")
        mask.save(root / "masks" / f"{stem}.png")
        if i < PLANTED:
            for kind, copy in COPIES.items():
                copied = copy(image)
                copied.save(root / "images" / f"{stem}_{kind}.png")
                mask.resize(copied.size, Image.Resampling.NEAREST).save(root / "masks" / f"{stem}_{kind}.png")
                copies[f"{stem}_{kind}"] = stem
    return copies


def family(stem: str) -> str:
    return stem.split("_")[0]


def split_planted(tmp_path, monkeypatch, split: dict) -> dict:
    """Download, preprocess and split the folder dataset ``tmp_path/mine`` with ``split``; its leakage report."""
    params = {**TINY, "split": split,
              "datasets": {"mine": {"name": "folder", "source": str(tmp_path / "mine"),
                                    "labels": {0: "background", 1: "lesion"}}},
              "sweep": {**TINY["sweep"], "datasets": ["mine"]}}
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    monkeypatch.chdir(tmp_path)
    for stage in ("download", "preprocess", "split"):
        assert main([stage]) == 0
    return json.loads((tmp_path / "data/splits/mine_leakage.json").read_text())


@pytest.mark.parametrize("group_by", [None, "auto"])
def test_planted_near_duplicates_are_found_across_subsets_and_kept_together_by_auto(tmp_path, monkeypatch, group_by):
    copies = planted_folder(tmp_path / "mine")
    report = split_planted(tmp_path, monkeypatch, {**TINY["split"], "group_by": group_by})
    subset = pd.read_csv(tmp_path / "data/splits/mine.csv").set_index("sample_id")["subset"]
    planted = {tuple(sorted(p)) for p in copies.items()} | {  # copies of one original are copies of each other
        tuple(sorted((a, b))) for a in copies for b in copies if a < b and copies[a] == copies[b]}
    across = {p for p in planted if subset[p[0]] != subset[p[1]]}
    found = {tuple(sorted((r["a"], r["b"]))) for r in report["pairs"]}
    false = {p for p in found if family(p[0]) != family(p[1])}
    assert len(false) <= (ORIGINALS + len(copies)) / 50, sorted(false)
    if group_by is None:
        assert across and len(across & found) >= 0.95 * len(across), sorted(across - found)
        assert sum(report["pairs_across_subsets"].values()) == len(found)
        test_images = {s for p in across & found for s in p if subset[s] == "test"}
        assert test_images <= set(report["leaked_test_images"])
    else:
        assert not across, sorted(across)  # every planted family sits in one subset
        assert report["without_grouping"]["pairs_across_subsets"]  # which the plain split would have broken
    assert report["checked"][0].startswith("near-duplicate images: imagehash phash, 256 bits")


def test_a_dataset_where_every_image_has_its_lesion_is_stratified_by_lesion_size(tmp_path, monkeypatch, caplog):
    planted_folder(tmp_path / "mine")
    report = split_planted(tmp_path, monkeypatch, TINY["split"])
    assert report["stratified"].startswith("stratified by lesion size (size_bucket")
    counts = pd.read_csv(tmp_path / "data/splits/mine_counts.csv")
    assert counts.columns[0] == "size_bucket" and "falling back to a random split" not in caplog.text
