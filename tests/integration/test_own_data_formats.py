"""Your own data: a folder of images and masks, or an nnU-Net raw dataset, with any number of classes."""

import json
import shutil

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from segbench import SegbenchError
from segbench.data import folder, nnunet
from segbench.data.download import EXTRACTED
from support.own_data import LABELS, make_folder, make_nnunet

pytestmark = pytest.mark.data  # the data stages: make test runs them on pandas 2 as well


def options(**extra):
    return {"name": "folder", "labels": LABELS, "channels": None, **extra}


def test_folder_pairs_images_and_masks_and_reads_classes_and_channels(tmp_path):
    listing = folder.describe(make_folder(tmp_path / "data"), options())
    assert len(listing.samples) == 24 and listing.class_names == ["background", "tumour", "oedema"]
    assert listing.mode == "RGB" and listing.stratify == "classes_present"
    assert listing.samples[1].meta == {"site": "south"} and "site" in listing.strata
    grey = folder.describe(make_folder(tmp_path / "grey", rgb=False, meta=False), options())
    assert grey.mode == "L" and grey.strata == ["classes_present", "size_bucket"]


def test_masks_saved_as_0_and_255_and_an_ignore_label(tmp_path):
    root = make_folder(tmp_path / "data", rgb=False, mask_scale=120)  # values 0, 120, 240
    listing = folder.describe(root, options(labels={0: "background", 120: "lesion", 240: "ignore"}))
    assert listing.class_names == ["background", "lesion"]
    mask = folder.load_mask(listing.samples[0], 40, 48, options(labels={0: "background", 120: "lesion",
                                                                        240: "ignore"}))
    assert set(np.unique(mask)) == {0, 1, 255}


@pytest.mark.parametrize("damage, message", [
    (lambda r: (r / "masks/case003.png").unlink(), r"images without a mask in .*masks: case003"),
    (lambda r: (r / "images/case004.png").unlink(), r"masks without an image in .*images: case004"),
    (lambda r: Image.new("L", (10, 10)).save(r / "masks/case005.png"), r"case005.png: mask is 10x10, its image 48x40"),
    (lambda r: Image.new("L", (48, 40), 7).save(r / "masks/case006.png"), r"case006.png: mask values \[7\] are not"),
    (lambda r: (r / "images/case007.png").write_bytes(b"not a png"), r"case007.png: cannot decode image"),
    (lambda r: pd.DataFrame({"id": [1]}).to_csv(r / "meta.csv"), r"meta.csv: no 'sample_id' column"),
])
def test_bad_input_is_named_before_training(tmp_path, damage, message):
    from segbench.data.preprocess import preprocess

    root = make_folder(tmp_path / "raw" / EXTRACTED, rgb=False)
    damage(root)
    with pytest.raises(SegbenchError, match=message):
        preprocess(tmp_path / "raw", tmp_path / "processed", 32, options())


def test_nnunet_classes_channels_and_the_official_test_list(tmp_path):
    root = make_nnunet(tmp_path / "Dataset001_Bones")
    listing = nnunet.describe(tmp_path, {})
    assert listing.class_names == ["background", "tumour", "oedema"] and listing.mode == "L"
    subsets = pd.Series([s.meta["official_split"] for s in listing.samples]).value_counts().to_dict()
    assert subsets == {"trainval": 24, "test": 4}
    shutil.rmtree(root / "labelsTs")  # test images without labels: left for `segbench predict`
    assert len(nnunet.describe(tmp_path, {}).samples) == 24


@pytest.mark.parametrize("change, message", [
    (lambda info: info.pop("labels"), r"dataset.json: missing \['labels'\]"),
    (lambda info: info.update(file_ending=".nii.gz"), r"file_ending '.nii.gz': segbench is 2D"),
    (lambda info: info.update(channel_names={"0": "a", "1": "b"}), r"2 channels; segbench takes 1"),
    (lambda info: info["labels"].update(both=[1, 2]), r"region-based labels"),
])
def test_bad_dataset_json_is_named(tmp_path, change, message):
    root = make_nnunet(tmp_path / "Dataset001_Bones")
    info = json.loads((root / "dataset.json").read_text())
    change(info)
    (root / "dataset.json").write_text(json.dumps(info))
    with pytest.raises(SegbenchError, match=message):
        nnunet.describe(tmp_path, {})


def test_nnunet_case_without_its_image(tmp_path):
    root = make_nnunet(tmp_path / "Dataset001_Bones")
    (root / "imagesTr" / "case_002_0000.png").unlink()
    with pytest.raises(SegbenchError, match=r"imagesTr: no _0000.png image for cases \['case_002'\]"):
        nnunet.describe(tmp_path, {})


def test_a_url_source_needs_a_checksum_and_a_folder_source_is_verified(tmp_path):
    from segbench.data.sources import own_dataset

    with pytest.raises(SegbenchError, match="dataset.checksum: required for an archive fetched by URL"):
        own_dataset({"name": "folder", "source": "http://127.0.0.1:1/data.zip", "checksum": None},
                    tmp_path / "archives", tmp_path / "raw")
    source = make_folder(tmp_path / "mine", n=4)
    extracted = own_dataset({"name": "folder", "source": str(source), "checksum": None}, tmp_path / "a", tmp_path / "r")
    assert (extracted / "images" / "case000.png").exists()
    with pytest.raises(SegbenchError, match="the folder .* changed: its checksum is sha256:"):
        own_dataset({"name": "folder", "source": str(source), "checksum": "sha256:00"}, tmp_path / "a", tmp_path / "r")
