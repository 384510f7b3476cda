"""nnU-Net v2 as a baseline row: trained by the real `snakemake` on segbench's split with a very short trainer,
scored by segbench's evaluation, in every table, usable by `segbench predict`, reproduced by `dvc repro`."""

import copy
import html
import io
import json
import zipfile

import numpy as np
import pandas as pd
import pytest
import torch
from openpyxl import load_workbook
from PIL import Image

from segbench import paths
from support import SWEEP, TINY, new_project, run

PAIR = "nnunet__default"


@pytest.fixture(scope="module")
def with_nnunet(tmp_path_factory):
    params = copy.deepcopy(TINY)
    params["sweep"].update(architectures=["smp_unet"], losses=["dice"], baselines=["nnunet"])  # a pair beside it
    params["tracking"] = {"mlflow": False}  # tested with the demo sweep (tests/e2e/test_pipeline.py)
    params["baselines"] = {"nnunet": {"epochs": 1, "iterations_per_epoch": 4, "val_iterations_per_epoch": 2}}
    root = new_project(tmp_path_factory.mktemp("nnunet"), params)
    run(root, "snakemake", "--cores", "2")
    return root


def test_the_report_has_the_baseline_row_on_the_same_test_images(with_nnunet):
    statistics = json.loads((with_nnunet / SWEEP.report / "statistics.json").read_text())
    assert PAIR in statistics["ranking"] and statistics["versus_baseline"]["best"] == PAIR
    assert all(row["verdict"] for row in statistics["versus_baseline"]["pairs"].values())
    ids = {pair: set(pd.read_csv(with_nnunet / SWEEP.seed(*pair.split("__"), 0) / "per_image.csv")["sample_id"]
                     .astype(str)) for pair in ["smp_unet__dice", PAIR]}
    assert ids[PAIR] == ids["smp_unet__dice"] and ids[PAIR]
    page = html.unescape((with_nnunet / SWEEP.report / "report.html").read_text())
    assert "nnunet (baseline)" in page and "Against the baseline nnunet__default" in page
    assert "nnU-Net v2 unmodified" in page and "nnU-Net's own post-processing choice, per fold: fold 0: " in page
    sheet = load_workbook(with_nnunet / SWEEP.report / "comparison.xlsx")["comparison"]
    assert any(cell.value == "nnunet (baseline)" for row in sheet.iter_rows() for cell in row)
    trained = json.loads((with_nnunet / SWEEP.fold("nnunet", "default", 0, 0) / "train.json").read_text())
    assert "own_postprocessing" in trained["baseline_settings"]  # nnU-Net's own choice, beside segbench's
    assert json.loads((with_nnunet / SWEEP.seed("nnunet", "default", 0) / "metrics.json").read_text())[
        "postprocessing"]["name"]


def test_nnunet_trained_on_segbench_split(with_nnunet):
    split = pd.read_csv(with_nnunet / "data/splits/synthetic.csv").astype({"sample_id": str})
    folds = json.loads(next((with_nnunet / "data/baselines/nnunet/synthetic").rglob("splits_final.json")).read_text())
    assert folds == [{"train": sorted(split.loc[split["subset"] == "train", "sample_id"]),
                      "val": sorted(split.loc[split["subset"] == "val", "sample_id"])}]
    cases = {p.name.removesuffix("_0000.png") for p in (with_nnunet / "data/baselines/nnunet/synthetic").rglob(
        "imagesTr/*.png")}
    assert cases == set(split.loc[split["subset"] != "test", "sample_id"])  # test images never reach nnU-Net


def test_an_independent_dice_of_the_saved_predictions_agrees(with_nnunet):
    """MONAI's Dice of nnU-Net's saved test predictions against the original masks equals per_image.csv's."""
    from monai.metrics import DiceMetric

    seed = with_nnunet / SWEEP.seed("nnunet", "default", 0)
    table = pd.read_csv(seed / "per_image.csv").astype({"sample_id": str}).set_index("sample_id")
    truth = zipfile.ZipFile(with_nnunet / "data/processed/synthetic/masks_original.zip")
    with np.load(seed / "test_predictions.npz") as predictions:
        for sid in table.index[table["lesion"]]:
            mask = np.asarray(Image.open(io.BytesIO(truth.read(f"{sid}.png")))) > 0
            predicted = predictions[sid] > 0
            metric = DiceMetric(include_background=True, ignore_empty=False)
            metric(torch.from_numpy(predicted)[None, None].float(), torch.from_numpy(mask)[None, None].float())
            assert metric.aggregate().item() == pytest.approx(table.loc[sid, "dice"], abs=1e-6), sid


def test_segbench_predict_segments_with_the_baseline(with_nnunet, tmp_path):
    image = next((with_nnunet / "data/raw/synthetic/extracted/BTXRD/images").glob("*.jpeg"))
    out = run(with_nnunet, "segbench", "predict", str(image), "--run", PAIR, "--out", str(tmp_path))
    assert f"synthetic/tiny/{PAIR}/seed0: 1 image(s)" in out
    assert Image.open(tmp_path / f"{image.name}.mask.png").size == Image.open(image).size


def test_nothing_left_to_do_and_dvc_repro_rebuilds_the_row(with_nnunet):
    assert "Nothing to be done" in run(with_nnunet, "snakemake", "-n", "--cores", "1")
    run(with_nnunet, "dvc", "commit", "--force", "--quiet")
    metrics = with_nnunet / SWEEP.seed("nnunet", "default", 0) / "metrics.json"
    metrics.unlink()
    run(with_nnunet, "dvc", "repro")
    assert json.loads(metrics.read_text())["run"] == f"{PAIR}/seed0"
    assert PAIR in json.loads((with_nnunet / SWEEP.report / "statistics.json").read_text())["ranking"]
    assert "up to date" in run(with_nnunet, "dvc", "status")
    assert paths.BASELINE_LOSS == "default"
