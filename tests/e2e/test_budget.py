"""sweep.budget through the real orchestrators: a 3 x 2 sweep with successive halving run by `snakemake`, then
by `dvc repro` from the same dvc.yaml, and what the report says of the pruned pairs; the same pairs in a race."""

import copy
import json
import shutil

import pytest

from segbench import paths
from support import TINY, new_project, run

WHERE = paths.Sweep("synthetic", "tiny")
BUDGET = {"strategy": "successive_halving", "eta": 3, "min_epochs": 1}


@pytest.fixture(scope="module")
def budgeted(tmp_path_factory):
    """3 architectures x 2 losses, train.epochs 9, eta 3: rungs at 1 and 3 epochs keep 2 pairs, then 1."""
    params = copy.deepcopy(TINY)
    params["synthetic"]["n_images"] = 150  # enough to learn in 9 epochs: the survivor is ranked
    params["train"]["epochs"] = 9
    params["sweep"].update(architectures=["smp_unet", "attention_unet", "unet"], budget=BUDGET)
    params["architectures"]["unet"] = {"base_channels": 4}
    params["tracking"] = {"mlflow": False}
    root = new_project(tmp_path_factory.mktemp("budget"), params)
    run(root, "segbench", "dag", "--write")  # the rungs of this sweep.budget, spelled out in dvc.yaml
    run(root, "snakemake", "--cores", "2")
    return root


def trained(root, architectures=("smp_unet", "attention_unet", "unet")) -> dict:
    return {paths.run_name(a, l): json.loads((root / WHERE.fold(a, l, 0, 0) / paths.TRAINED).read_text())
            for a in architectures for l in ("dice", "dice_focal")}


def test_halving_trains_at_most_half_the_epochs_and_the_report_marks_the_pruned(budgeted):
    runs = trained(budgeted)
    assert sum(r["epochs"] for r in runs.values()) <= 6 * 9 / 2  # 6 x 1 + 2 x 2 + 1 x 6 = 16 of 54
    survivors = [p for p, r in runs.items() if not r["pruned"]]
    assert len(survivors) == 1 and runs[survivors[0]]["epochs"] == 9
    statistics = json.loads((budgeted / WHERE.report / paths.STATISTICS).read_text())
    assert set(statistics["pruned"]) == set(runs) - set(survivors) and statistics["ranked"] == survivors
    assert statistics["ranking"][0] == survivors[0] and len(statistics["ranking"]) == 6
    text = (budgeted / WHERE.report / paths.MARKDOWN).read_text()
    for record in runs.values():
        if record["pruned"]:
            rung = record["pruned"]["rung"]
            assert f"pruned at rung {rung} ({[1, 3][rung]} epoch" in text
    assert "Pruned early (sweep.budget), so not ranked" in text
    assert "Successive halving (eta 3; rungs at [1, 3] epochs, then 9)" in text
    decisions = [json.loads((budgeted / WHERE.selection(r)).read_text()) for r in range(2)]
    assert [len(d["promoted"]) for d in decisions] == [2, 1] and decisions[1]["promoted"] == survivors
    assert not (budgeted / WHERE.report / "figures" / "tuning.png").exists()  # sweep.tune's figure only


def test_nothing_left_to_do_and_dvc_repro_makes_the_same_decisions(budgeted, tmp_path):
    assert "Nothing to be done" in run(budgeted, "snakemake", "-n", "--cores", "1")
    assert "up to date" in run(budgeted, "dvc", "status")
    fresh = tmp_path / "fresh"
    shutil.copytree(budgeted, fresh, symlinks=True, ignore=shutil.ignore_patterns("results", ".snakemake", "logs"))
    run(fresh, "dvc", "repro")
    for rung in range(2):
        assert (fresh / WHERE.selection(rung)).read_text() == (budgeted / WHERE.selection(rung)).read_text()
    ours, theirs = trained(budgeted), trained(fresh)
    assert {p: r["pruned"] for p, r in ours.items()} == {p: r["pruned"] for p, r in theirs.items()}
    assert "up to date" in run(fresh, "dvc", "status")


def test_changing_eta_reruns_the_later_rungs_only(budgeted):
    """eta 3 -> 4: rung 0 still trains 1 epoch (it does not read eta); rung 1 trains 4 epochs instead of 3."""
    overlay = budgeted / "eta4.yaml"
    overlay.write_text(json.dumps({"sweep": {"budget": {**BUDGET, "eta": 4}}}))
    planned = run(budgeted, "snakemake", "-n", "--cores", "1", "--configfile", str(overlay))
    assert "rung=1, arch=" in planned and "rung=0, arch=" not in planned  # rung jobs (select0 reruns: it reads eta)


def test_dvc_refuses_a_dvc_yaml_of_another_budget(budgeted, tmp_path):
    """params.yaml's sweep.budget changed without `segbench dag --write`: dvc repro's first job stops, saying so."""
    project = tmp_path / "stale"
    shutil.copytree(budgeted, project, symlinks=True, ignore=shutil.ignore_patterns(".snakemake", "logs"))
    params = (project / "params.yaml").read_text().replace("eta: 3", "eta: 2")
    assert params != (project / "params.yaml").read_text()
    (project / "params.yaml").write_text(params)
    done = run_failing(project, "dvc", "repro")
    assert "dvc.yaml: not what the pipeline definition generates" in done and "segbench dag --write" in done


@pytest.fixture(scope="module")
def raced(tmp_path_factory):
    """A race over 6 pairs, train.epochs 3 (one rung, at 1 epoch), 150 images: enough val images for the test to
    tell pairs apart. smp_unet_twin is smp_unet under another name: it trains the same model, level with it."""
    params = copy.deepcopy(TINY)
    params["synthetic"]["n_images"] = 150
    params["train"]["epochs"] = 3
    params["sweep"].update(architectures=["smp_unet", "smp_unet_twin", "attention_unet"],
                           budget={"strategy": "race", "eta": 3, "min_epochs": 1})
    params["architectures"]["smp_unet_twin"] = {"family": "smp_unet", **params["architectures"]["smp_unet"]}
    params["tracking"] = {"mlflow": False}
    root = new_project(tmp_path_factory.mktemp("race"), params)
    run(root, "snakemake", "--cores", "2")
    return root


def test_a_race_drops_the_pairs_tested_worse_than_the_leader_and_trains_the_rest_in_full(raced):
    decision = json.loads((raced / WHERE.selection(0)).read_text())
    runs = trained(raced, ("smp_unet", "smp_unet_twin", "attention_unet"))
    assert decision["strategy"] == "race" and set(decision["p_holm"]) == set(runs) - set(decision["leaders"])
    leader = decision["leaders"][0]
    twin = leader.replace("smp_unet", "smp_unet_twin") if "twin" not in leader else leader.replace("_twin", "")
    assert twin in decision["promoted"] and decision["p_holm"][twin] == 1.0  # level with the leader: it goes on
    assert decision["pruned"]
    for pair, record in runs.items():
        if pair in decision["pruned"]:
            assert decision["p_holm"][pair] < 0.05 and record["epochs"] == 1
            assert record["pruned"] == {"rung": 0, "epochs": 1, "val_dice": decision["val_dice"][pair],
                                        "p_holm": decision["p_holm"][pair]}
        else:
            assert record["pruned"] is None and record["epochs"] == 3
    text = (raced / WHERE.report / paths.MARKDOWN).read_text()
    assert "A race (dropped when worse than the leader at Holm p < 0.05; rungs at [1] epochs, then 3)" in text
    assert "pruned at rung 0 (1 epoch, val Dice" in text and "worse than the leader: Holm p" in text
    assert "Nothing to be done" in run(raced, "snakemake", "-n", "--cores", "1")


def run_failing(cwd, *command) -> str:
    import subprocess

    from support import tool_env

    done = subprocess.run(command, cwd=cwd, env=tool_env(cwd), capture_output=True, text=True)
    assert done.returncode, "expected to fail"
    return done.stdout + done.stderr
