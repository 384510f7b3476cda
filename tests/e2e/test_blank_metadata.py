"""Blank metadata cells, as the published BTXRD archive has them, through the real `snakemake` to the reports and
the cross-dataset summary: BTXRD's format with and without its normal images, and a folder dataset whose meta.csv
has blanks in its stratify and group columns."""

import copy
import json

import numpy as np
import pandas as pd
import pytest

from segbench import paths
from segbench.data.metadata import BLANK
from support import TINY, new_project, run
from support.archives import btxrd_with_blanks
from support.own_data import LABELS, make_folder

DATASETS = ["btxrd_tumours", "btxrd_all", "mine"]


@pytest.fixture(scope="module")
def blanks(tmp_path_factory):
    data = tmp_path_factory.mktemp("blank-data")
    archive = data / "BTXRD.zip"
    checksum = btxrd_with_blanks(archive)
    folder = make_folder(data / "mine", n=30)
    meta = pd.read_csv(folder / "meta.csv")
    meta["scanner"] = (["a", "b", "c"] * 10)[:30]
    meta.loc[::4, "site"] = None
    meta.loc[1::5, "scanner"] = None
    meta.to_csv(folder / "meta.csv", index=False)
    params = copy.deepcopy(TINY)
    params["datasets"] = {
        "btxrd_tumours": {"name": "btxrd", "source": str(archive), "checksum": checksum, "include_normal": False,
                          "split": {"group_by": "auto"}},
        "btxrd_all": {"name": "btxrd", "source": str(archive), "checksum": checksum, "include_normal": True},
        "mine": {"name": "folder", "source": str(folder), "labels": LABELS,
                 "split": {"stratify": "site", "group_by": ["site", "scanner"]}},
    }
    params["sweep"].update(datasets=DATASETS, architectures=["attention_unet"])
    params["tracking"] = {"mlflow": False}
    root = new_project(tmp_path_factory.mktemp("blanks"), params)
    run(root, "snakemake", "--cores", "2")
    return root


def test_blank_cells_reach_meta_csv_as_blanks(blanks):
    meta = pd.read_csv(blanks / "data/processed/btxrd_all/meta.csv")
    assert len(meta) == 54 and len(pd.read_csv(blanks / "data/processed/btxrd_tumours/meta.csv")) == 45
    for column in ("center", "age", "gender", "bone", "limb", "view"):
        assert meta[column].isna().sum() >= 8, column
    assert (meta["tumor_type"] == "normal").sum() == 9  # blank tumour flags: a normal image


@pytest.mark.parametrize("dataset", DATASETS)
def test_every_dataset_splits_and_reports_and_counts_its_unknown_group_fields(blanks, dataset):
    where = paths.Sweep(dataset, TINY["sweep"]["name"])
    leakage = json.loads((blanks / paths.split_leakage_json(dataset)).read_text())
    page = (blanks / where.report / "report.html").read_text()
    if dataset == "mine":  # split.group_by: [site, scanner]: the blanks are their own groups
        split = pd.read_csv(blanks / paths.split_csv(dataset))
        assert set(split["subset"]) == {"train", "val", "test"} and len(split) == 30
        counts = pd.read_csv(blanks / paths.split_counts_csv(dataset))
        assert BLANK in set(counts["site"])
    else:
        assert leakage["unknown_group_fields"] >= 8
        assert "images with a blank group field" in page
        seed = blanks / where.seed("attention_unet", "dice", 0)
        strata = json.loads((seed / "metrics.json").read_text())["strata"]
        scored = pd.read_csv(seed / "per_image.csv").query("lesion")
        blank = {c: int(scored[c].isna().sum()) for c in ("center", "view")}
        assert {c: strata[c].get(BLANK, {"n": 0})["n"] for c in blank} == blank  # a stratum of their own
        assert sum(blank.values()) or dataset == "btxrd_all"  # (its test images with a blank are normal ones)
        assert all(np.isfinite(strata[c][BLANK]["dice"]) for c in blank if blank[c])


def test_the_summary_covers_every_dataset(blanks):
    summary = blanks / paths.cross_dataset({"name": TINY["sweep"]["name"], "datasets": DATASETS})
    found = json.loads((summary / paths.CROSS_JSON).read_text())
    assert found["datasets"] == DATASETS
