"""Resume after a kill (with loader workers too), early stopping, augmentation alignment."""


import numpy as np
import pandas as pd
import pytest
import torch

from segbench import SegbenchError
from segbench.data.dataset import augmentation
from segbench.tracking import Tracker
from segbench.training import callbacks, trainer
from support import tiny_view as params


def weights(path):
    return torch.load(path, weights_only=True)["model"]  # checkpoints hold tensors and plain values only


def test_killed_run_resumes_to_the_same_result(data, tmp_path, monkeypatch):
    p = params(epochs=4, scheduler="cosine")
    trainer.train_pair("attention_unet", "dice_focal", p, *data, tmp_path / "full")

    real_write, calls = callbacks.write_csv, []

    def killed_after_epoch_two(path, frame):
        real_write(path, frame)
        if path.name == "history.csv":
            calls.append(path)
        if len(calls) == 2:
            raise KeyboardInterrupt("simulated kill")

    tracker = Tracker("synthetic", "tiny", uri=f"sqlite:///{tmp_path}/mlflow.db")
    monkeypatch.setattr(callbacks, "write_csv", killed_after_epoch_two)
    run = tmp_path / "attention_unet__dice_focal"
    with pytest.raises(KeyboardInterrupt):
        trainer.train_pair("attention_unet", "dice_focal", p, *data, run, tracker=tracker)
    assert (run / "resume.pt").exists() and not (run / "train.json").exists()
    torch.load(run / "resume.pt", weights_only=True)  # the resume state too: RNG states as plain values
    child = tracker.client.search_runs([tracker.experiment_id()], "tags.`segbench.role` = 'pair'")[0]
    assert child.info.status == "KILLED"

    for output in ("model_best.pt", "history.csv"):  # Snakemake deletes a failed job's outputs
        (run / output).unlink()
    monkeypatch.setattr(callbacks, "write_csv", real_write)
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


def kill_after_epoch(monkeypatch, epoch: int) -> None:
    """The next train_pair raises KeyboardInterrupt once history.csv has ``epoch`` rows."""
    real_write, calls = callbacks.write_csv, []

    def killed(path, frame):
        real_write(path, frame)
        calls.append(path.name == "history.csv")
        if sum(calls) == epoch:
            raise KeyboardInterrupt("simulated kill")

    monkeypatch.setattr(callbacks, "write_csv", killed)


def test_loader_workers_change_nothing_and_resume_exactly(data, tmp_path, monkeypatch):
    """Augmentation is seeded per sample: 2 workers give the history 0 workers give, and a run killed after
    epoch 3 and resumed with 2 workers ends as the uninterrupted one."""
    p = params(epochs=4, workers=2, augment={**params()["train"]["augment"], "affine_p": 1.0})
    trainer.train_pair("attention_unet", "dice", p, *data, tmp_path / "workers2")
    single = params(epochs=4, workers=0, augment=p["train"]["augment"])
    trainer.train_pair("attention_unet", "dice", single, *data, tmp_path / "workers0")
    kill_after_epoch(monkeypatch, 3)
    with pytest.raises(KeyboardInterrupt):
        trainer.train_pair("attention_unet", "dice", p, *data, tmp_path / "killed")
    monkeypatch.undo()
    trainer.train_pair("attention_unet", "dice", p, *data, tmp_path / "killed")
    histories = [pd.read_csv(tmp_path / run / "history.csv") for run in ("workers2", "workers0", "killed")]
    assert len(histories[0]) == 4
    for other in histories[1:]:
        pd.testing.assert_frame_equal(other, histories[0])


def test_resume_state_is_written_only_as_often_as_asked_and_a_run_without_it_starts_afresh(data, tmp_path,
                                                                                          monkeypatch):
    """resume_every_minutes: 60 and two short epochs: no resume.pt yet when the job is killed; the rerun trains
    from epoch 1 to the same result as an uninterrupted run."""
    p = params(epochs=3, resume_every_minutes=60)
    trainer.train_pair("attention_unet", "dice", p, *data, tmp_path / "full")
    kill_after_epoch(monkeypatch, 2)
    with pytest.raises(KeyboardInterrupt):
        trainer.train_pair("attention_unet", "dice", p, *data, tmp_path / "killed")
    monkeypatch.undo()
    assert not (tmp_path / "killed" / "resume.pt").exists()
    trainer.train_pair("attention_unet", "dice", p, *data, tmp_path / "killed")
    pd.testing.assert_frame_equal(*(pd.read_csv(tmp_path / d / "history.csv") for d in ("killed", "full")))


def test_a_resume_on_another_kind_of_device_is_refused_naming_both(data, tmp_path, monkeypatch):
    run = tmp_path / "run"
    kill_after_epoch(monkeypatch, 1)
    with pytest.raises(KeyboardInterrupt):
        trainer.train_pair("attention_unet", "dice", params(epochs=3), *data, run)
    monkeypatch.undo()
    state = torch.load(run / "resume.pt", weights_only=True)
    assert state["precision"] == {"device": "cpu", "amp": "off"}
    state["precision"] = {"device": "cuda", "amp": "bfloat16"}
    torch.save(state, run / "resume.pt")
    with pytest.raises(SegbenchError, match=r"written training on \{'device': 'cuda', 'amp': 'bfloat16'\}; this "
                                            r"job trains on \{'device': 'cpu', 'amp': 'off'\}"):
        trainer.train_pair("attention_unet", "dice", params(epochs=3), *data, run)


def test_changed_params_start_afresh_instead_of_resuming(data, tmp_path, monkeypatch):
    run = tmp_path / "attention_unet__dice"
    monkeypatch.setattr(callbacks, "write_csv", lambda *a: (_ for _ in ()).throw(KeyboardInterrupt()))
    with pytest.raises(KeyboardInterrupt):
        trainer.train_pair("attention_unet", "dice", params(epochs=2), *data, run)
    monkeypatch.undo()
    summary = trainer.train_pair("attention_unet", "dice", params(epochs=2, lr=5e-4), *data, run)
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


def test_augmentation_moves_image_and_mask_together():
    options = {**params()["train"]["augment"], "affine_p": 1.0, "brightness_contrast_p": 0.0, "hflip": 0.5,
               "vflip": 0.5, "rotate": 30, "scale": 0.2}
    compose = augmentation(options)
    compose.set_random_seed(0)
    mask = np.zeros((64, 64), np.uint8)
    mask[10:30, 20:50] = 1
    image = (mask * 200 + 20).astype(np.uint8)
    for _ in range(20):
        out = compose(image=image, mask=mask)
        bright = out["image"] > 120
        agree = (bright == (out["mask"] > 0)).mean()
        assert agree > 0.98 and out["mask"].sum() > 0


def test_val_images_scored_by_threads_while_the_device_predicts_give_the_same_scores(data):
    """The GPU path scores val images in threads (Accelerator.scorers) while the next batches are predicted:
    the same val loss, Dice and IoU as scoring them inline."""
    from torch.utils.data import DataLoader

    from segbench.data.dataset import SegmentationDataset
    from segbench.data.processed import Processed
    from segbench.losses import create_loss
    from segbench.models import build_model
    from segbench.training.device import Accelerator
    from segbench.training.trainer import batch_loss
    from segbench.training.validation import Validation

    processed = Processed.load(*data)
    val = processed.indices("val")
    validate = Validation(processed, val, 2, original=True)
    loader = DataLoader(SegmentationDataset(processed, val, [0.5], [0.25]), batch_size=4)
    torch.manual_seed(0)
    model, loss = build_model({"family": "attention_unet", "base_channels": 4}, 1, 2).eval(), create_loss(
        [{"term": "dice"}])
    acc = Accelerator(torch.device("cpu"))
    inline = validate(model, loader, acc, loss, batch_loss)
    threaded = validate(model, loader, acc, loss, batch_loss, workers=3)
    assert threaded == inline and 0 <= inline["val_dice"] <= 1
    lesion = [str(processed.meta["sample_id"].iat[i]) for i in val if validate.lesion[i]]
    assert sorted(inline["val_images"]) == sorted(lesion)  # the images val Dice averages, by sample id
    assert sum(inline["val_images"].values()) / len(lesion) == pytest.approx(inline["val_dice"])
