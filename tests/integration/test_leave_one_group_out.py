"""Leave-one-group-out (split.folds: {by: center}): every centre is the test set once, by the one fold model that
never saw it; the in-group test images are scored by the folds that trained on their centre."""

import copy

import pandas as pd
import pytest
import yaml

from segbench import SegbenchError, paths
from segbench.apps.cli import main
from segbench.data.processed import Processed
from segbench.evaluation.evaluate import evaluate_replicate
from support import TINY, tiny_view

pytestmark = pytest.mark.data  # the data stages: make test runs them on pandas 2 as well

SWEEP = paths.Sweep("synthetic", "tiny")


@pytest.fixture(scope="module")
def by_center(tmp_path_factory):
    from support import make_project

    params = copy.deepcopy(TINY)
    params["synthetic"].update(n_images=90, normal_fraction=0.0)
    params["split"].update(folds={"by": "center"}, test_fraction=0.15)
    params["sweep"].update(folds=[0, 1, 2], architectures=["smp_unet"], losses=["dice"])
    root = make_project(tmp_path_factory.mktemp("logo"), params)
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(root)
        mp.delenv("MLFLOW_TRACKING_URI", raising=False)
        for stage in ("download", "preprocess", "split"):
            assert main([stage]) == 0
        for fold in (0, 1, 2):
            assert main(["train", "--arch", "smp_unet", "--loss", "dice", "--fold", str(fold)]) == 0
        assert main(["evaluate", "--arch", "smp_unet", "--loss", "dice"]) == 0
    return root


def test_each_fold_holds_out_one_center_and_trains_on_the_others(by_center):
    data = Processed.load(by_center / paths.processed_dir("synthetic"), by_center / paths.split_csv("synthetic"))
    assert data.leave_one_group_out and sorted(set(data.meta["fold"])) == [0, 1, 2]
    center = data.meta["center"].to_numpy()
    for fold in (0, 1, 2):
        train, val = data.fold_indices(fold)
        assert set(center[data.held_out(fold)]) == {fold + 1}
        assert fold + 1 not in set(center[train]) | set(center[val]) and len(train) and len(val)
        assert not set(train) & set(data.in_group()) and fold + 1 not in set(center[data.in_group(fold)])
    leakage = (by_center / paths.split_leakage_json("synthetic")).read_text()
    assert "leave-one-group-out by center: fold 0 holds out 1, fold 1 holds out 2, fold 2 holds out 3" in leakage


def test_every_image_is_tested_once_by_the_model_that_never_saw_its_center(by_center):
    seed = by_center / SWEEP.seed("smp_unet", "dice", 0)
    table = pd.read_csv(seed / paths.PER_IMAGE).astype({"sample_id": str})
    meta = pd.read_csv(by_center / paths.processed_dir("synthetic") / paths.META).astype({"sample_id": str})
    assert sorted(table["sample_id"]) == sorted(meta["sample_id"])
    assert (table["fold"] + 1 == table["center"]).all()
    in_group = pd.read_csv(seed / paths.GENERALISATION / f"{paths.IN_GROUP}.csv").astype({"sample_id": str})
    split = pd.read_csv(by_center / paths.split_csv("synthetic")).astype({"sample_id": str})
    assert set(in_group["sample_id"]) == set(split.loc[split["subset"] == paths.IN_GROUP, "sample_id"])


def test_a_fold_left_out_of_the_sweep_is_named(by_center, monkeypatch):
    monkeypatch.chdir(by_center)
    params = tiny_view()
    params["split"]["folds"] = {"by": "center"}
    params["sweep"]["folds"] = [0, 1]
    with pytest.raises(SegbenchError, match=r"leave-one-group-out .* has folds \[0, 1, 2\]: list every one"):
        evaluate_replicate("smp_unet", "dice", 0, params, SWEEP, paths.processed_dir("synthetic"),
                           paths.split_csv("synthetic"))
    assert yaml.safe_load((by_center / "params.yaml").read_text())["split"]["folds"] == {"by": "center"}
