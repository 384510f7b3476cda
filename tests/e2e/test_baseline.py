"""nnU-Net v2 as a baseline row: trained by the real `snakemake` on segbench's split with a very short trainer,
scored by segbench's evaluation, in every table, usable by `segbench predict`, reproduced by `dvc repro`."""

import copy
import html
import io
import json
import re
import shutil
import subprocess
import time
import zipfile

import numpy as np
import pandas as pd
import pytest
import torch
from openpyxl import load_workbook
from PIL import Image

from segbench import paths
from support import REPO, SWEEP, TINY, new_project, run, tool_env
from support.browser import BROWSER, SCREENSHOTS

PAIR = "nnunet__default"


@pytest.fixture(scope="module")
def with_nnunet(tmp_path_factory):
    params = copy.deepcopy(TINY)
    params["sweep"].update(architectures=["smp_unet"], losses=["dice"],  # a pair beside the two nnU-Net presets
                           baselines=["nnunet", "nnunet_resenc_m"])
    params["tracking"] = {"mlflow": False}  # tested with the demo sweep (tests/e2e/test_pipeline.py)
    short = {"epochs": 1, "iterations_per_epoch": 4, "val_iterations_per_epoch": 2}
    params["baselines"] = {"nnunet": short, "nnunet_resenc_m": {**short, "tta": False}}
    root = new_project(tmp_path_factory.mktemp("nnunet"), params)
    run(root, "snakemake", "--cores", "2")
    return root


def test_the_report_has_the_baseline_row_on_the_same_test_images(with_nnunet):
    statistics = json.loads((with_nnunet / SWEEP.report / "statistics.json").read_text())
    assert PAIR in statistics["ranking"]
    assert set(statistics["versus_baselines"]) == {PAIR, "nnunet_resenc_m__default"}  # each its own family
    for baseline, tests in statistics["versus_baselines"].items():
        assert tests["best"] == baseline and all(row["verdict"] for row in tests["pairs"].values())
    ids = {pair: set(pd.read_csv(with_nnunet / SWEEP.seed(*pair.split("__"), 0) / "per_image.csv")["sample_id"]
                     .astype(str)) for pair in ["smp_unet__dice", PAIR]}
    assert ids[PAIR] == ids["smp_unet__dice"] and ids[PAIR]
    page = html.unescape((with_nnunet / SWEEP.report / "report.html").read_text())
    label = "nnU-Net 2d, 1 × 4 it. (0.0016 % of default)"  # its schedule wherever its name appears
    assert f"{label} (baseline)" in page
    assert "nnU-Net ResEnc M 2d, 1 × 4 it. (0.0016 % of default) (baseline)" in page
    # the verdict's sentence against a baseline names the pairs that learned (at 4 iterations, some may not)
    for baseline, named in ((PAIR, f"nnunet__default ({label})"),
                            ("nnunet_resenc_m__default", "nnunet_resenc_m__default (nnU-Net ResEnc M 2d")):
        learned = [p for p, row in statistics["per_pair"].items() if p != baseline and not row["failed"]]
        assert (f"Against the baseline {named}" in page) == bool(learned), (baseline, learned)
    assert "it predicts with its final checkpoint" in page and "nnUNetResEncUNetMPlans 2d plan" in page
    assert "(sliding window, with test-time mirroring)" in page  # nnunet's default; resenc_m: tta false
    assert "(sliding window, without test-time mirroring, as the pairs)" in page
    assert "nnU-Net v2 unmodified" in page and "Its own post-processing choice, per fold: fold 0: " in page
    sheet = load_workbook(with_nnunet / SWEEP.report / "comparison.xlsx")["comparison"]
    assert any(cell.value == f"{label} (baseline)" for row in sheet.iter_rows() for cell in row)
    rows = list(sheet.iter_rows(values_only=True))
    header = next(i for i, row in enumerate(rows) if "rank" in row)
    column = rows[header].index("budget: epochs × it. × batch; device-s")
    budgets = {row[1]: row[column] for row in rows[header + 1:] if row[column]}
    assert len(budgets) == 3 and budgets[f"{label} (baseline)"].startswith("1 × 4 × "), budgets  # every row
    trained = json.loads((with_nnunet / SWEEP.fold("nnunet", "default", 0, 0) / "train.json").read_text())
    assert "own_postprocessing" in trained["baseline_settings"]  # nnU-Net's own choice, beside segbench's
    assert json.loads((with_nnunet / SWEEP.seed("nnunet", "default", 0) / "metrics.json").read_text())[
        "postprocessing"]["name"]


@pytest.mark.skipif(not BROWSER, reason="Chromium (Debian's chromium) is not installed")
def test_the_columns_against_two_baselines_fit_the_page(with_nnunet):
    """Two columns per baseline, headed by its name: the page still fits 1,280 px (a header's long name breaks)."""
    from support.browser import open_page

    with open_page((with_nnunet / SWEEP.report / "report.html").as_uri(), width=1280, height=900) as page:
        width, visible = page.evaluate("[document.documentElement.scrollWidth, document.documentElement.clientWidth]")
        assert width <= visible, f"the page scrolls sideways: {width} px in a {visible} px window"
        assert page.locator("#comparison table th", has_text="resenc").count() == 2
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.locator("#comparison").screenshot(path=str(SCREENSHOTS / "report-two-baselines.png"))


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


@pytest.mark.parametrize("pair", [PAIR, "nnunet_resenc_m__default"])
def test_segbench_predict_segments_with_the_baseline(with_nnunet, tmp_path, pair):
    image = next((with_nnunet / "data/raw/synthetic/extracted/BTXRD/images").glob("*.jpeg"))
    out = run(with_nnunet, "segbench", "predict", str(image), "--run", pair, "--out", str(tmp_path))
    assert f"synthetic/tiny/{pair}/seed0: 1 image(s)" in out
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



READ_SPLIT = """
import json, sys
import torch
from pathlib import Path
from segbench.baselines import nnunet

prepared, folds = Path(sys.argv[1]), json.loads(sys.argv[2])
with nnunet.folders(prepared / "nnUNet_raw", prepared / "nnUNet_preprocessed", Path(sys.argv[3])):
    base = next((prepared / "nnUNet_preprocessed").glob("Dataset*"))
    options = {"epochs": 1, "iterations_per_epoch": 1, "val_iterations_per_epoch": 1, "tta": True}
    read = {f: nnunet.build_trainer(base, f, options, torch.device("cpu")).do_split() for f in folds}
print("SPLITS", json.dumps({f: {"train": sorted(t), "val": sorted(v)} for f, (t, v) in read.items()}))
"""


def prepared(root, split: dict, folds: list[int]):
    """A project whose data nnU-Net's real planner prepared (split.folds: ``split``, sweep.folds: ``folds``)."""
    params = copy.deepcopy(TINY)
    params["synthetic"].update(n_images=60, normal_fraction=0.0)
    params["split"].update(split, test_fraction=0.15)
    params["sweep"].update(folds=folds, baselines=["nnunet"])
    params["baselines"] = {"nnunet": {"epochs": 3, "iterations_per_epoch": 40, "val_iterations_per_epoch": 2}}
    root = new_project(root, params)
    for stage in ("download", "preprocess", "split"):
        run(root, "segbench", stage)
    run(root, "segbench", "baseline_prepare", "--baseline", "nnunet")
    return root


@pytest.fixture(scope="module")
def k_fold(tmp_path_factory):
    return prepared(tmp_path_factory.mktemp("k_fold"), {"folds": 3}, [2])


@pytest.fixture(scope="module")
def by_centre(tmp_path_factory):
    return prepared(tmp_path_factory.mktemp("by_centre"), {"folds": {"by": "center"}}, [2, 0, 1])


@pytest.mark.parametrize("project", ["k_fold", "by_centre"])
def test_nnunet_reads_segbenchs_split_for_every_fold(request, project, tmp_path):
    """nnU-Net's own trainer (do_split) on the real planner's output reads, for every fold, the train and val
    cases of segbench's split.csv, whichever folds the sweep lists (k-fold: [2]; by centre: [2, 0, 1])."""
    root = request.getfixturevalue(project)
    table = pd.read_csv(root / "data/splits/synthetic.csv").astype({"sample_id": str})
    fold, subset = table["fold"], table["subset"]
    expected = {}
    for f in range(3):  # k-fold: validated on fold f, trained on the others; by centre: trained off centre f
        train, val = ((fold != f) & (fold >= 0), fold == f) if project == "k_fold" else \
            ((fold != f) & (subset == "train"), (fold != f) & (subset == "val"))
        expected[str(f)] = {"train": sorted(table.loc[train, "sample_id"]), "val": sorted(table.loc[val, "sample_id"])}
    printed = run(root, "python", "-c", READ_SPLIT, str(root / "data/baselines/nnunet/synthetic"), "[0, 1, 2]",
                  str(tmp_path / "nnunet_results"))
    read = json.loads(next(line for line in printed.splitlines() if line.startswith("SPLITS "))[7:])
    assert read == expected and all(entry["val"] for entry in read.values())


def test_a_killed_baseline_train_resumes_from_its_last_epoch(k_fold):
    """Killed (SIGKILL) once its first epoch's checkpoint is out, the fold's rerun goes on from there: 3 epochs in
    all, one history, and no checkpoint left behind."""
    fold_dir = k_fold / SWEEP.fold("nnunet", "default", 0, 2)
    waiting = fold_dir.parents[1] / "resume" / "fold2" / "checkpoint_latest.pth"
    command = ["segbench", "baseline_train", "--baseline", "nnunet", "--fold", "2"]
    job = subprocess.Popen(command, cwd=k_fold, env=tool_env(k_fold), stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 300
    while not waiting.exists() and job.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    job.kill()
    job.wait()
    assert waiting.exists() and not (fold_dir / "train.json").exists(), "killed after its first epoch"
    log = run(k_fold, *command)
    assert re.search(r"resuming after epoch [12] ", log), log[-2000:]
    trained = json.loads((fold_dir / "train.json").read_text())
    assert trained["epochs"] == 3 and len(pd.read_csv(fold_dir / "history.csv")) == 3
    assert not waiting.parent.parent.exists()


def test_a_baseline_added_by_one_registry_line_runs_through_snakemake_and_dvc_to_the_report(tmp_path):
    """A module (tests/support/mean_mask.py) and one line of the baseline catalog: `snakemake` trains, scores and
    reports it beside a pair, `dvc repro` rebuilds its row, and both then have nothing to do."""
    params = copy.deepcopy(TINY)
    params["sweep"].update(architectures=["smp_unet"], losses=["dice"], baselines=["mean_mask"])
    params["tracking"] = {"mlflow": False}
    params["baselines"]["mean_mask"] = {}
    root = new_project(tmp_path, params)
    shutil.copy(REPO / "tests/support/mean_mask.py", root / "src/segbench/baselines/mean_mask.py")
    with (root / "src/segbench/baselines/catalog.py").open("a") as catalog:
        catalog.write('BASELINES.add("mean_mask", "segbench.baselines.mean_mask", "tests", "the mean training mask")\n')
    run(root, "snakemake", "--cores", "2")
    statistics = json.loads((root / SWEEP.report / "statistics.json").read_text())
    assert statistics["ranking"] and "mean_mask__default" in statistics["ranking"]
    assert statistics["labels"] == {"mean_mask__default": "mean training mask"}
    page = html.unescape((root / SWEEP.report / "report.html").read_text())
    assert "mean training mask (baseline)" in page and "every pixel's foreground frequency" in page
    assert "Nothing to be done" in run(root, "snakemake", "-n", "--cores", "1")
    metrics = root / SWEEP.seed("mean_mask", "default", 0) / "metrics.json"
    metrics.unlink()
    run(root, "dvc", "repro")
    assert json.loads(metrics.read_text())["run"] == "mean_mask__default/seed0"
    assert "up to date" in run(root, "dvc", "status")
