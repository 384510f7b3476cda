"""Resume after a kill, the GPU lease (simulated devices), augmentation alignment."""

import subprocess
import sys
import time

import numpy as np
import pandas as pd
import pytest
import torch

from support import tiny_view as params
from segbench.data.dataset import augmentation
from segbench.tracking import Tracker
from segbench.training import trainer
from segbench.training.lease import DeviceLease, visible_devices

def weights(path):
    return torch.load(path, weights_only=True)["model"]  # checkpoints hold tensors and plain values only


def test_killed_run_resumes_to_the_same_result(data, tmp_path, monkeypatch):
    p = params(epochs=4, scheduler="cosine")
    trainer.train_pair("attention_unet", "dice_focal", p, *data, tmp_path / "full")

    real_write, calls = trainer.write_csv, []

    def killed_after_epoch_two(path, frame):
        real_write(path, frame)
        if path.name == "history.csv":
            calls.append(path)
        if len(calls) == 2:
            raise KeyboardInterrupt("simulated kill")

    tracker = Tracker("synthetic", "tiny", uri=f"sqlite:///{tmp_path}/mlflow.db")
    monkeypatch.setattr(trainer, "write_csv", killed_after_epoch_two)
    run = tmp_path / "attention_unet__dice_focal"
    with pytest.raises(KeyboardInterrupt):
        trainer.train_pair("attention_unet", "dice_focal", p, *data, run, tracker=tracker)
    assert (run / "resume.pt").exists() and not (run / "train.json").exists()
    torch.load(run / "resume.pt", weights_only=True)  # the resume state too: RNG states as plain values
    child = tracker.client.search_runs([tracker.experiment_id()], "tags.`segbench.role` = 'pair'")[0]
    assert child.info.status == "KILLED"

    for output in ("model_best.pt", "history.csv"):  # Snakemake deletes a failed job's outputs
        (run / output).unlink()
    monkeypatch.setattr(trainer, "write_csv", real_write)
    summary = trainer.train_pair("attention_unet", "dice_focal", p, *data, run, tracker=tracker)
    assert summary["epochs"] == 4 and not (run / "resume.pt").exists() and not (run / "resume_best.pt").exists()
    resumed, full = (pd.read_csv(d / "history.csv") for d in (run, tmp_path / "full"))
    pd.testing.assert_frame_equal(resumed, full)
    for name in ("model_best.pt", "model_last.pt"):
        a, b = weights(run / name), weights(tmp_path / "full" / name)
        assert all(torch.equal(a[k], b[k]) for k in a)
    child = tracker.client.get_run(child.info.run_id)
    assert child.info.status == "FINISHED"
    assert [m.step for m in tracker.client.get_metric_history(child.info.run_id, "val_dice")] == [1, 2, 3, 4]


def test_changed_params_start_afresh_instead_of_resuming(data, tmp_path, monkeypatch):
    run = tmp_path / "smp_unet__dice"
    monkeypatch.setattr(trainer, "write_csv", lambda *a: (_ for _ in ()).throw(KeyboardInterrupt()))
    with pytest.raises(KeyboardInterrupt):
        trainer.train_pair("smp_unet", "dice", params(epochs=2), *data, run)
    monkeypatch.undo()
    summary = trainer.train_pair("smp_unet", "dice", params(epochs=2, lr=5e-4), *data, run)
    assert summary["epochs"] == 2 and len(pd.read_csv(run / "history.csv")) == 2


def test_early_stopping_and_plateau_schedule(data, tmp_path, monkeypatch):
    from segbench.training import validation

    # validation Dice never improves after epoch 1
    monkeypatch.setattr(validation, "mean_overlap", lambda labels, truth, classes: {"dice": 0.5, "iou": 0.3})
    p = params(epochs=10, early_stopping_patience=3, plateau_patience=0, plateau_factor=0.5, lr=1e-3)
    summary = trainer.train_pair("attention_unet", "dice", p, *data, tmp_path / "run")
    history = pd.read_csv(tmp_path / "run" / "history.csv")
    assert summary["epochs"] == len(history) == 4 and summary["best_epoch"] == 1
    assert list(history["lr"]) == pytest.approx([1e-3, 1e-3, 5e-4, 2.5e-4])


def test_lease_gives_each_job_its_own_device(tmp_path):
    holder = subprocess.Popen([sys.executable, "-c", (
        "import sys, time; from segbench.training.lease import DeviceLease\n"
        f"lease = DeviceLease(['0', '1'], __import__('pathlib').Path({str(tmp_path)!r})); "
        "print(lease.acquire(), flush=True); time.sleep(60)")], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "0"          # another process holds GPU 0
        second = DeviceLease(["0", "1"], tmp_path, poll=0.05)
        assert second.acquire() == 1
        with pytest.raises(TimeoutError, match="no free GPU"):
            DeviceLease(["0", "1"], tmp_path, poll=0.05, timeout=0.3).acquire()
        holder.kill()
        holder.wait()
        started = time.monotonic()
        assert DeviceLease(["0", "1"], tmp_path, poll=0.05, timeout=5).acquire() == 0  # freed by the exit
        assert time.monotonic() - started < 5
        second.release()
    finally:
        holder.kill()


def test_visible_devices_follow_cuda_visible_devices(monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "3,5")
    assert visible_devices(2) == ["3", "5"]
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES")
    assert visible_devices(2) == ["0", "1"]


def test_augmentation_moves_image_and_mask_together():
    options = {**params()["train"]["augment"], "affine_p": 1.0, "brightness_contrast_p": 0.0, "hflip": 0.5,
               "vflip": 0.5, "rotate": 30, "scale": 0.2}
    compose = augmentation(options, seed=0)
    mask = np.zeros((64, 64), np.uint8)
    mask[10:30, 20:50] = 1
    image = (mask * 200 + 20).astype(np.uint8)
    for _ in range(20):
        out = compose(image=image, mask=mask)
        bright = out["image"] > 120
        agree = (bright == (out["mask"] > 0)).mean()
        assert agree > 0.98 and out["mask"].sum() > 0
