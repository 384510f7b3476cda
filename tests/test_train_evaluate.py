import copy

import pandas as pd
import pytest
import torch
from mlflow.tracking import MlflowClient
from openpyxl import load_workbook

from conftest import TIMING, TINY
from conftest import tiny_params as params
from segbench import SegbenchError
from segbench.evaluation.evaluate import evaluate_pair, valid_region
from segbench.io import read_json
from segbench.losses import WeightedSum
from segbench.tracking import Tracker
from segbench.training import trainer


def test_same_seed_same_history_and_weights(data, tmp_path):
    runs = [trainer.train_pair("attention_unet", "dice_focal", params(epochs=2), *data, tmp_path / name)
            for name in ("a", "b")]
    histories = [pd.read_csv(tmp_path / n / "history.csv").drop(columns=TIMING) for n in ("a", "b")]
    assert histories[0].equals(histories[1]) and len(histories[0]) == 2
    weights = [torch.load(tmp_path / n / "model_best.pt")["model"] for n in ("a", "b")]
    assert all(torch.equal(weights[0][k], weights[1][k]) for k in weights[0])
    assert runs[0]["best_val_dice"] == runs[1]["best_val_dice"]
    assert set(read_json(tmp_path / "a" / "train.json")) >= {"best_epoch", "n_params", "mean", "std", "epochs"}


def test_nan_loss_stops_with_pair_and_epoch(data, tmp_path, monkeypatch):
    tracker = Tracker("synthetic", uri=f"sqlite:///{tmp_path}/mlflow.db")
    class NanTerm(torch.nn.Module):
        def forward(self, logits, target):
            return logits.sum() * float("nan")

    monkeypatch.setattr(trainer, "create_loss", lambda *a, **k: WeightedSum([({}, NanTerm())]))
    with pytest.raises(SegbenchError, match=r"smp_unet__dice: loss is nan at epoch 1"):
        trainer.train_pair("smp_unet", "dice", params(), *data, tmp_path / "smp_unet__dice", tracker)
    assert not (tmp_path / "smp_unet__dice" / "train.json").exists()
    runs = tracker.client.search_runs([tracker._experiment_id()], "tags.`segbench.role` = 'pair'")
    assert [r.info.status for r in runs] == ["FAILED"]


def test_train_evaluate_report_are_mirrored_in_mlflow(data, tmp_path, monkeypatch):
    from segbench.report.tables import comparison_table, write_excel

    tracker = Tracker("synthetic", uri=f"sqlite:///{tmp_path}/mlflow.db")
    p = params(epochs=2)
    runs = {}
    for loss in ("dice", "dice_focal"):
        out = tmp_path / f"attention_unet__{loss}"
        trainer.train_pair("attention_unet", loss, p, *data, out, tracker)
        metrics = evaluate_pair(out, *data, batch_size=8, tracker=tracker)
        runs[("attention_unet", loss)] = out
        per_image = pd.read_csv(out / "per_image.csv")
        assert len(per_image) == metrics["n_images"] > 0
        assert metrics["dice"] == pytest.approx(per_image["dice"].mean())
    table = comparison_table(runs)
    assert list(table["Dice"]) == sorted(table["Dice"], reverse=True) and list(table["rank"]) == [1, 2]
    write_excel(table, tmp_path / "comparison.xlsx")
    sheet = load_workbook(tmp_path / "comparison.xlsx")["comparison"]
    assert [c.value for c in sheet[1]][:3] == ["rank", "architecture", "loss"] and sheet.max_row == 3
    tracker.finish_sweep("tiny", {"best_test_dice": float(table["Dice"][0])}, {"best_pair": "x"}, [])

    client = MlflowClient(f"sqlite:///{tmp_path}/mlflow.db")
    experiment = client.get_experiment_by_name("segbench-synthetic")
    parents = client.search_runs([experiment.experiment_id], "tags.`segbench.role` = 'sweep'")
    children = client.search_runs([experiment.experiment_id], "tags.`segbench.role` = 'pair'")
    assert len(parents) == 1 and parents[0].info.status == "FINISHED" and parents[0].info.run_name == "tiny"
    assert len(children) == 2
    for child in children:
        assert child.data.tags["mlflow.parentRunId"] == parents[0].info.run_id
        assert child.data.params["train.epochs"] == "2" and child.info.status == "FINISHED"
        assert len(client.get_metric_history(child.info.run_id, "val_dice")) == 2
        assert "test_dice" in child.data.metrics
        assert {"train_seconds", "val_seconds", "peak_memory_mb", "lr"} <= set(child.data.metrics)
    versions = client.search_model_versions("name = 'tiny'")
    assert sorted(v.run_id for v in versions) == sorted(c.info.run_id for c in children)


def test_valid_region_excludes_padding():
    meta = pd.DataFrame({"orig_h": [100], "orig_w": [50], "scale": [0.32], "pad_top": [0], "pad_left": [8]})
    region = valid_region(meta, 32)[0, 0]
    assert region[:, 8:24].all() and not region[:, :8].any() and not region[:, 24:].any()


def test_a_sweep_with_one_loss_of_each_family_runs_end_to_end(prepared, tmp_path, monkeypatch, capsys):
    """weighted CE (distribution), focal Tversky (region), Dice + ramped boundary (boundary),
    unified focal (compound), through the real CLI."""
    import shutil

    import yaml

    from segbench.cli import main

    shutil.copytree(prepared / "data", tmp_path / "data")
    p = copy.deepcopy(TINY)
    p["sweep"].update(architectures=["attention_unet"],
                      losses=["weighted_ce", "focal_tversky", "gdl_boundary", "unified_focal"])
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(p))
    monkeypatch.chdir(tmp_path)
    for loss in p["sweep"]["losses"]:
        assert main(["train", "--arch", "attention_unet", "--loss", loss]) == 0
        assert main(["evaluate", "--arch", "attention_unet", "--loss", loss]) == 0
    assert main(["report"]) == 0
    table = (tmp_path / "results/report/comparison.md").read_text()
    assert all(f" {loss} " in table for loss in p["sweep"]["losses"])


def test_deep_supervision_outputs_train_and_only_the_first_predicts(data, tmp_path, monkeypatch):
    class TwoHeads(torch.nn.Module):  # full-size and half-size logits
        def __init__(self):
            super().__init__()
            self.conv = torch.nn.Conv2d(1, 1, 3, padding=1)

        def forward(self, x):
            full = self.conv(x)
            return [full, torch.nn.functional.avg_pool2d(full, 2)]

    monkeypatch.setattr(trainer, "build_model", lambda *args: TwoHeads())
    summary = trainer.train_pair("smp_unet", "dice", params(deep_supervision=[1.0, 0.5]), *data, tmp_path / "ds")
    assert summary["epochs"] == 1 and 0 <= summary["best_val_dice"] <= 1


def test_distance_maps_follow_the_augmented_mask(data):
    from segbench.data.dataset import Processed, SegmentationDataset, augmentation

    processed = Processed.load(*data)
    dataset = SegmentationDataset(processed, processed.indices("train"), 0.0, 1.0,
                                  augmentation(params()["train"]["augment"], 0), distances=True)
    for i in range(len(dataset)):
        item = dataset[i]
        inside = item["mask"] > 0
        assert (item["distance"][inside] <= 0).all() and (item["distance"][~inside] >= 0).all()


def test_a_sweep_can_name_every_paper_model_and_an_smp_one(prepared, tmp_path, monkeypatch):
    """Every from-the-paper entry (deep supervision on where it exists) and smp's U-Net, through the CLI."""
    import shutil

    import yaml

    from segbench.cli import main
    from test_models import PAPER, small

    shutil.copytree(prepared / "data", tmp_path / "data")
    p = copy.deepcopy(TINY)
    p["architectures"] = {name: small(name, img_size=32) if name == "transunet" else small(name)
                          for name in PAPER}
    for name in ("unet_plusplus", "unet3plus"):
        p["architectures"][f"{name}_ds"] = {"family": name, "deep_supervision": True, **small(name)}
    p["architectures"]["smp_unet"] = {}
    p["sweep"].update(architectures=sorted(p["architectures"]), losses=["dice"])
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(p))
    monkeypatch.chdir(tmp_path)
    for arch in p["sweep"]["architectures"]:
        assert main(["train", "--arch", arch, "--loss", "dice"]) == 0, arch
        assert main(["evaluate", "--arch", arch, "--loss", "dice"]) == 0, arch
    assert main(["report"]) == 0
    table = (tmp_path / "results/report/comparison.md").read_text()
    assert all(f" {arch} " in table for arch in p["sweep"]["architectures"])
