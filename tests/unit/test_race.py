"""sweep.budget's race: a rung drops exactly the entrants that Wilcoxon's signed-rank test, Holm-adjusted over every
pair of entrants, finds worse than the leader on the val images; recomputed here with scipy and statsmodels."""

import itertools

import numpy as np
import pytest
from scipy.stats import wilcoxon
from statsmodels.stats.multitest import multipletests

from segbench import SegbenchError, paths
from segbench.evaluation.selection import select
from segbench.io import read_json, write_json
from support import tiny_view

# mean val Dice offsets from the leader (smp_unet__dice): one clearly behind, one level, one a little behind
OFFSETS = {"smp_unet__dice": 0.0, "smp_unet__dice_focal": -0.25, "attention_unet__dice": 0.0,
           "attention_unet__dice_focal": -0.004}


@pytest.fixture
def race(tmp_path, monkeypatch):
    """Rung 0 of a 2 x 2 race, 2 seeds: train.json of each run with 30 val images' Dice at its best epoch."""
    monkeypatch.chdir(tmp_path)
    view = tiny_view(epochs=9)
    view["sweep"].update(architectures=["smp_unet", "attention_unet"], losses=["dice", "dice_focal"], seeds=[0, 1],
                         budget={"strategy": "race", "eta": 3, "min_epochs": 1, "alpha": 0.05})
    where = paths.Sweep("synthetic", "tiny")
    rng = np.random.default_rng(3)
    base = rng.uniform(0.4, 0.9, 30)
    for name, offset in OFFSETS.items():
        arch, loss = name.split("__")
        for seed in (0, 1):
            dice = np.clip(base + offset + rng.normal(0, 0.02, 30), 0, 1)
            run = where.rung(0, arch, loss, seed, 0)
            run.mkdir(parents=True)
            write_json(run / paths.TRAINED, {"arch": arch, "loss": loss, "seed": seed, "fold": 0, "epochs": 1,
                                             "best_epoch": 1, "best_val_dice": float(dice.mean()),
                                             "best_val_images": {f"img{i}": float(d) for i, d in enumerate(dice)}})
    return view, where


def expected(where) -> tuple[list[str], dict[str, float], str]:
    """Independently: per image the mean over seeds; every pair of entrants tested, Holm over the 6 tests."""
    scores = {}
    for name in OFFSETS:
        arch, loss = name.split("__")
        runs = [read_json(where.rung(0, arch, loss, s, 0) / paths.TRAINED)["best_val_images"] for s in (0, 1)]
        scores[name] = np.array([np.mean([r[f"img{i}"] for r in runs]) for i in range(30)])
    leader = max(scores, key=lambda n: scores[n].mean())
    family = list(itertools.combinations(OFFSETS, 2))
    p = [wilcoxon(scores[a] - scores[b], zero_method="zsplit").pvalue for a, b in family]
    holm = dict(zip(family, multipletests(p, method="holm")[1]))
    against = {n: next(v for (a, b), v in holm.items() if {a, b} == {n, leader}) for n in OFFSETS if n != leader}
    out = [n for n, v in against.items() if v < 0.05 and scores[n].mean() < scores[leader].mean()]
    return out, against, leader


def test_a_race_drops_only_what_the_test_finds_worse_than_the_leader(race):
    view, where = race
    decision = select(view, where, 0)
    out, against, leader = expected(where)
    assert decision["pruned"] == out == ["smp_unet__dice_focal"]  # -0.004 with 30 images is not yet "worse"
    assert set(decision["promoted"]) == set(OFFSETS) - set(out)  # not the top 1/eta: 3 of 4 go on
    assert decision["p_holm"] == pytest.approx(against, abs=1e-6)
    assert decision["leaders"] == [leader] and "Holm-adjusted p < 0.05" in decision["test"]


def test_a_run_without_per_image_val_dice_names_the_fix(race):
    view, where = race
    path = where.rung(0, "attention_unet", "dice", 1, 0) / paths.TRAINED
    record = read_json(path)
    del record["best_val_images"]
    write_json(path, record)
    with pytest.raises(SegbenchError, match="attention_unet__dice: its train.json has no per-image val Dice"):
        select(view, where, 0)



def test_an_entrant_that_validated_no_epoch_is_out_untested(race):
    view, where = race
    path = where.rung(0, "attention_unet", "dice", 0, 0) / paths.TRAINED
    write_json(path, {**read_json(path), "best_epoch": 0, "best_val_dice": -1.0, "best_val_images": None,
                      "diverged": {"epoch": 1, "loss": "nan"}})
    decision = select(view, where, 0)
    assert "attention_unet__dice" in decision["pruned"] and decision["p_holm"]["attention_unet__dice"] is None
