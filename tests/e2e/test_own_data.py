"""Your own data through the real Snakemake: an nnU-Net raw dataset (grey, three classes, its own test cases) in
three params lines. A folder of RGB images goes through it beside the demo (tests/e2e/test_pipeline.py)."""

import json

import pandas as pd
import yaml

from segbench import paths
from support import new_project, run
from support.own_data import LABELS, make_nnunet


def test_an_nnunet_raw_dataset_through_the_real_snakemake(tmp_path):
    (tmp_path / "project").mkdir()
    root = new_project(tmp_path / "project")
    params = yaml.safe_load((root / "params.yaml").read_text())
    params["datasets"] = {"mine": {"name": "nnunet", "source": str(make_nnunet(tmp_path / "Dataset002_Mine")),
                                   "labels": LABELS}}  # the three lines
    params["sweep"]["datasets"] = ["mine"]
    params["sweep"].update(architectures=["attention_unet"], losses=["dice_ce"])
    params["losses"]["dice_ce"] = [{"term": "dice_ce"}]
    params["tracking"] = {"mlflow": False}  # tested with the demo sweep (tests/e2e/test_pipeline.py)
    params["split"]["official_test"] = True
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    run(root, "snakemake", "--cores", "2")
    where = paths.Sweep("mine", "tiny")
    metrics = json.loads((root / where.seed("attention_unet", "dice_ce", 0) / "metrics.json").read_text())
    assert set(metrics["per_class"]) == {"tumour", "oedema"} and "classes_present" in metrics["strata"]
    assert json.loads((root / "data/processed/mine/info.json").read_text())["channels"] == 1
    table = (root / where.report / "comparison.md").read_text()
    assert "Dice tumour" in table and "Dice oedema" in table
    split = pd.read_csv(root / "data/splits/mine.csv")
    assert (split["subset"] == "test").sum() == 4  # the dataset's own test cases
