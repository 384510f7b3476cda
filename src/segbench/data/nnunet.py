"""An nnU-Net v2 raw dataset in 2D (Isensee et al., 2021; nnU-Net's dataset format)::

    Dataset001_Name/
      dataset.json            channel_names, labels, file_ending (numTraining, ...)
      imagesTr/case_0000.png  channel 0 of each training case (one RGB PNG for natural images)
      labelsTr/case.png       its label map, values as dataset.json's labels
      imagesTs/ (labelsTs/)   optional test cases; with labels they are the official test subset

Classes and channels come from dataset.json: ``labels`` maps names to consecutive values
(background 0), a label named ``ignore`` is left out of losses and metrics, and
``channel_names`` has one entry (grey) or three (one RGB file per case).
"""

from __future__ import annotations

import json
import logging
from functools import cache
from pathlib import Path

from segbench import SegbenchError
from segbench.data.labelmaps import class_map, read_label_map
from segbench.data.sample import Listing, Sample

log = logging.getLogger(__name__)
SKIP_UNREADABLE = False
REQUIRED = ("channel_names", "labels", "file_ending")
IMAGE_ENDINGS = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp")


def find_root(extracted: Path) -> Path:
    found = sorted(extracted.rglob("dataset.json"), key=lambda p: len(p.parts))
    if not found:
        raise SegbenchError(f"{extracted}: no dataset.json of an nnU-Net raw dataset")
    return found[0].parent


def read_dataset_json(root: Path) -> dict:
    """dataset.json, checked: the required keys, 2D image files, labels as name -> value.

    Raises:
        SegbenchError: a missing key or an unsupported value, naming the file and the key.
    """
    path = root / "dataset.json"
    try:
        info = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise SegbenchError(f"{path}: not valid JSON: {exc}") from None
    missing = [key for key in REQUIRED if key not in info]
    if missing:
        raise SegbenchError(f"{path}: missing {missing}; nnU-Net's dataset.json needs {list(REQUIRED)}")
    if info["file_ending"].lower() not in IMAGE_ENDINGS:
        raise SegbenchError(f"{path}: file_ending {info['file_ending']!r}: segbench is 2D and reads "
                            f"{list(IMAGE_ENDINGS)} (not NIfTI volumes)")
    if len(info["channel_names"]) not in (1, 3):
        raise SegbenchError(f"{path}: channel_names: {len(info['channel_names'])} channels; segbench takes 1 "
                            "(grey) or 3 (one RGB file per case)")
    if any(not isinstance(v, int) for v in info["labels"].values()):
        raise SegbenchError(f"{path}: labels: region-based labels (lists) are not supported; give each label "
                            "one integer value")
    return info


def _case_ids(folder: Path, ending: str, suffix: str = "") -> dict[str, Path]:
    return {p.name[: -len(suffix + ending)]: p for p in sorted(folder.glob(f"*{suffix}{ending}"))} \
        if folder.is_dir() else {}


def describe(extracted: Path, options: dict) -> Listing:
    """Every labelled case (imagesTr with labelsTr; imagesTs with labelsTs as the official test list).

    Raises:
        SegbenchError: a case without its image or an image without its label, a second channel file
            (_0001) for a one-file RGB dataset, naming them.
    """
    root = find_root(extracted)
    info = read_dataset_json(root)
    ending = info["file_ending"]
    labels = {value: name for name, value in info["labels"].items()}
    _, names = class_map(labels, f"{root / 'dataset.json'}: labels")
    samples = []
    for images_dir, labels_dir, subset in (("imagesTr", "labelsTr", "trainval"), ("imagesTs", "labelsTs", "test")):
        images = _case_ids(root / images_dir, ending, "_0000")
        cases = _case_ids(root / labels_dir, ending)
        if subset == "test" and images and not cases:
            log.info("%s: %d cases without labels, not evaluated; segment them with `segbench predict %s`",
                     root / images_dir, len(images), root / images_dir)
            continue
        if set(cases) - set(images):
            raise SegbenchError(f"{root / images_dir}: no {'_0000' + ending} image for cases "
                                f"{sorted(set(cases) - set(images))[:5]}")
        if set(images) - set(cases):
            raise SegbenchError(f"{root / labels_dir}: no label for cases {sorted(set(images) - set(cases))[:5]}")
        extra = sorted((root / images_dir).glob(f"*_0001{ending}"))
        if extra:
            raise SegbenchError(f"{extra[0]}: channel files beyond _0000 are not supported; segbench reads "
                                "one grey or one RGB image per case")
        samples += [Sample(case, images[case], cases[case], {"official_split": subset}) for case in sorted(cases)]
    if not samples:
        raise SegbenchError(f"{root / 'labelsTr'}: no labelled cases")
    mode = "L" if len(info["channel_names"]) == 1 else "RGB"
    return Listing(samples, names, mode, ["classes_present", "size_bucket"], "classes_present")


@cache
def _label_values(root: Path):
    """dataset.json's label map, parsed once per dataset (not once per mask: reading stays linear in cases)."""
    labels = {value: name for name, value in read_dataset_json(root)["labels"].items()}
    return class_map(labels, f"{root / 'dataset.json'}: labels")[0]


def load_mask(sample: Sample, height: int, width: int, options: dict):
    root = sample.annotation_path.parents[1]  # <root>/labelsTr/<case><ending>
    return read_label_map(sample.annotation_path, height, width, _label_values(root))

