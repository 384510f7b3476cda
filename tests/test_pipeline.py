"""End to end: the real `snakemake` and `dvc repro` on the tiny synthetic dataset."""

from __future__ import annotations

import copy
import json
import re
import sqlite3
from pathlib import Path

import pytest
import yaml

from conftest import TINY, new_project, run

PAIRS = [(a, l) for a in TINY["sweep"]["architectures"] for l in TINY["sweep"]["losses"]]


def planned_jobs(cwd: Path) -> list[str]:
    """Jobs a dry run would execute, as 'rule' or 'rule:arch,loss'."""
    out = run(cwd, "snakemake", "--cores", "1", "--dry-run")
    jobs = []
    for block in re.split(r"\n(?=(?:local)?rule \w+:)", out):
        head = re.match(r"(?:local)?rule (\w+):", block.strip())
        if head and head.group(1) != "all":
            wild = re.search(r"wildcards: arch=(\w+), loss=(\w+)", block)
            jobs.append(head.group(1) + (f":{wild.group(1)},{wild.group(2)}" if wild else ""))
    return sorted(jobs)


TIMED = {"latency_ms_cpu", "memory_mb_cpu", "latency_ms_gpu", "memory_mb_gpu"}  # measured, not computed


def metrics(root: Path) -> dict:
    """Every pair's test metrics, without the latency and memory figures (timings differ run to run)."""
    return {pair: {k: v for k, v in json.loads((root / f"results/runs/{pair[0]}__{pair[1]}/seed0/metrics.json")
                                              .read_text()).items() if k not in TIMED}
            for pair in PAIRS}


def test_snakefile_and_dvc_yaml_have_the_same_stages_and_outputs(tmp_path):
    from dvc.repo import Repo

    root = new_project(tmp_path)
    summary = run(root, "snakemake", "--cores", "1", "--summary").splitlines()
    header = summary.index(next(line for line in summary if line.startswith("output_file")))
    snakemake = {tuple(line.split("\t")[:3:2]) for line in summary[header + 1:] if "\t" in line}
    dvc = {(str(out.def_path), stage.name.split("@")[0]) for stage in Repo(root).index.stages for out in stage.outs}
    assert snakemake == dvc
    assert {stage for _, stage in dvc} == {"download", "preprocess", "split", "train", "evaluate", "report"}


@pytest.mark.e2e
def test_snakemake_runs_everything_and_tracks_it(snakemade):
    report = (snakemade / "results/report/comparison.md").read_text()
    assert all(f"| {a} " in report and f" {l} " in report for a, l in PAIRS)
    assert (snakemade / "results/report/comparison.xlsx").stat().st_size > 0
    assert (snakemade / "results/report/report.html").stat().st_size > 100_000  # figures embedded
    db = sqlite3.connect(snakemade / "mlflow.db")
    runs = dict(db.execute("select r.run_uuid, t.value from runs r join tags t on t.run_uuid = r.run_uuid "
                           "where t.key = 'segbench.role'").fetchall())
    assert sorted(runs.values()) == ["pair"] * len(PAIRS) + ["sweep"]
    parent = next(r for r, role in runs.items() if role == "sweep")
    children = [r for r, role in runs.items() if role == "pair"]
    parents = {v for (v,) in db.execute("select value from tags where key = 'mlflow.parentRunId'")}
    assert parents == {parent}
    checksums = {v for (v,) in db.execute("select value from tags where key = 'segbench.data_checksum'")}
    assert len(checksums) == 1 and checksums.pop().startswith("sha256:")
    for child in children:
        epochs = db.execute("select count(*) from metrics where run_uuid = ? and key = 'val_dice'", (child,))
        assert epochs.fetchone()[0] == TINY["train"]["epochs"]
        assert db.execute("select count(*) from metrics where run_uuid = ? and key = 'test_dice'",
                          (child,)).fetchone()[0] == 1


@pytest.mark.e2e
def test_reruns_are_incremental(snakemade):
    assert "Nothing to be done" in run(snakemade, "snakemake", "--cores", "2")
    params = yaml.safe_load((snakemade / "params.yaml").read_text())
    original = copy.deepcopy(params)
    params["losses"]["dice_focal"][1]["gamma"] = 3.0
    (snakemade / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    try:
        assert planned_jobs(snakemade) == sorted(
            [f"train:{a},dice_focal" for a in TINY["sweep"]["architectures"]]
            + [f"evaluate:{a},dice_focal" for a in TINY["sweep"]["architectures"]] + ["report"])
    finally:
        (snakemade / "params.yaml").write_text(yaml.safe_dump(original, sort_keys=False))
    assert planned_jobs(snakemade) == []


@pytest.mark.e2e
def test_dvc_repro_gives_the_same_results_and_snakemake_agrees(snakemade, tmp_path):
    root = new_project(tmp_path)
    run(root, "dvc", "repro")
    assert metrics(root) == metrics(snakemade)
    assert planned_jobs(root) == []
    assert "up to date" in run(root, "dvc", "status")


@pytest.mark.e2e
def test_seeds_and_folds_in_both_orchestrators(tmp_path):
    """A 2 x 1 sweep with 2 seeds and 2-fold cross-validation, through Snakemake and through `dvc repro`:
    the same runs, the same metrics; the test images predicted by each seed's fold ensemble."""
    import numpy as np
    import pandas as pd

    outcomes = {}
    for tool in ("snakemake", "dvc"):
        (tmp_path / tool).mkdir()
        root = new_project(tmp_path / tool)
        params = yaml.safe_load((root / "params.yaml").read_text())
        params["split"]["folds"] = 2
        params["sweep"].update(architectures=["attention_unet", "unet"], losses=["dice"], seeds=[0, 1], folds=[0, 1])
        params["architectures"]["unet"] = {"base_channels": 4}
        (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
        run(root, *(["snakemake", "--cores", "2"] if tool == "snakemake" else ["dvc", "repro"]))
        outcomes[tool] = root
    for arch in ("attention_unet", "unet"):
        for seed in (0, 1):
            seed_dir = f"results/runs/{arch}__dice/seed{seed}"
            folds = [json.loads((outcomes["dvc"] / seed_dir / f"folds/fold{f}/train.json").read_text())
                     for f in (0, 1)]
            assert [f["fold"] for f in folds] == [0, 1] and {f["seed"] for f in folds} == {seed}
            snake, dvc = (json.loads((outcomes[t] / seed_dir / "metrics.json").read_text()) for t in outcomes)
            assert {k: v for k, v in snake.items() if k not in TIMED} == {k: v for k, v in dvc.items()
                                                                          if k not in TIMED}
            assert snake["folds"] == [0, 1]
    split = pd.read_csv(outcomes["dvc"] / "data/splits/synthetic.csv")
    with np.load(outcomes["dvc"] / "results/runs/unet__dice/seed0/val_predictions.npz") as oof:
        assert set(oof.files) == set(split.loc[split["subset"] != "test", "sample_id"])  # every fold's val images
    statistics = json.loads((outcomes["snakemake"] / "results/report/statistics.json").read_text())
    assert statistics["seeds"] == [0, 1] and set(statistics["per_pair"]) == {"attention_unet__dice", "unet__dice"}
    assert "up to date" in run(outcomes["dvc"], "dvc", "status")

@pytest.mark.e2e
def test_the_readme_quick_tour(snakemade, tmp_path):
    """demo -> report -> MLflow compare -> predict, as the README's quick tour runs them."""
    from mlflow.tracking import MlflowClient

    run(snakemade, "dvc", "commit", "--force", "--quiet")  # what `make demo` does after Snakemake
    assert "up to date" in run(snakemade, "dvc", "status")
    assert list(json.loads(run(snakemade, "dvc", "metrics", "show", "--json"))[""]["data"]) == [
        "results/report/summary.json"]  # the headline only
    run(snakemade, "git", "add", "--all")  # a clone of the project has commits; `dvc exp show` needs one
    run(snakemade, "git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "--quiet", "-m", "demo")
    shown = run(snakemade, "dvc", "exp", "show", "--no-pager", "--csv").splitlines()[0].split(",")
    metrics = shown[shown.index("parent") + 1:shown.index("dataset.name")]  # then come the params
    assert metrics == list(json.loads((snakemade / "results/report/summary.json").read_text()))
    report = snakemade / "results/report/report.html"
    assert report.exists() and "Report:" in (snakemade / "logs/report.log").read_text()
    client = MlflowClient(f"sqlite:///{snakemade}/mlflow.db")
    experiment = client.get_experiment_by_name("segbench-synthetic")
    ranked = client.search_runs([experiment.experiment_id], "tags.`segbench.role` = 'pair'",
                                order_by=["metrics.test_dice DESC"])
    table = (snakemade / "results/report/comparison.md").read_text()
    best = json.loads((snakemade / "results/report/summary.json").read_text())["best_pair"]
    assert ranked[0].info.run_name == f"{best}/seed0" and f"Best pair: {best}" in table
    image = next((snakemade / "data/raw/synthetic/extracted/BTXRD/images").glob("*.jpeg"))
    out = run(snakemade, "segbench", "predict", str(image), "--out", str(tmp_path))
    assert f"{best}/seed0: 1 image(s)" in out and (tmp_path / f"{image.stem}_mask.png").exists()
