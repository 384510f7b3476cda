"""Miniature BTXRD and Oxford-IIIT Pet archives carrying the real ones' quirks, served from
127.0.0.1 and run through the real CLI: download -> preprocess -> split (-> train on Pets)."""

import hashlib
import io
import json
import logging
import tarfile
import zipfile

import numpy as np
import pandas as pd
import pytest
import yaml
from PIL import Image

from segbench import paths
from segbench.apps.cli import main
from segbench.data.btxrd import COLUMNS
from support import TINY, serve, with_dataset
from support.archives import jpeg, labelme, polygon, row

pytestmark = pytest.mark.data  # the data stages: make test runs them on pandas 2 as well


def btxrd_zip() -> bytes:
    """Greyscale and RGB, .jpeg and .jpg, an EXIF-rotated image, two lesions in one image, a lesion
    with only its box, a JSON sized at half the image, a normal image, a row with two subtype
    flags, the nested Annotations/Annotations/ duplicate and an Excel lock file."""
    box_only = {"label": "Other BT", "points": [[40, 5], [55, 15]], "shape_type": "rectangle", "group_id": None,
                "flags": {}}
    files = {
        "BTXRD/images/IMG000001.jpeg": jpeg(mode="L"),
        "BTXRD/images/IMG000002.jpg": jpeg(mode="RGB", exif_orientation=6),  # stored 60x40, shown 40x60
        "BTXRD/images/IMG000003.jpeg": jpeg(mode="RGB"),  # normal
        "BTXRD/images/IMG000004.jpeg": jpeg(),
        "BTXRD/images/IMG000005.jpeg": jpeg(size=(120, 80)),
        "BTXRD/images/IMG000006.jpeg": jpeg(),
        "BTXRD/Annotations/IMG000001.json": labelme([polygon(5, 5, 20, 20), polygon(30, 10, 45, 30)]),
        "BTXRD/Annotations/IMG000002.json": labelme([polygon(2, 2, 30, 12, "OSTEOCHONDROMA")], 40, 60),
        "BTXRD/Annotations/IMG000004.json": labelme([polygon(5, 5, 15, 15, "other bt"), box_only]),
        "BTXRD/Annotations/IMG000005.json": labelme([polygon(10, 10, 30, 30)], 60, 40),  # image is 120x80
        "BTXRD/Annotations/IMG000006.json": labelme([polygon(1, 1, 9, 9, "osteochondroma")]),
        "BTXRD/Annotations/Annotations/IMG000001.json": labelme([polygon(0, 0, 59, 39)]),  # the stray duplicate
        "BTXRD/~$dataset(total).xlsx": b"lock",
    }
    table = pd.DataFrame([row("IMG000001.jpeg", ["osteosarcoma"]), row("IMG000002.jpg", ["osteochondroma"]),
                          row("IMG000003.jpeg"), row("IMG000004.jpeg", ["other bt", "osteosarcoma"]),
                          row("IMG000005.jpeg", ["osteosarcoma"]), row("IMG000006.jpeg", ["osteochondroma"])],
                         columns=COLUMNS)
    xlsx = io.BytesIO()
    table.to_excel(xlsx, index=False, engine="openpyxl")
    files["BTXRD/dataset.xlsx"] = xlsx.getvalue()
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as zf:
        for name, data in files.items():
            zf.writestr(name, data)
    return out.getvalue()


def tar_gz(files: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w:gz") as tf:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    return out.getvalue()


def trimap(width=48, height=32) -> bytes:
    t = np.full((height, width), 2, np.uint8)  # background
    t[8:24, 12:36] = 3  # border ring
    t[10:22, 14:34] = 1  # pet
    out = io.BytesIO()
    Image.fromarray(t).save(out, "PNG")
    return out.getvalue()


PETS = [f"{breed}_{i}" for breed in ("Abyssinian", "Bengal", "beagle", "pug") for i in range(1, 7)]


def pets_archives() -> tuple[bytes, bytes]:
    """images.tar.gz and annotations.tar.gz: 24 listed pets, a CMYK JPEG, a greyscale JPEG, a PNG behind a
    .jpg name, a corrupt JPEG, trimaps with AppleDouble ._ companions, and trainval/test lists."""
    images = {f"images/{name}.jpg": jpeg((48, 32), "RGB") for name in PETS}
    images["images/Bengal_1.jpg"] = jpeg((48, 32), "CMYK")
    images["images/Bengal_2.jpg"] = jpeg((48, 32), "L")
    png = io.BytesIO()
    Image.new("RGB", (48, 32), (200, 30, 30)).save(png, "PNG")
    images["images/beagle_1.jpg"] = png.getvalue()
    images["images/pug_1.jpg"] = b"\xff\xd8 not really a jpeg"
    notes = {f"annotations/trimaps/{name}.png": trimap() for name in PETS}
    notes["annotations/trimaps/._Abyssinian_1.png"] = b"\x00\x05\x16\x07 AppleDouble"
    species = {"Abyssinian": 1, "Bengal": 1, "beagle": 2, "pug": 2}
    lines = {name: f"{name} {k + 1} {species[name.rsplit('_', 1)[0]]} {k + 1}" for k, name in enumerate(PETS)}
    notes["annotations/trainval.txt"] = "\n".join(lines[n] for n in PETS if int(n.rsplit("_", 1)[1]) <= 4).encode()
    notes["annotations/test.txt"] = "\n".join(lines[n] for n in PETS if int(n.rsplit("_", 1)[1]) > 4).encode()
    return tar_gz(images), tar_gz(notes)


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def run_stages(tmp_path, monkeypatch, params, stages=("download", "preprocess", "split")):
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    monkeypatch.chdir(tmp_path)
    for stage in stages:
        assert main([stage] if isinstance(stage, str) else list(stage)) == 0, stage


def test_btxrd_archive_with_every_quirk_goes_through_the_cli(tmp_path, monkeypatch, caplog):
    archive = btxrd_zip()
    with serve({"file": archive}, cut_once={"/file"}) as (url, state):
        params = with_dataset(TINY, name="btxrd", source=f"{url}/redirect", checksum=sha256(archive))
        with caplog.at_level(logging.WARNING):
            run_stages(tmp_path, monkeypatch, params)
    assert [r for _, r in state["requests"]][-1] is not None  # the cut transfer resumed with Range
    assert "IMG000004.jpeg has subtype flags ['other bt', 'osteosarcoma']; using 'other bt'" in caplog.text
    meta = pd.read_csv(tmp_path / "data/processed/btxrd/meta.csv").set_index("sample_id")
    assert list(meta.index) == ["IMG000001", "IMG000002", "IMG000004", "IMG000005", "IMG000006"]  # no normal
    assert meta.loc["IMG000004", "tumor_type"] == "other bt"  # the documented rule: BTXRD's column order
    assert (meta.loc["IMG000002", ["orig_h", "orig_w"]] == [60, 40]).all()  # EXIF rotation applied
    assert meta.loc["IMG000001", "lesion_area_px"] == 16 * 16 + 16 * 21  # both lesions, not the nested copy
    assert meta.loc["IMG000004", "lesion_area_px"] == 11 * 11 + 16 * 11  # polygon + the box-only lesion
    assert meta.loc["IMG000005", "lesion_area_px"] == 41 * 41  # JSON at half size, rescaled
    assert set(meta["size_bucket"]) <= {"small", "medium", "large"}
    images = np.load(tmp_path / "data/processed/btxrd/images.npy")
    assert images.shape == (5, 32, 32)
    assert pd.read_csv(tmp_path / "data/splits/btxrd.csv")["subset"].value_counts().sum() == 5
    assert (tmp_path / "data/archives/btxrd/BTXRD.zip").read_bytes() == archive


def test_btxrd_json_naming_a_missing_image_is_an_error_naming_it(tmp_path, monkeypatch, capsys):
    with zipfile.ZipFile(io.BytesIO(btxrd_zip())) as zf:
        files = {n: zf.read(n) for n in zf.namelist() if n != "BTXRD/images/IMG000006.jpeg"}
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as zf:
        for name, data in files.items():
            zf.writestr(name, data)
    archive = tmp_path / "BTXRD.zip"
    archive.write_bytes(out.getvalue())
    params = with_dataset(TINY, name="btxrd", source=str(archive), checksum=sha256(out.getvalue()))
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    monkeypatch.chdir(tmp_path)
    assert main(["download"]) == 0
    assert main(["preprocess"]) == 1
    assert "IMG000006.json: annotates 'IMG000001.jpeg', which is not in" in capsys.readouterr().err
    assert not (tmp_path / "data/processed/btxrd").exists() or not any((tmp_path / "data/processed/btxrd").iterdir())


@pytest.mark.parametrize("border_as, border_value", [("foreground", 1), ("background", 0), ("ignore", 255),
                                                     ("class", 2)])
def test_pets_archives_go_through_the_cli_and_train(tmp_path, monkeypatch, caplog, border_as, border_value):
    images, notes = pets_archives()
    with serve({"images.tar.gz": images, "annotations.tar.gz": notes}) as (url, _):
        params = with_dataset(TINY, name="oxford_pets", border_as=border_as,
                              source=[f"{url}/images.tar.gz", f"{url}/annotations.tar.gz"],
                              checksum=[sha256(images), sha256(notes)])
        params["split"].update(stratify="species", official_test=True)
        params["sweep"].update(architectures=["attention_unet"], losses=["dice"])
        stages = ["download", "preprocess", "split"]
        if border_as in ("ignore", "class"):  # an ignore label, and 3 classes, through training
            stages += [("train", "--arch", "attention_unet", "--loss", "dice"),
                       ("evaluate", "--arch", "attention_unet", "--loss", "dice")]
        with caplog.at_level(logging.WARNING):
            run_stages(tmp_path, monkeypatch, params, stages)
    assert "pug_1.jpg: cannot decode image" in caplog.text  # the one file that does not decode, named
    processed = tmp_path / "data/processed/oxford_pets"
    meta = pd.read_csv(processed / "meta.csv")
    assert len(meta) == len(PETS) - 1 and not meta["sample_id"].isin(["pug_1"]).any()
    leakage = json.loads((tmp_path / "data/splits/oxford_pets_leakage.json").read_text())
    assert [s["file"] for s in leakage["skipped_images"]] == ["pug_1.jpg"]  # the report lists it
    assert meta["sample_id"].isin(["Bengal_1", "Bengal_2", "beagle_1"]).sum() == 3  # CMYK, grey, PNG: converted
    assert set(meta["species"]) == {"cat", "dog"} and meta["breed"].nunique() == 4
    images_npy, masks = np.load(processed / "images.npy"), np.load(processed / "masks.npy")
    assert images_npy.shape == (23, 32, 32, 3) and masks.shape == (23, 32, 32)
    png_row = images_npy[meta.index[meta["sample_id"] == "beagle_1"][0]]
    assert tuple(png_row[16, 16]) == (200, 30, 30)  # the PNG's red, as RGB
    grey_row = images_npy[meta.index[meta["sample_id"] == "Bengal_2"][0]]
    assert (grey_row[..., 0] == grey_row[..., 1]).all()  # greyscale repeated over R, G and B
    # 48x32 -> 32x21, padded; the border ring (rows 8-23, cols 12-35) minus the pet (rows 10-21, cols 14-33)
    assert set(np.unique(masks)) == {0, 1, border_value}
    assert masks[0, 5 + 10, 16] == 1 and masks[0, 5 + 5, 10] == border_value
    split = pd.read_csv(tmp_path / "data/splits/oxford_pets.csv").merge(meta, on="sample_id")
    assert (split.loc[split["subset"] == "test", "official_split"] == "test").all()
    if border_as in ("ignore", "class"):
        metrics = json.loads((tmp_path / paths.Sweep("oxford_pets", "tiny").seed("attention_unet", "dice", 0)
                              / "metrics.json").read_text())
        assert 0 <= metrics["dice"] <= 1 and set(metrics["strata"]["species"]) <= {"cat", "dog"}
        assert set(metrics.get("per_class", {})) == ({"pet", "border"} if border_as == "class" else set())
