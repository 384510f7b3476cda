"""Your own data through the real Snakemake: a folder or an nnU-Net raw dataset, three params lines."""

import json

import pandas as pd
import pytest
import yaml

from segbench import paths
from support import new_project, run
from support.own_data import LABELS, make_folder, make_nnunet


@pytest.mark.parametrize("layout", ["folder", "nnunet"])
def test_your_own_data_through_the_real_snakemake(tmp_path, layout):
    """Three classes, RGB (folder) or grey (nnU-Net): three params lines, then the full report."""
    (tmp_path / "project").mkdir()
    root = new_project(tmp_path / "project")
    data = make_folder(tmp_path / "mine") if layout == "folder" else make_nnunet(tmp_path / "Dataset002_Mine")
    params = yaml.safe_load((root / "params.yaml").read_text())
    params["datasets"] = {"mine": {"name": layout, "source": str(data), "labels": LABELS}}  # the three lines
    params["sweep"]["datasets"] = ["mine"]
    params["sweep"].update(architectures=["attention_unet"], losses=["dice_ce"])
    params["losses"]["dice_ce"] = [{"term": "dice_ce"}]
    params["tracking"] = {"mlflow": False}  # tested with the demo sweep (tests/e2e/test_pipeline.py)
    if layout == "nnunet":
        params["split"]["official_test"] = True
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    run(root, "snakemake", "--cores", "2")
    where = paths.Sweep("mine", "tiny")
    metrics = json.loads((root / where.seed("attention_unet", "dice_ce", 0) / "metrics.json").read_text())
    assert set(metrics["per_class"]) == {"tumour", "oedema"} and "classes_present" in metrics["strata"]
    info = json.loads((root / "data/processed/mine/info.json").read_text())
    assert info["channels"] == (3 if layout == "folder" else 1)
    table = (root / where.report / "comparison.md").read_text()
    assert "Dice tumour" in table and "Dice oedema" in table
    if layout == "nnunet":
        split = pd.read_csv(root / "data/splits/mine.csv")
        assert (split["subset"] == "test").sum() == 4
