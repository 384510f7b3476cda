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


def test_nothing_left_to_do_and_dvc_status_is_up_to_date(tuned):
    assert "Nothing to be done" in run(tuned, "snakemake", "-n", "--cores", "1")
    assert "up to date" in run(tuned, "dvc", "status")
