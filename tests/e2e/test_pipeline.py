"""End to end: the real `snakemake` and `dvc repro` on the tiny synthetic dataset; every job runs the config
the DAG was built from; code and params changes rerun exactly what they touch; results never mix."""

from __future__ import annotations

import contextlib
import copy
import json
import re
import shutil
import sqlite3
from pathlib import Path

import pandas as pd
import yaml

from segbench import paths, pipeline
from support import PAIRS, SWEEP, TINY, planned_jobs, run
from support.own_data import LABELS, make_folder


@contextlib.contextmanager
def edited(path: Path, change):
    """``path`` with ``change(text)`` applied, put back afterwards."""
    original = path.read_text()
    path.write_text(change(original))
    try:
        yield
    finally:
        path.write_text(original)


def params_with(change):
    """A change of params.yaml's text: ``change(params)`` on the parsed params."""
    def apply(text: str) -> str:
        params = yaml.safe_load(text)
        change(params)
        return yaml.safe_dump(params, sort_keys=False)
    return apply


def unet_copy(params: dict) -> None:
    params["architectures"]["unet_copy"] = {"base_channels": 4}
    params["sweep"]["architectures"].append("unet_copy")


def focal_gamma_3(params: dict) -> None:
    params["losses"]["dice_focal"][1]["gamma"] = 3.0


def test_snakemake_runs_everything_and_tracks_it(snakemade):
    report = (snakemade / SWEEP.report / "comparison.md").read_text()
    assert all(f"| {a} " in report and f" {l} " in report for a, l in PAIRS)
    assert (snakemade / SWEEP.report / "report.html").stat().st_size > 100_000  # figures embedded
    db = sqlite3.connect(snakemade / "mlflow.db")
    runs = dict(db.execute("select r.run_uuid, t.value from runs r join tags t on t.run_uuid = r.run_uuid "
                           "where t.key = 'segbench.role'").fetchall())
    assert sorted(runs.values()) == ["pair"] * len(PAIRS) + ["sweep"]
    parent = next(r for r, role in runs.items() if role == "sweep")
    assert {v for (v,) in db.execute("select value from tags where key = 'mlflow.parentRunId'")} == {parent}
    checksums = {v for (v,) in db.execute("select value from tags where key = 'segbench.data_checksum'")}
    assert len(checksums) == 1 and checksums.pop().startswith("sha256:")
    for child in (r for r, role in runs.items() if role == "pair"):
        epochs = db.execute("select count(*) from metrics where run_uuid = ? and key = 'val_dice'", (child,))
        assert epochs.fetchone()[0] == TINY["train"]["epochs"]


def test_after_the_readmes_step_5_with_either_tool_both_have_nothing_to_do(snakemade):
    """A params change run by `snakemake --cores all`, then another by `dvc repro`: after each, `dvc status` and
    `snakemake -n` report nothing to do, with no `dvc commit` or `--touch` by hand."""
    original = (snakemade / "params.yaml").read_text()
    try:
        for gamma, tool in ((3.0, ["snakemake", "--cores", "2"]), (2.5, ["dvc", "repro"])):
            params = yaml.safe_load((snakemade / "params.yaml").read_text())
            params["losses"]["dice_focal"][1]["gamma"] = gamma
            (snakemade / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
            run(snakemade, *tool)
            assert "Data and pipelines are up to date" in run(snakemade, "dvc", "status"), tool
            assert planned_jobs(snakemade) == [], tool
    finally:  # the shared project as it was
        (snakemade / "params.yaml").write_text(original)
        run(snakemade, "snakemake", "--cores", "2")


def test_params_changes_rerun_exactly_the_jobs_they_touch(snakemade):
    assert "Nothing to be done" in run(snakemade, "snakemake", "--cores", "2")
    with edited(snakemade / "params.yaml", params_with(focal_gamma_3)):
        assert planned_jobs(snakemade) == sorted(
            [f"train:{a},dice_focal" for a in TINY["sweep"]["architectures"]]
            + [f"evaluate:{a},dice_focal" for a in TINY["sweep"]["architectures"]] + ["report", "summary"])
    assert planned_jobs(snakemade) == []


def test_code_changes_rerun_exactly_the_jobs_that_run_that_code(snakemade):
    src = snakemade / "src/segbench"
    for side in ("tracking.py", "baselines/nnunet.py", "apps/serve/__init__.py", "apps/cli.py"):  # no job's code
        with edited(src / side, lambda text: text + "\n# a comment\n"):
            assert planned_jobs(snakemade) == [], side
            assert "Data and pipelines are up to date" in run(snakemade, "dvc", "status"), side
    with edited(src / "report/figures.py", lambda text: text + "\n# a comment\n"):
        assert planned_jobs(snakemade) == ["report", "summary"]  # the report layer alone
        changed = set(re.findall(r"^(\w+)(?:@[\w-]+)?:$", run(snakemade, "dvc", "status"), re.MULTILINE))
        assert changed == {"report", "summary"}, changed
    models = snakemade / "src/segbench/models"
    with edited(models / "unet3plus.py", lambda text: text + "\n# a model outside the sweep\n"):
        assert planned_jobs(snakemade) == []
    with edited(models / "__init__.py", lambda text: text + "\n# shared by every model\n"):
        jobs = planned_jobs(snakemade)
        assert not [j for j in jobs if j.split(":")[0] in ("download", "preprocess", "split")]
        assert sorted({j.split(":")[0] for j in jobs}) == ["evaluate", "latency", "report", "summary", "train"]
    # a new architecture: one module, one line of the table, one sweep entry: only its pairs train
    (models / "unet_copy.py").write_text((models / "unet.py").read_text())
    try:
        with edited(models / "catalog.py", lambda text: text + '\nMODELS.add("unet_copy", f"{_ROOT}.unet_copy:UNet", '
                                                                  '"a copy", "a copy of unet", options=MODELS.entry('
                                                                  '"unet").options, checks=_WIDTH)\n'), \
                edited(snakemade / "params.yaml", params_with(unet_copy)):
            assert planned_jobs(snakemade) == ["evaluate:unet_copy,dice", "evaluate:unet_copy,dice_focal",
                                               "latency", "report", "summary", "train:unet_copy,dice",
                                               "train:unet_copy,dice_focal"]
    finally:
        (models / "unet_copy.py").unlink()
    assert planned_jobs(snakemade) == []


def test_configfile_and_config_reach_every_job(snakemade, tmp_path):
    """`--configfile F` and `--config k=v` change what the jobs do, not only the DAG."""
    target = f"{paths.processed_dir('synthetic')}/meta.csv"
    root = tmp_path / "project"
    shutil.copytree(snakemade, root, ignore=shutil.ignore_patterns("results", "mlflow.db*", ".dvc", ".git"))
    alternative = yaml.safe_load((root / "params.yaml").read_text())
    alternative["synthetic"]["n_images"] = 20
    (root / "alt.yaml").write_text(yaml.safe_dump(alternative))
    run(root, "snakemake", target, "--cores", "2", "--configfile", "alt.yaml")
    assert len(pd.read_csv(root / target)) == 18  # 20 images, 10 % normal, normals left out
    run(root, "snakemake", target, "--cores", "2", "--config", "synthetic={n_images: 30, normal_fraction: 0.5}")
    assert len(pd.read_csv(root / target)) == 15
    run(root, "snakemake", "--cores", "2", target)  # params.yaml again: 48 images
    assert len(pd.read_csv(root / target)) == 43


def test_after_the_demo_nothing_is_left_to_do_and_a_forced_report_changes_nothing(snakemade):
    """Snakemake recorded what it made in dvc.lock as it finished: both tools agree; a forced report rewrites the
    same bytes."""
    assert planned_jobs(snakemade) == []
    assert "up to date" in run(snakemade, "dvc", "status")
    run(snakemade, "git", "add", "--all")
    run(snakemade, "git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "--quiet", "-m", "demo")
    run(snakemade, "snakemake", "--cores", "1", "--forcerun", "report")
    assert "up to date" in run(snakemade, "dvc", "status")
    assert run(snakemade, "git", "status", "--porcelain") == ""


def test_the_report_reads_only_its_declared_inputs(snakemade, tmp_path):
    """A folder holding just the report job's declared inputs (what remote storage would stage) is enough, and
    gives the same report."""
    from segbench.config import dataset_params, load_params

    params = load_params(snakemade / "params.yaml")
    report = pipeline.stage("report")
    for name in pipeline.job_inputs(report, params, {"dataset": "synthetic"}):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (shutil.copytree if (snakemade / name).is_dir() else shutil.copy)(snakemade / name, tmp_path / name)
    shutil.copy(snakemade / "params.yaml", tmp_path / "params.yaml")
    params["tracking"]["mlflow"] = False
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    run(tmp_path, "segbench", "report")
    assert dataset_params(params, "synthetic")["dataset"]["key"] == "synthetic"
    for name in ("statistics.json", "summary.json", "comparison.md", "report.html", "comparison.xlsx"):
        assert (tmp_path / SWEEP.report / name).read_bytes() == (snakemade / SWEEP.report / name).read_bytes(), name


def test_your_own_data_beside_the_demo_touches_none_of_its_files_runs_or_models(snakemade, tmp_path):
    """The README's own-data recipe (a folder of RGB images, three classes) with the demo's sweep name: its
    report per class, a new folder of results, a new MLflow parent run and registered model; the demo's report,
    runs, parent run and champion stay as they were."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient(f"sqlite:///{snakemade}/mlflow.db")
    demo_model = "segbench-synthetic-tiny"
    before = {"champion": client.get_model_version_by_alias(demo_model, "champion").version,
              "versions": len(client.search_model_versions(f"name = '{demo_model}'")),
              "parent": client.search_runs([client.get_experiment_by_name("segbench-synthetic").experiment_id],
                                           "tags.`segbench.role` = 'sweep'")[0].data.metrics,
              "files": {p: p.read_bytes() for p in (snakemade / "results").rglob("*") if p.is_file()}}
    params = yaml.safe_load((snakemade / "params.yaml").read_text())
    mine = copy.deepcopy(params)
    mine["datasets"]["mine"] = {"name": "folder", "source": str(make_folder(tmp_path / "mine")), "labels": LABELS}
    mine["sweep"].update(datasets=["mine"], architectures=["attention_unet"], losses=["dice"])
    (tmp_path / "mine.yaml").write_text(yaml.safe_dump(mine))
    run(snakemade, "snakemake", "--cores", "2", "--configfile", str(tmp_path / "mine.yaml"))
    where = paths.Sweep("mine", "tiny")
    assert (snakemade / where.report / "report.html").exists()
    metrics = json.loads((snakemade / where.seed("attention_unet", "dice", 0) / "metrics.json").read_text())
    assert set(metrics["per_class"]) == {"tumour", "oedema"} and "classes_present" in metrics["strata"]
    assert json.loads((snakemade / "data/processed/mine/info.json").read_text())["channels"] == 3
    table = (snakemade / where.report / "comparison.md").read_text()
    assert "Dice tumour" in table and "Dice oedema" in table
    after = {p: p.read_bytes() for p in (snakemade / "results").rglob("*") if p.is_file() and p in before["files"]}
    assert after == before["files"]  # every demo file byte-identical, the summary across datasets included
    assert (snakemade / paths.cross_dataset(mine["sweep"]) / paths.CROSS_PAGE).exists()  # mine's own, beside it
    assert client.get_model_version_by_alias(demo_model, "champion").version == before["champion"]
    assert len(client.search_model_versions(f"name = '{demo_model}'")) == before["versions"]
    demo_parent = client.search_runs([client.get_experiment_by_name("segbench-synthetic").experiment_id],
                                     "tags.`segbench.role` = 'sweep'")
    assert len(demo_parent) == 1 and demo_parent[0].data.metrics == before["parent"]
    mine_experiment = client.get_experiment_by_name("segbench-mine").experiment_id
    mine_parent = client.search_runs([mine_experiment], "tags.`segbench.role` = 'sweep'")[0]
    children = client.search_runs([mine_experiment], "tags.`segbench.role` = 'pair'")
    assert {c.data.tags["mlflow.parentRunId"] for c in children} == {mine_parent.info.run_id}
    champion = client.get_model_version_by_alias("segbench-mine-tiny", "champion")
    assert champion.tags["segbench.run"] == "attention_unet__dice/seed0"
    overlay = ["--configfile", str(tmp_path / "mine.yaml")]  # every segbench command takes the overlay too
    assert "mine: best pair attention_unet__dice" in run(snakemade, "segbench", "results", *overlay)
    image = next((tmp_path / "mine" / "images").glob("*.png"))
    run(snakemade, "segbench", "predict", str(image), "--dataset", "mine", "--run", "attention_unet__dice", "--out",
        str(tmp_path / "predicted"), *overlay)
    assert (tmp_path / "predicted" / f"{image.name}.mask.png").exists()
    shutil.rmtree(snakemade / "results" / "mine")  # the shared project as it was
    shutil.rmtree(snakemade / paths.cross_dataset(mine["sweep"]))
    shutil.rmtree(snakemade / "data" / "processed" / "mine", ignore_errors=True)


def test_the_readme_quick_tour(snakemade, tmp_path):
    """demo -> report -> MLflow compare -> predict, as the README's quick tour runs them."""
    from mlflow.tracking import MlflowClient

    summary = SWEEP.report / "summary.json"
    assert list(json.loads(run(snakemade, "dvc", "metrics", "show", "--json"))[""]["data"]) == [str(summary)]
    run(snakemade, "git", "add", "--all")  # a clone of the project has commits; `dvc exp show` needs one
    run(snakemade, "git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "--quiet", "--allow-empty", "-m",
        "demo")
    shown = run(snakemade, "dvc", "exp", "show", "--no-pager", "--csv").splitlines()[0].split(",")
    metrics = shown[shown.index("parent") + 1:shown.index("datasets.synthetic.name")]  # then come the params
    assert metrics == list(json.loads((snakemade / summary).read_text()))
    assert "Report: " in (snakemade / "logs/report/synthetic.log").read_text()
    assert "report: results/synthetic/tiny/report/report.html" in run(snakemade, "segbench", "results")
    client = MlflowClient(f"sqlite:///{snakemade}/mlflow.db")
    experiment = client.get_experiment_by_name("segbench-synthetic")
    ranked = client.search_runs([experiment.experiment_id], "tags.`segbench.role` = 'pair'",
                                order_by=["metrics.test_dice DESC"])
    best = json.loads((snakemade / summary).read_text())["best_pair"]
    assert ranked[0].info.run_name == f"{best}/seed0/fold0"
    verdict = (snakemade / SWEEP.report / "comparison.md").read_text().split("\n")[2]  # after the title
    assert f"Best pair: {best}," in verdict or f"the highest mean: {best}," in verdict  # (1 epoch may learn nothing)
    image = next((snakemade / "data/raw/synthetic/extracted/BTXRD/images").glob("*.jpeg"))
    out = run(snakemade, "segbench", "predict", str(image), "--out", str(tmp_path))
    assert f"synthetic/tiny/{best}/seed0: 1 image(s)" in out and (tmp_path / f"{image.name}.mask.png").exists()


def test_snakemakes_own_report_builds_and_names_the_dataset(snakemade, tmp_path):
    import zipfile

    run(snakemade, "snakemake", "--report", str(tmp_path / "report.zip"))
    with zipfile.ZipFile(tmp_path / "report.zip") as archive:
        page = next(archive.read(n).decode() for n in archive.namelist() if n.endswith("report.html"))
    assert "synthetic" in page and "tiny" in page
