"""Successive halving (sweep.budget) through its stage functions: the survivor ends with the unpruned model, the
others are pruned with a record, and each rung's decision is the val Dice ranking."""

import pandas as pd
import pytest
import torch

from segbench import SegbenchError, paths
from segbench.budget import rungs
from segbench.evaluation.selection import select
from segbench.io import read_json
from segbench.training import halving, trainer
from support import DATASET, SWEEP, tiny_view


def weights(path):
    return torch.load(path, weights_only=True)["model"]


@pytest.fixture
def project(prepared, tmp_path, monkeypatch):
    """A working directory that sees the prepared tiny dataset at data/."""
    (tmp_path / "data").symlink_to(prepared / "data")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def budget_view(epochs=9, eta=3, min_epochs=1) -> dict:
    view = tiny_view(epochs=epochs, scheduler="cosine")
    view["sweep"].update(architectures=["smp_unet", "attention_unet"], losses=["dice", "dice_focal"],
                         budget={"strategy": "successive_halving", "eta": eta, "min_epochs": min_epochs})
    return view


def test_the_rungs_grow_by_eta_below_the_full_schedule():
    assert rungs(budget_view(9, 3, 1)) == [1, 3]
    assert rungs(budget_view(12, 3, 1)) == [1, 3, 9]
    assert rungs(budget_view(12, 2, 2)) == [2, 4, 8]
    view = budget_view()
    view["sweep"]["budget"] = None
    assert rungs(view) == []


def test_a_survivor_ends_with_the_unpruned_model_and_the_pruned_keep_their_rung(project):
    """2 x 2 pairs, train.epochs 9, eta 3: rung 0 (1 epoch) keeps 2 pairs, rung 1 (3 epochs) keeps 1, which trains
    on to 9 epochs, epoch for epoch as an unpruned run does."""
    view = budget_view()
    pairs = [(a, l) for a in view["sweep"]["architectures"] for l in view["sweep"]["losses"]]
    for rung in range(2):
        for arch, loss in pairs:
            halving.train_rung(view, SWEEP, rung, arch, loss, 0, 0)
        decision = select(view, SWEEP, rung)
        assert read_json(SWEEP.selection(rung)) == decision
    first, second = (read_json(SWEEP.selection(r)) for r in range(2))
    assert len(first["promoted"]) == 2 and len(second["promoted"]) == 1
    scores = first["val_dice"]
    assert min(scores[p] for p in first["promoted"]) >= max(scores[p] for p in first["pruned"])
    for arch, loss in pairs:
        halving.train_run(view, SWEEP, arch, loss, 0, 0)

    winner = second["promoted"][0]
    for arch, loss in pairs:
        record = read_json(SWEEP.fold(arch, loss, 0, 0) / paths.TRAINED)
        name = paths.run_name(arch, loss)
        history = pd.read_csv(SWEEP.fold(arch, loss, 0, 0) / paths.HISTORY)
        if name == winner:
            assert record["pruned"] is None and record["epochs"] == 9 and len(history) == 9
        else:
            rung = 0 if name in first["pruned"] else 1
            assert record["pruned"] == {"rung": rung, "epochs": [1, 3][rung],
                                        "val_dice": [first, second][rung]["val_dice"][name]}
            assert record["epochs"] == len(history) == [1, 3][rung]
        assert not (SWEEP.fold(arch, loss, 0, 0) / paths.RESUME).exists()
        # each val image's Dice at the best epoch (a race tests them), kept across the rungs' resumes
        assert sum(record["best_val_images"].values()) / len(record["best_val_images"]) == pytest.approx(
            record["best_val_dice"])
    epochs = sum(read_json(SWEEP.fold(a, l, 0, 0) / paths.TRAINED)["epochs"] for a, l in pairs)
    assert epochs <= len(pairs) * 9 / 2  # 4 x 1 + 2 x 2 + 1 x 6 = 14 of 36

    arch, loss = winner.split("__")
    full = project / "full"
    trainer.train_pair(arch, loss, budget_view(), paths.processed_dir(DATASET), paths.split_csv(DATASET), full)
    ours = SWEEP.fold(arch, loss, 0, 0)
    pd.testing.assert_frame_equal(pd.read_csv(ours / paths.HISTORY), pd.read_csv(full / paths.HISTORY))
    for name in (paths.CHECKPOINT, paths.LAST):
        a, b = weights(ours / name), weights(full / name)
        assert all(torch.equal(a[k], b[k]) for k in a)


def test_a_rung_without_its_runs_names_the_missing_file(project):
    view = budget_view()
    with pytest.raises(SegbenchError, match=r"rung0/smp_unet__dice/seed0/fold0/train.json: missing"):
        select(view, SWEEP, 0)


def test_mlflow_records_each_rung_as_a_run_nested_under_its_training_with_the_decision(project):
    from segbench.tracking import ROLE, Tracker

    view = budget_view()
    view["sweep"].update(architectures=["smp_unet"])  # 2 pairs: rung 0 keeps 1
    tracker = Tracker(DATASET, "tiny", uri=f"sqlite:///{project}/mlflow.db")
    for loss in ("dice", "dice_focal"):
        halving.train_rung(view, SWEEP, 0, "smp_unet", loss, 0, 0, tracker=tracker)
    decision = select(view, SWEEP, 0, tracker)
    rungs_ = tracker.client.search_runs([tracker.experiment_id()], f"tags.`{ROLE}` = 'rung'")
    assert len(rungs_) == 2
    for run in rungs_:
        training = tracker.client.get_run(run.data.tags["mlflow.parentRunId"])
        pair = paths.run_name(training.data.tags["segbench.arch"], training.data.tags["segbench.loss"])
        assert run.data.tags["segbench.decision"] == ("promoted" if pair in decision["promoted"] else "pruned")
        assert run.data.metrics["val_dice"] == pytest.approx(decision["val_dice"][pair], abs=1e-6)
        assert training.data.tags.get("segbench.pruned_at_rung") == (None if pair in decision["promoted"] else "0")
