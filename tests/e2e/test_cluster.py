"""From laptop to cluster: a real Slurm cluster through Snakemake's executor, lint and format, and
resuming a job its time limit killed."""

import copy
import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from segbench import paths
from support import (
    BIN,
    PAIRS,
    REPO,
    SWEEP,
    TINY,
    make_project,
    mlflow_server,
    run,
    tool_env,
)


def test_snakemake_lint_and_snakefmt_find_nothing(tmp_path):
    lint = run(make_project(tmp_path, TINY), "snakemake", "--lint")
    assert "Lints for" not in lint, lint
    run(REPO, "snakefmt", "--check", "Snakefile", *sorted(
        str(p.relative_to(REPO)) for p in (REPO / "workflow/rules").glob("*.smk")))


def test_profiles_set_the_cluster_resources_keep_going_and_give_threads_as_asked():
    profiles = {name: yaml.safe_load((REPO / f"workflow/profiles/{name}/config.yaml").read_text())
                for name in ("default", "slurm", "kubernetes")}
    assert all(profile["keep-going"] is True for profile in profiles.values())  # one bad job stops no sweep
    slurm = profiles["slurm"]
    assert slurm["executor"] == "slurm" and slurm["retries"] >= 1
    for rule in ("train", "evaluate"):
        assert {"mem_mb", "runtime", "cpus_per_task"} <= set(slurm["set-resources"][rule])
        assert slurm["set-threads"][rule] == slurm["set-resources"][rule]["cpus_per_task"]  # used as given
    kubernetes = profiles["kubernetes"]
    assert kubernetes["executor"] == "kubernetes" and kubernetes["config"] == ["train={workers: 0}"]
    assert all(kubernetes["set-resources"][rule]["scale"] == 0 for rule in ("train", "evaluate"))  # GPU limits


@pytest.mark.parametrize("profile", [[], ["--profile", "workflow/profiles/default"]])
def test_every_gpu_job_counts_a_gpu_with_or_without_a_profile(tmp_path, profile):
    root = make_project(tmp_path, TINY)
    out = run(root, "snakemake", "--cores", "16", "--resources", "gpu=2", "--dry-run", *profile)
    jobs = re.findall(r"^(?:local)?rule (\w+):\n(?:    .*\n)*?    resources: (.*)$", out, re.MULTILINE)
    assert {rule for rule, _ in jobs} == {"download", "preprocess", "split", "train", "evaluate", "latency", "report",
                                          "summary", "all"}
    for rule, resources in jobs:
        assert ("gpu=1" in resources) == (rule in ("train", "evaluate", "latency")), (rule, resources)


def test_without_resources_gpu_jobs_are_capped_at_the_visible_gpus_and_jobs_get_their_threads(tmp_path):
    """A machine whose nvidia-smi lists 2 GPUs: without --resources gpu=N, at most 2 GPU jobs at once, said once;
    with it, the user's N. Every job's command carries the threads Snakemake gave it (set-threads)."""
    fake = tmp_path / "bin"
    fake.mkdir()
    (fake / "nvidia-smi").write_text("#!/bin/sh\necho 'GPU 0: Fake (UUID: GPU-a)'\necho 'GPU 1: Fake (UUID: GPU-b)'\n")
    (fake / "nvidia-smi").chmod(0o755)
    (tmp_path / "project").mkdir()
    root = make_project(tmp_path / "project", TINY)
    env = tool_env(root, PATH=f"{fake}:{tool_env()['PATH']}")
    env.pop("CUDA_VISIBLE_DEVICES", None)
    capped = run(root, "snakemake", "--cores", "16", "--dry-run", "--printshellcmds", "--set-threads", "train=3",
                 env=env)
    assert capped.count("segbench: at most 2 GPU job(s) at once, one per visible GPU") == 1
    assert re.search(r"segbench train .*--threads 3 --params", capped)
    assert re.search(r"segbench evaluate .*--threads 1 --params", capped)
    chosen = run(root, "snakemake", "--cores", "16", "--resources", "gpu=1", "--dry-run", env=env)
    assert "at most" not in chosen


def test_a_job_killed_at_its_time_limit_resumes_with_its_learning_rate_schedule(prepared, tmp_path):
    """Slurm ends a job at its time limit with SIGTERM; the rerun (Snakemake's retry, or a requeue) goes on
    from the last finished epoch, ReduceLROnPlateau's state included (nnU-Net issue 901 was this bug)."""
    import signal
    import time

    import pandas as pd

    # at this rate val Dice peaks at epoch 1, so the whole run halves the rate after every later epoch: a run
    # resumed after epoch 3 that forgot the scheduler's best would count epoch 4 as its best and keep the rate
    params = {**TINY, "train": {**TINY["train"], "epochs": 8, "lr": 0.01, "scheduler": "plateau",
                                "plateau_patience": 0, "plateau_factor": 0.5}}
    folders = {}
    for name in ("killed", "whole"):
        folders[name] = tmp_path / name
        shutil.copytree(prepared / "data", folders[name] / "data")
        (folders[name] / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    train = [str(BIN / "segbench"), "train", "--arch", "attention_unet", "--loss", "dice"]
    fold = SWEEP.fold("attention_unet", "dice", 0, 0)

    log = tmp_path / "killed.log"  # a file, not a pipe nobody reads while the job runs
    job = subprocess.Popen(train, cwd=folders["killed"], env=tool_env(), stderr=log.open("w"))
    history = folders["killed"] / fold / "history.csv"
    while not (history.exists() and len(pd.read_csv(history)) >= 3) and job.poll() is None:
        time.sleep(0.02)
    job.send_signal(signal.SIGTERM)
    assert job.wait(timeout=120) != 0, log.read_text()[-3000:]
    killed_after = len(pd.read_csv(history))
    assert killed_after < 8 and (folders["killed"] / fold / "resume.pt").exists()
    assert not (folders["killed"] / fold / "train.json").exists()

    for name in folders:
        run(folders[name], *train)
    resumed, whole = (pd.read_csv(folders[name] / fold / "history.csv") for name in folders)
    assert whole["lr"].nunique() > 1  # the plateau schedule did lower the rate: there was a state to restore
    assert whole["val_dice"].iloc[3] < whole["val_dice"].iloc[:3].max()  # epoch 4 is no best: the state matters
    pd.testing.assert_frame_equal(resumed, whole)
    assert json.loads((folders["killed"] / fold / "train.json").read_text())["epochs"] == 8


@pytest.mark.e2e
def test_a_collaborator_pulls_the_sweep_from_the_dvc_remote_with_nothing_to_rerun(snakemade, tmp_path):
    origin = shutil.copytree(snakemade, tmp_path / "origin", symlinks=True)
    run(origin, "dvc", "commit", "--force", "--quiet")  # as `make demo` does after Snakemake
    run(origin, "dvc", "remote", "add", "--default", "store", str(tmp_path / "store"))
    run(origin, "dvc", "push")
    run(origin, "git", "add", "--all")
    run(origin, "git", "-c", "user.name=segbench", "-c", "user.email=segbench@localhost", "commit", "-qm", "sweep")
    assert not (tmp_path / "store").is_symlink() and any((tmp_path / "store").rglob("*"))

    run(tmp_path, "git", "clone", "-q", str(origin), "clone")
    clone = tmp_path / "clone"
    assert not (clone / "data").exists() and not list(clone.rglob("*.pt"))  # git holds no data or model
    assert (clone / SWEEP.report / "summary.json").exists()  # but the small `cache: false` outputs
    run(clone, "workflow/scripts/pull")  # make pull
    for path in (SWEEP.fold("smp_unet", "dice", 0, 0) / "model_best.pt", SWEEP.report / "report.html",
                 paths.processed_dir("synthetic") / "images.npy"):
        assert (clone / path).read_bytes() == (origin / path).read_bytes()
    assert "Data and pipelines are up to date" in run(clone, "dvc", "status")
    assert "Nothing to be done" in run(clone, "snakemake", "--cores", "all", "--dry-run")
    assert "Stage 'report@synthetic' didn't change, skipping" in run(clone, "dvc", "repro", "--dry")


def _sweep_job(uri: str, start, swept: Path, job: int) -> None:
    """What one train + evaluate job of a sweep writes to MLflow (run in its own process)."""
    from PIL import Image

    from segbench.apps.drawing import png_bytes
    from segbench.apps.model_registry import log_run_model
    from segbench.tracking import Tracker

    arch, loss = PAIRS[job % 4]
    seed, seed_dir = job // 4, swept / SWEEP.seed(arch, loss, 0)
    tracker = Tracker("synthetic", "on_a_server", uri=uri)
    start.wait()  # all at once: the first request of each is for the sweep's parent run
    run_id = tracker.start_training(arch, loss, seed, 0, {"arch": arch, "loss": loss, "seed": seed}, {})
    for epoch in (1, 2, 3):
        tracker.log_metrics(run_id, {"val_dice": job + epoch / 10, "train_loss": 1 / epoch}, step=epoch)
    tracker.end(run_id)
    tracker.log_test_metrics([run_id], json.loads((seed_dir / "metrics.json").read_text()))
    log_run_model(tracker, [run_id], f"{arch}__{loss}/seed{seed}", seed_dir / "metrics.json",
                  {"fold0": seed_dir / "folds/fold0/model_best.pt"}, png_bytes(Image.new("L", (32, 32))))


@pytest.mark.e2e
def test_eight_jobs_write_to_one_mlflow_server_without_losing_or_doubling_anything(swept, tmp_path):
    """8 parallel writers against a real `mlflow server` (SQLite backend, proxied artifact store)."""
    import multiprocessing

    from segbench.tracking import ROLE, Tracker

    with mlflow_server(f"sqlite:///{tmp_path}/mlflow.db", tmp_path) as uri:
        # eight processes of their own, as eight jobs are, forked from one that imported what a job imports,
        # instead of each paying torch's and MLflow's imports (about 5 s of CPU each)
        context = multiprocessing.get_context("forkserver")
        context.set_forkserver_preload(["torch", "mlflow.pyfunc", "segbench.apps.model_registry",
                                        "segbench.apps.drawing"])
        start = context.Barrier(8)
        jobs = [context.Process(target=_sweep_job, args=(uri, start, swept, k)) for k in range(8)]
        for job in jobs:
            job.start()
        for job in jobs:
            job.join(timeout=600)
        assert [job.exitcode for job in jobs] == [0] * 8

        tracker = Tracker("synthetic", "on_a_server", uri=uri)
        runs = tracker.client.search_runs([tracker.experiment_id()])
        parents = [r for r in runs if r.data.tags[ROLE] == "sweep"]
        children = [r for r in runs if r.data.tags[ROLE] == "pair"]
        assert len(parents) == 1 and len(children) == 8
        assert {r.data.tags["mlflow.parentRunId"] for r in children} == {parents[0].info.run_id}
        assert len({r.info.run_name for r in children}) == 8
        for child in children:
            assert [m.step for m in tracker.client.get_metric_history(child.info.run_id, "val_dice")] == [1, 2, 3]
            assert "test_dice" in child.data.metrics and child.info.status == "FINISHED"
            assert {a.path for a in tracker.client.list_artifacts(child.info.run_id, "model")} >= {"model/MLmodel"}
        versions = tracker.client.search_model_versions("name = 'segbench-synthetic-on_a_server'")
        assert sorted(v.tags["segbench.run"] for v in versions) == sorted(
            f"{r.data.tags['segbench.arch']}__{r.data.tags['segbench.loss']}/seed{r.data.tags['segbench.seed']}"
            for r in children)
        assert {v.run_id for v in versions} == {r.info.run_id for r in children}
        assert len(list((tmp_path / "artifacts").rglob("MLmodel"))) == 8  # through the server, into its store


def test_a_sweep_parent_deleted_in_the_ui_is_restored_not_doubled(tmp_path):
    from segbench.tracking import Tracker

    tracker = Tracker("synthetic", "tiny", uri=f"sqlite:///{tmp_path}/mlflow.db")
    parent = tracker.sweep_run()
    tracker.client.delete_run(parent)
    assert Tracker("synthetic", "tiny", uri=tracker.uri).sweep_run() == parent
    assert tracker.client.get_run(parent).info.lifecycle_stage == "active"


def test_a_baseline_runs_beside_the_pairs_with_a_cluster_runtime_from_its_budget(tmp_path):
    """baseline_prepare asks for one core (not all of them, which made it wait for every pair), and a baseline
    fold's runtime follows its schedule: nnU-Net's full 1000 x (250 + 10) iterations at 0.3 s, plus 30 min."""
    params = copy.deepcopy(TINY)
    params["sweep"]["baselines"] = ["nnunet"]
    params["baselines"]["nnunet"].update(epochs=1000, iterations_per_epoch=250)
    out = run(make_project(tmp_path, params), "snakemake", "--cores", "16", "--dry-run")
    jobs = dict(re.findall(r"^(?:local)?rule (\w+):\n((?:    .*\n)*)", out, re.MULTILINE))
    assert "threads:" not in jobs["baseline_prepare"] and "threads: 16" in jobs["preprocess"], out
    assert re.search(r"resources: .*\bruntime=1330\b", jobs["baseline_train"]), jobs["baseline_train"]
