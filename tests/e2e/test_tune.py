"""sweep.tune through the real orchestrators: two learning rates for every pair, chosen on val Dice before any test
prediction, by `snakemake` and then `dvc repro` from the same dvc.yaml; and what the report says of the choice."""

import copy
import json
import re

import pytest

from segbench import paths
from support import TINY, new_project, run

WHERE = paths.Sweep("synthetic", "tiny")
PAIRS = [("smp_unet", "dice"), ("smp_unet", "dice_focal")]
RATES = [1.0e-3, 1.0e-2]


@pytest.fixture(scope="module")
def tuned(tmp_path_factory):
    params = copy.deepcopy(TINY)
    params["train"]["epochs"] = 2
    params["sweep"].update(architectures=["smp_unet"], tune={"train.lr": RATES})
    params["tracking"] = {"mlflow": False}
    root = new_project(tmp_path_factory.mktemp("tune"), params)
    run(root, "segbench", "dag", "--write")  # the candidates of this sweep.tune, written out in dvc.yaml
    run(root, "snakemake", "--cores", "2")
    return root


def read(root, path) -> dict:
    return json.loads((root / path).read_text())


def test_each_pair_keeps_the_rate_with_the_higher_val_dice_before_any_test_prediction(tuned):
    statistics = read(tuned, WHERE.report / paths.STATISTICS)
    for arch, loss in PAIRS:
        decision = read(tuned, WHERE.tuning(arch, loss))
        val = [read(tuned, WHERE.tune(arch, loss, c, 0, 0) / paths.TRAINED)["best_val_dice"] for c in range(2)]
        assert decision["chosen"] == max(range(2), key=lambda c: val[c])
        assert decision["settings"] == {"train.lr": RATES[decision["chosen"]]}
        assert [c["val_dice"] for c in decision["candidates"]] == pytest.approx(val, abs=1e-6)
        trained = read(tuned, WHERE.fold(arch, loss, 0, 0) / paths.TRAINED)
        assert trained["tuned"]["candidate"] == decision["chosen"]
        assert trained["best_val_dice"] == val[decision["chosen"]]
        # the test images are predicted once the choice is made, from the chosen candidate's model
        predictions = tuned / WHERE.seed(arch, loss, 0) / paths.TEST_PREDICTIONS
        assert predictions.stat().st_mtime > (tuned / WHERE.tuning(arch, loss)).stat().st_mtime
        assert not list((tuned / WHERE.pair(arch, loss) / "tuning").rglob(paths.TEST_PREDICTIONS))
        assert statistics["tuning"][paths.run_name(arch, loss)]["chosen"] == decision["chosen"]
    text = (tuned / WHERE.report / paths.MARKDOWN).read_text()
    assert "### Equal tuning (sweep.tune)" in text and re.search(r"\| chosen +\| +lr 0.001 \| +lr 0.01 \|", text)
    assert re.search(r"\| tuned +\|", text)  # the comparison table's column
    assert "every pair tried the same 2 candidates (lr 0.001; lr 0.01)" in text
    assert (tuned / WHERE.report / "figures" / "tuning.png").exists()  # val Dice per candidate, drawn


def test_nothing_left_to_do_and_dvc_status_is_up_to_date(tuned):
    assert "Nothing to be done" in run(tuned, "snakemake", "-n", "--cores", "1")
    assert "up to date" in run(tuned, "dvc", "status")


@pytest.fixture(scope="module")
def tuned_within_a_budget(tmp_path_factory):
    """Three learning rates per pair raced by successive halving: a rung at 1 epoch keeps each pair's best one,
    which trains on to train.epochs 3."""
    params = copy.deepcopy(TINY)
    params["train"]["epochs"] = 3
    params["sweep"].update(architectures=["smp_unet"], tune={"train.lr": [*RATES, 1.0e-1]},
                           budget={"strategy": "successive_halving", "eta": 3, "min_epochs": 1})
    params["tracking"] = {"mlflow": False}
    root = new_project(tmp_path_factory.mktemp("tune_budget"), params)
    run(root, "segbench", "dag", "--write")
    run(root, "snakemake", "--cores", "2")
    return root


def test_halving_races_each_pairs_candidates_and_the_pair_keeps_the_one_it_trained_in_full(tuned_within_a_budget):
    root = tuned_within_a_budget
    selection = read(root, WHERE.selection(0))
    for arch, loss in PAIRS:
        pair = paths.run_name(arch, loss)
        rung = [read(root, WHERE.rung(0, arch, loss, 0, 0, c) / paths.TRAINED)["best_val_dice"] for c in range(3)]
        best = max(range(3), key=lambda c: rung[c])
        assert selection["promoted"].count(f"{pair}/candidate{best}") == 1  # each pair's own race: one of three
        assert [n for n in selection["promoted"] if n.startswith(pair + "/")] == [f"{pair}/candidate{best}"]
        decision = read(root, WHERE.tuning(arch, loss))
        assert decision["chosen"] == best
        for candidate in decision["candidates"]:
            run_ = read(root, WHERE.tune(arch, loss, candidate["candidate"], 0, 0) / paths.TRAINED)
            assert run_["epochs"] == (3 if candidate["candidate"] == best else 1)
            assert bool(candidate["pruned"]) == bool(run_["pruned"]) == (candidate["candidate"] != best)
        assert read(root, WHERE.fold(arch, loss, 0, 0) / paths.TRAINED)["epochs"] == 3
    text = (root / WHERE.report / paths.MARKDOWN).read_text()
    assert "trained the pairs' candidates 10 of the 18 epochs training each in full takes (56%)" in text
    assert re.search(r"\| pruned \(sweep.budget\) +\|", text) and "pruned at rung 0 (1 epoch, val Dice" in text
    assert "Pruned early" not in text  # the pairs themselves are all compared
    assert (root / WHERE.report / "figures" / "tuning.png").stat().st_size > 10_000
    assert "Nothing to be done" in run(root, "snakemake", "-n", "--cores", "1")
    assert "up to date" in run(root, "dvc", "status")
