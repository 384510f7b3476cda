"""A user's own datasets, built on disk: a folder of images and masks, and an nnU-Net v2 raw dataset (2D),
both with three classes."""

import json

import numpy as np
import pandas as pd
from PIL import Image

LABELS = {0: "background", 1: "tumour", 2: "oedema"}


def case(rng, size=(48, 40), rgb=False):
    """(image, label map 0/1/2): class 1 a bright disc, class 2 a darker square beside it."""
    w, h = size
    yy, xx = np.ogrid[:h, :w]
    mask = np.zeros((h, w), np.uint8)
    cy, cx = rng.integers(10, h - 10), rng.integers(10, w - 20)
    mask[(yy - cy) ** 2 + (xx - cx) ** 2 < 36] = 1
    mask[cy - 3:cy + 3, cx + 8:cx + 14] = 2
    lesions = np.where(mask == 1, 150, np.where(mask == 2, 80, 0)).astype(np.uint8)
    image = rng.integers(10, 60, (h, w), np.uint8) + lesions
    if rgb:
        image = np.stack([image, image // 2, 255 - image], -1)
    return image, mask


def make_folder(root, n=24, rgb=True, meta=True, mask_scale=1):
    rng = np.random.default_rng(0)
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    for i in range(n):
        image, mask = case(rng, rgb=rgb)
        Image.fromarray(image).save(root / "images" / f"case{i:03d}.png")
        Image.fromarray(mask * mask_scale).save(root / "masks" / f"case{i:03d}.png")
    if meta:
        pd.DataFrame({"sample_id": [f"case{i:03d}" for i in range(n)],
                      "site": ["north", "south"] * (n // 2)}).to_csv(root / "meta.csv", index=False)
    return root


def make_nnunet(root, n=24, test=4):
    rng = np.random.default_rng(1)
    for sub in ("imagesTr", "labelsTr", "imagesTs", "labelsTs"):
        (root / sub).mkdir(parents=True)
    for i in range(n + test):
        image, mask = case(rng)
        images, labels = ("imagesTr", "labelsTr") if i < n else ("imagesTs", "labelsTs")
        Image.fromarray(image).save(root / images / f"case_{i:03d}_0000.png")
        Image.fromarray(mask).save(root / labels / f"case_{i:03d}.png")
    (root / "dataset.json").write_text(json.dumps({
        "channel_names": {"0": "X-ray"}, "labels": {"background": 0, "tumour": 1, "oedema": 2},
        "numTraining": n, "file_ending": ".png"}))
    return root
