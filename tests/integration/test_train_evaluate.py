"""Training and evaluation of pairs: reproducibility, the evaluation protocol, the MLflow mirror."""

import copy
import json
import logging
import re
import shutil
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import yaml
from mlflow.tracking import MlflowClient

from segbench import SegbenchError
from segbench.io import MaskZip, read_json
from segbench.losses.weighted_sum import WeightedSum
from segbench.training import callbacks, trainer
from support import PAPER, SWEEP, TINY, results_copy, small
from support import tiny_view as params

TIMING = list(callbacks.TIMING)


def run_dir(root, pair: str):
    return root / SWEEP.seed(*pair.split("__"), 0)


def test_same_seed_same_history_and_weights(data, tmp_path):
    runs = [trainer.train_pair("attention_unet", "dice_focal", params(epochs=2), *data, tmp_path / name)
            for name in ("a", "b")]
    histories = [pd.read_csv(tmp_path / n / "history.csv") for n in ("a", "b")]
    assert not set(TIMING) & set(histories[0]) and set(TIMING) < set(pd.read_csv(tmp_path / "a" / "timing.csv"))
    assert histories[0].equals(histories[1]) and len(histories[0]) == 2
    weights = [torch.load(tmp_path / n / "model_best.pt", weights_only=True)["model"] for n in ("a", "b")]
    assert all(torch.equal(weights[0][k], weights[1][k]) for k in weights[0])
    assert runs[0]["best_val_dice"] == runs[1]["best_val_dice"]
    assert set(read_json(tmp_path / "a" / "train.json")) >= {"best_epoch", "n_params", "mean", "std", "epochs"}
    other_seed = trainer.train_pair("attention_unet", "dice_focal", params(epochs=2), *data, tmp_path / "c", seed=1)
    assert pd.read_csv(tmp_path / "c" / "history.csv")["train_loss"].iloc[0] != histories[0]["train_loss"].iloc[0]
    assert other_seed["seed"] == 1


def test_a_non_finite_loss_stops_training_and_is_recorded_not_raised(data, tmp_path, monkeypatch):
    """A diverged run is a failed pair the report marks, not a failed sweep: it keeps the weights it had."""
    class NanTerm(torch.nn.Module):
        def forward(self, logits, target):
            return logits.sum() * float("nan")

    monkeypatch.setattr(trainer, "create_loss", lambda *a, **k: WeightedSum([({}, NanTerm())]))
    summary = trainer.train_pair("smp_unet", "dice", params(epochs=3), *data, tmp_path / "run")
    assert summary["diverged"] == {"epoch": 1, "loss": "nan"} and summary["epochs"] == 0
    checkpoint = torch.load(tmp_path / "run" / "model_best.pt", weights_only=True)
    assert all(torch.isfinite(v).all() for v in checkpoint["model"].values() if v.is_floating_point())
    from segbench.evaluation.summary import degenerate

    reasons = degenerate(pd.DataFrame({"lesion": [True], "foreground_fraction": [0.2], "specificity": [0.9]}),
                         [{**summary, "best_val_dice": 0.5}])
    assert reasons == ["the loss went non-finite at epoch 1 (fold 0)"]


def test_out_of_gpu_memory_is_recorded_with_a_one_line_reason_not_raised(prepared, tmp_path, monkeypatch, caplog):
    """A simulated CUDA out-of-memory error in epoch 2: the job ends with a one-line reason naming the pair, the
    batch size, the AMP dtype and what to change, train.json records it and keeps epoch 1, and it exits 0 (the
    sweep goes on; the report marks the pair)."""
    import logging

    from segbench.apps.cli import main
    from segbench.evaluation.summary import degenerate

    shutil.copytree(prepared, tmp_path / "p")
    monkeypatch.chdir(tmp_path / "p")
    p = yaml.safe_load(Path("params.yaml").read_text())
    p["train"]["epochs"] = 3
    Path("params.yaml").write_text(yaml.safe_dump(p))
    original = trainer.Session.train_epoch

    def second_epoch_oom(self, loader, loss_fn, pair, epoch, *rest):
        if epoch == 2:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return original(self, loader, loss_fn, pair, epoch, *rest)

    monkeypatch.setattr(trainer.Session, "train_epoch", second_epoch_oom)
    with caplog.at_level(logging.INFO):
        assert main(["train", "--arch", "attention_unet", "--loss", "dice"]) == 0
    last = caplog.records[-1]
    assert last.levelname == "ERROR" and last.getMessage().startswith(
        "attention_unet__dice failed, recorded: out of GPU memory training attention_unet__dice/seed0/fold0 at batch "
        "size 8 (AMP off, peak ") and "lower train.batch_size" in last.getMessage()
    summary = read_json(SWEEP.fold("attention_unet", "dice", 0, 0) / "train.json")
    assert summary["epochs"] == 1 and summary["failed"]["epoch"] == 2 and summary["diverged"] is None
    assert degenerate(pd.DataFrame({"lesion": [True], "foreground_fraction": [0.2], "specificity": [0.9]}),
                      [summary])[0].startswith("training stopped at epoch 2, out of GPU memory training")


def test_an_fp16_overflow_is_a_skipped_step_and_only_a_run_of_them_diverges(data, tmp_path, monkeypatch):
    """As in PyTorch's AMP recipe: an inf loss now and then is skipped (GradScaler, or no step without one); only
    DIVERGED_STEPS in a row are a divergence."""
    class Sometimes(torch.nn.Module):
        calls = 0

        def forward(self, logits, target):
            Sometimes.calls += 1
            return logits.mean() * (float("inf") if Sometimes.calls % 3 == 0 else 1.0)

    monkeypatch.setattr(trainer, "create_loss", lambda *a, **k: WeightedSum([({}, Sometimes())]))
    summary = trainer.train_pair("attention_unet", "dice", params(epochs=2), *data, tmp_path / "run")
    assert summary["diverged"] is None and summary["epochs"] == 2 and Sometimes.calls >= 6
    history = pd.read_csv(tmp_path / "run" / "history.csv")
    assert np.isfinite(history["train_loss"]).all()


def test_normalisation_is_per_channel_and_exact_in_bounded_chunks(data, monkeypatch):
    from segbench.data import processed as processed_module

    processed = processed_module.Processed.load(*data)
    train = processed.indices("train")
    reference = np.stack([processed.images[i] for i in train]).astype(np.float64) / 255
    monkeypatch.setattr(processed_module, "CHUNK_BYTES", 3 * 32 * 32)  # three images a chunk
    mean, std = processed.normalisation(train)
    assert mean == pytest.approx([reference.mean()], rel=1e-12) and std == pytest.approx([reference.std()], rel=1e-9)
    rgb = np.random.default_rng(0).integers(0, 256, (5, 8, 8, 3), np.uint8)
    np.save(data[0].parent / "rgb.npy", rgb)
    rows = processed_module.NpyRows(data[0].parent / "rgb.npy")
    monkeypatch.setattr(processed, "images", rows)
    mean, std = processed.normalisation(np.arange(5))
    assert mean == pytest.approx(list(rgb.reshape(-1, 3).mean(0) / 255)) and len(std) == 3


def test_pretrained_encoders_use_their_own_statistics(data, monkeypatch):
    import huggingface_hub.constants
    import segmentation_models_pytorch.encoders as encoders

    processed = trainer.Processed.load(*data)
    cfg = {"family": "smp_unet", "encoder": "resnet18", "encoder_weights": "imagenet"}
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)  # offline: a clear error, no retries
    with pytest.raises(SegbenchError, match="cannot fetch the 'imagenet' settings .* encoder_weights: null"):
        trainer.input_normalisation(cfg, processed, processed.indices("train"))
    imagenet = {"mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225]}  # what the hub's config.json holds
    monkeypatch.setattr(encoders, "get_preprocessing_params", lambda name, pretrained: imagenet)
    mean, std = trainer.input_normalisation(cfg, processed, processed.indices("train"))
    assert mean == pytest.approx([np.mean(imagenet["mean"])]) and std == pytest.approx([np.mean(imagenet["std"])])


def test_sweep_outputs_and_mlflow_mirror(swept):
    client = MlflowClient(f"sqlite:///{swept}/mlflow.db")
    experiment = client.get_experiment_by_name("segbench-synthetic")
    assert experiment.tags["mlflow.experimentKind"] == "custom_model_development"
    parents = client.search_runs([experiment.experiment_id], "tags.`segbench.role` = 'sweep'")
    children = client.search_runs([experiment.experiment_id], "tags.`segbench.role` = 'pair'")
    assert len(parents) == 1 and parents[0].info.status == "FINISHED" and parents[0].info.run_name == "tiny"
    assert len(children) == 4
    for child in children:
        assert child.data.tags["mlflow.parentRunId"] == parents[0].info.run_id
        assert child.data.params["train.epochs"] == "2" and child.info.status == "FINISHED"
        assert len(client.get_metric_history(child.info.run_id, "val_dice")) == 2
        assert {"test_dice", "test_hd95", "test_nsd", "train_seconds", "lr"} <= set(child.data.metrics)
        assert child.data.tags["segbench.dataset"] == "synthetic" and child.data.tags["segbench.sweep"] == "tiny"
        assert child.data.tags["mlflow.source.name"] == "segbench"
    for arch in TINY["sweep"]["architectures"]:
        for loss in TINY["sweep"]["losses"]:
            run = swept / SWEEP.seed(arch, loss, 0)
            metrics, per_image = read_json(run / "metrics.json"), pd.read_csv(run / "per_image.csv")
            lesion = per_image[per_image["lesion"]]
            assert metrics["n_images"] == len(per_image) and metrics["dice"] == pytest.approx(lesion["dice"].mean())
            assert metrics["postprocessing"]["name"] in ("none", "fill_holes", "largest_component", "remove_small")
            assert set(metrics["postprocessing"]["val_lesion_dice"]) == {"none", "fill_holes", "largest_component",
                                                                         "remove_small"}
            assert {"lesion_sensitivity", "false_positives_per_image", "image_sensitivity"} <= set(metrics["detection"])
            assert metrics["hd95_matched"] is None or metrics["hd95_matched"] <= metrics["hd95"] + 1e-9
            assert {"tumor_type", "size_bucket", "benign_malignant", "center", "view"} <= set(metrics["strata"])
            assert metrics["resolution"] == "original" and not {"latency_ms_cpu", "memory_mb_cpu"} & set(metrics)
        latency = read_json(swept / SWEEP.latency(arch))  # per architecture, not per pair
        assert latency["latency_ms_cpu"] > 0 and latency["latency_ms_cpu_iqr"] >= 0 and latency["cpu_threads"] == 1


def test_evaluating_against_a_store_without_the_training_runs_warns_and_writes_the_results(swept, tmp_path,
                                                                                          monkeypatch, caplog):
    """MLflow is a mirror: a seed trained against another tracking store is evaluated and written; the runs the
    store lacks are named in warnings (no metrics mirrored, no model registered), not raised."""
    import logging

    from segbench.apps.cli import main

    project = results_copy(swept, tmp_path / "project")
    monkeypatch.chdir(project)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path}/other.db")
    metrics = project / SWEEP.seed("attention_unet", "dice", 0) / "metrics.json"
    metrics.unlink()
    with caplog.at_level(logging.WARNING, logger="segbench"):
        assert main(["evaluate", "--arch", "attention_unet", "--loss", "dice"]) == 0
    assert read_json(metrics)["run"] == "attention_unet__dice/seed0"
    trained = read_json(project / SWEEP.fold("attention_unet", "dice", 0, 0) / "train.json")["mlflow_run_id"]
    assert f"MLflow run {trained}: metrics not mirrored" in caplog.text
    assert f"MLflow run {trained}: model not registered" in caplog.text
    other = MlflowClient(f"sqlite:///{tmp_path}/other.db")
    assert other.search_model_versions("name = 'segbench-synthetic-tiny'") == []


def test_predictions_are_kept_at_the_original_size_and_monai_recomputes_the_metrics(swept):
    from monai.metrics import compute_average_surface_distance, compute_hausdorff_distance, compute_surface_dice

    run = run_dir(swept, "smp_unet__dice_focal")
    per_image = pd.read_csv(run / "per_image.csv").astype({"sample_id": str}).set_index("sample_id")
    meta = pd.read_csv(swept / "data/processed/synthetic/meta.csv").astype({"sample_id": str}).set_index("sample_id")
    with np.load(run / "test_predictions.npz") as saved, \
            MaskZip(swept / "data/processed/synthetic/masks_original.zip") as truth:
        assert set(saved.files) == set(per_image.index)
        for sample_id, scores in per_image.iterrows():
            pred, true = saved[sample_id], truth[sample_id]
            assert pred.shape == true.shape == (meta.loc[sample_id, "orig_h"], meta.loc[sample_id, "orig_w"])
            if not pred.any() or not true.any():
                continue  # MONAI gives NaN / inf there; our policy is tested in test_metrics
            p, t = (torch.from_numpy(np.stack([m == 0, m == 1]).astype(np.float32))[None] for m in (pred, true))
            assert scores["hd95"] == pytest.approx(compute_hausdorff_distance(p, t, percentile=95).item(), rel=1e-6)
            assert scores["assd"] == pytest.approx(compute_average_surface_distance(p, t, symmetric=True).item(),
                                                   rel=1e-6)
            assert scores["nsd"] == pytest.approx(compute_surface_dice(p, t, [2.0]).item(), rel=1e-6)


def test_validation_scores_the_same_way_as_the_test(swept, monkeypatch):
    """The best epoch's val Dice in train.json equals evaluation's out-of-fold Dice of the raw prediction on the
    same images (those with a lesion): both map probabilities back to the original size and compare there."""
    run = run_dir(swept, "attention_unet__dice")
    metrics, summary = read_json(run / "metrics.json"), read_json(run / "folds/fold0/train.json")
    assert metrics["postprocessing"]["val_lesion_dice"]["none"] == pytest.approx(summary["best_val_dice"], abs=1e-9)


def test_normal_images_are_a_detection_question(prepared, tmp_path, monkeypatch):
    """With include_normal, segmentation means use the images with a lesion; the normals give the
    false-positive rate, and detection its sensitivity and specificity."""
    from segbench.apps.cli import main

    p = copy.deepcopy(TINY)
    p["datasets"]["synthetic"]["include_normal"] = True
    p["synthetic"]["normal_fraction"] = 0.4
    p["split"]["stratify"] = "benign_malignant"
    p["sweep"].update(architectures=["attention_unet"], losses=["dice"])
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(p))
    monkeypatch.chdir(tmp_path)
    for stage in (["download"], ["preprocess"], ["split"], ["train", "--arch", "attention_unet", "--loss", "dice"],
                  ["evaluate", "--arch", "attention_unet", "--loss", "dice"], ["latency", "--arch", "attention_unet"],
                  ["report"]):
        assert main(stage) == 0
    run = run_dir(tmp_path, "attention_unet__dice")
    metrics, per_image = read_json(run / "metrics.json"), pd.read_csv(run / "per_image.csv")
    assert metrics["n_normal_images"] == (~per_image["lesion"]).sum() > 0
    assert metrics["dice"] == pytest.approx(per_image.loc[per_image["lesion"], "dice"].mean())
    normals, lesions = per_image[~per_image["lesion"]], per_image[per_image["lesion"]]
    detection = metrics["detection"]
    assert detection["image_specificity"] == pytest.approx((normals["lesions_predicted"] == 0).mean())
    assert detection["false_positives_per_normal_image"] == pytest.approx(normals["lesions_predicted"].mean())
    assert detection["image_sensitivity"] == pytest.approx((lesions["lesions_matched"] > 0).mean())
    # the lesion counts, again by an independent count of the saved predictions (OpenCV, brute-force IoU)
    from segbench.io import MaskZip
    from support.counts import independent_lesion_count

    with np.load(run / "test_predictions.npz") as saved, MaskZip(tmp_path / "data/processed/synthetic/"
                                                                            "masks_original.zip") as truth:
        for _, row in per_image.iterrows():
            pred, true = saved[str(row["sample_id"])] > 0, truth[str(row["sample_id"])] > 0
            true_n, predicted_n, _ = independent_lesion_count(pred, true, 0.1, max(1, int(np.ceil(1e-4 * pred.size))))
            assert (row["lesions_true"], row["lesions_predicted"]) == (true_n, predicted_n)
            assert row["lesions_matched"] <= min(true_n, predicted_n)
    page = (tmp_path / SWEEP.report / "report.html").read_text()
    detection_section = page.split('id="detection"')[1].split("</section>")[0]
    for title in ("Lesion sensitivity", "FP / image", "Image specificity", "FP / normal image"):
        assert title in detection_section
    assert f"{detection['false_positives_per_image']:.3f}" in detection_section


def test_a_sweep_with_one_loss_of_each_family_runs_end_to_end(prepared, tmp_path, monkeypatch):
    """weighted CE (distribution), focal Tversky (region), Dice + ramped boundary (boundary),
    unified focal (compound), through the real CLI."""
    from segbench.apps.cli import main

    shutil.copytree(prepared / "data", tmp_path / "data")
    p = copy.deepcopy(TINY)
    p["sweep"].update(architectures=["attention_unet"],
                      losses=["weighted_ce", "focal_tversky", "gdl_boundary", "unified_focal"])
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(p))
    monkeypatch.chdir(tmp_path)
    for loss in p["sweep"]["losses"]:
        assert main(["train", "--arch", "attention_unet", "--loss", loss]) == 0
        assert main(["evaluate", "--arch", "attention_unet", "--loss", loss]) == 0
    assert main(["latency", "--arch", "attention_unet"]) == 0
    assert main(["report"]) == 0
    table = (tmp_path / SWEEP.report / "comparison.md").read_text()
    assert all(f" {loss} " in table for loss in p["sweep"]["losses"])
    assert "`focal_tversky` = focal_tversky(alpha=0.3, beta=0.7, gamma=1.333)" in table


def test_deep_supervision_outputs_train_and_only_the_first_predicts(data, tmp_path, monkeypatch):
    class TwoHeads(torch.nn.Module):  # full-size and half-size logits
        def __init__(self):
            super().__init__()
            self.conv = torch.nn.Conv2d(1, 1, 3, padding=1)

        def forward(self, x):
            full = self.conv(x)
            return [full, torch.nn.functional.avg_pool2d(full, 2)] if self.training else full

    monkeypatch.setattr(trainer, "build_model", lambda *args: TwoHeads())
    summary = trainer.train_pair("smp_unet", "dice", params(deep_supervision=[1.0, 0.5]), *data, tmp_path / "ds")
    assert summary["epochs"] == 1 and 0 <= summary["best_val_dice"] <= 1


def test_distance_maps_follow_the_augmented_mask(data):
    from segbench.data.dataset import SegmentationDataset, augmentation
    from segbench.data.processed import Processed

    processed = Processed.load(*data)
    dataset = SegmentationDataset(processed, processed.indices("train"), [0.0], [1.0],
                                  augmentation(params()["train"]["augment"]), distances=True)
    for i in range(len(dataset)):
        item = dataset[i]
        inside = item["mask"] > 0
        assert (item["distance"][inside] <= 0).all() and (item["distance"][~inside] >= 0).all()


def test_a_sweep_can_name_every_paper_model_and_an_smp_one(prepared, tmp_path, monkeypatch):
    """Every from-the-paper entry (deep supervision on where it exists) and smp's U-Net, through the CLI."""
    from segbench.apps.cli import main

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
        assert main(["latency", "--arch", arch]) == 0, arch
    assert main(["report"]) == 0
    table = (tmp_path / SWEEP.report / "comparison.md").read_text()
    assert all(f" {arch} " in table for arch in p["sweep"]["architectures"])
    assert json.loads((tmp_path / SWEEP.report / "summary.json").read_text())["pairs"] == len(PAPER) + 3


def test_a_pair_trained_to_predict_all_foreground_is_flagged_and_a_two_image_test_set_is_said(tmp_path, monkeypatch):
    """Cross-entropy that weighs only the foreground teaches a model to mark every pixel: the report marks that
    pair as failed, with the reason, and ranks it last; 2 test images get the small-test-set caveat."""
    from segbench.apps.cli import main

    p = copy.deepcopy(TINY)
    p["synthetic"].update(n_images=20, normal_fraction=0.0)  # 20 images, 10 % test: 2
    p["train"].update(epochs=3, lr=0.01)
    p["losses"]["all_foreground"] = [{"term": "weighted_ce", "class_weights": [0.0, 1.0]}]
    p["sweep"].update(architectures=["attention_unet"], losses=["dice", "all_foreground"])
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(p))
    monkeypatch.chdir(tmp_path)
    for stage in ("download", "preprocess", "split"):
        assert main([stage]) == 0
    for loss in p["sweep"]["losses"]:
        assert main(["train", "--arch", "attention_unet", "--loss", loss]) == 0
        assert main(["evaluate", "--arch", "attention_unet", "--loss", loss]) == 0
    assert main(["latency", "--arch", "attention_unet"]) == 0
    assert main(["report"]) == 0
    metrics = read_json(run_dir(tmp_path, "attention_unet__all_foreground") / "metrics.json")
    assert any("the whole image as lesion" in reason for reason in metrics["degenerate"])
    statistics = read_json(tmp_path / SWEEP.report / "statistics.json")
    assert statistics["n_images"] == 2 and statistics["ranking"][-1] == "attention_unet__all_foreground"
    page = (tmp_path / SWEEP.report / "report.html").read_text()
    verdict = page.split('class="verdict">')[1].split("</p>")[0]
    assert re.search("Did not learn the task|Why none learned", verdict)  # (3 epochs: the Dice pair may not either)
    assert "the whole image as lesion on 100% of the test images" in verdict
    assert "Small test set: 2 images with a lesion" in page


def test_a_rerun_pair_supersedes_its_mlflow_run_so_the_view_matches_the_report(swept, tmp_path, monkeypatch):
    """A loss option changed and one pair rerun: the sweep's saved view (its filter) lists one run per training,
    the rerun's, whose test Dice is the report's; the superseded run stays, tagged."""
    import json

    from segbench.apps.cli import main
    from segbench.tracking import SHARED_VIEW

    project = results_copy(swept, tmp_path / "project")
    shutil.copy(swept / "mlflow.db", project / "mlflow.db")
    monkeypatch.chdir(project)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    p = yaml.safe_load(Path("params.yaml").read_text())
    p["losses"]["dice_focal"][1]["gamma"] = 3.0
    Path("params.yaml").write_text(yaml.safe_dump(p))
    for stage in ("train", "evaluate"):
        assert main([stage, "--arch", "attention_unet", "--loss", "dice_focal"]) == 0
    assert main(["report", "--mlflow-port", "5123"]) == 0
    client = MlflowClient(f"sqlite:///{project}/mlflow.db")
    experiment = client.get_experiment_by_name("segbench-synthetic")
    view = json.loads(experiment.tags[f"{SHARED_VIEW}segbench-synthetic-tiny"])
    shown = client.search_runs([experiment.experiment_id], view["searchFilter"])
    assert sorted(r.info.run_name for r in shown) == sorted(f"{a}__{l}/seed0/fold0" for a in TINY["sweep"][
        "architectures"] for l in TINY["sweep"]["losses"])  # one run per training
    rerun = next(r for r in shown if r.info.run_name == "attention_unet__dice_focal/seed0/fold0")
    reported = read_json(SWEEP.report / "statistics.json")["per_pair"]["attention_unet__dice_focal"]["mean"]
    assert rerun.data.metrics["test_dice"] == pytest.approx(reported)
    old = client.search_runs([experiment.experiment_id], "tags.`segbench.current` = 'no'")
    assert [r.data.tags["segbench.superseded_by"] for r in old] == [rerun.info.run_id]


def _slow_measure(folder, log):
    from segbench.evaluation.latency import measured_once

    def measure():
        with open(log, "a") as handle:
            handle.write("measured\n")
        time.sleep(0.5)
        return {"latency_ms_cpu": 1.0}
    return measured_once(folder, {"architecture": "a", "size": 32}, measure)


def test_latency_is_measured_once_per_architecture_and_input_whatever_the_dataset_or_sweep(
        swept, tmp_path, monkeypatch, caplog):
    import multiprocessing

    log = tmp_path / "measured.txt"
    with multiprocessing.get_context("spawn").Pool(3) as pool:  # three jobs at once: one measures, two wait
        results = pool.starmap(_slow_measure, [(tmp_path / "cache", log)] * 3)
    assert results == [{"latency_ms_cpu": 1.0}] * 3 and log.read_text() == "measured\n"

    from segbench.apps.cli import main

    project = results_copy(swept, tmp_path / "project")
    monkeypatch.chdir(project)
    shutil.rmtree(project / "results/_latency", ignore_errors=True)
    with caplog.at_level(logging.INFO):
        assert main(["latency", "--arch", "attention_unet"]) == 0
        assert "the measurement in" not in caplog.text
        first = read_json(project / SWEEP.latency("attention_unet"))
        # another sweep: reused
        assert main(["latency", "--arch", "attention_unet", "--config", "sweep={name: another}"]) == 0
        assert "the measurement in results/_latency/" in caplog.text
        assert read_json(project / "results/synthetic/another/latency/attention_unet.json") == first
        caplog.clear()
        assert main(["latency", "--arch", "attention_unet", "--config", "sweep={name: third}",
                     "preprocess={size: 64}"]) == 0
        assert "the measurement in" not in caplog.text  # another input size: measured again
        assert read_json(project / "results/synthetic/third/latency/attention_unet.json")["input"][1:] == [64, 64]
    assert len(list((project / "results/_latency").glob("*.json"))) == 2
