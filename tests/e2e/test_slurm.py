"""The sweep on a real single-node Slurm cluster through Snakemake's executor and the project's slurm profile:
what each job asked for is what Slurm gave, and the results match a local run's."""

import copy
import subprocess

import pytest
import yaml

from support import TINY, metrics_of, new_project, run, slurm_cluster


@pytest.mark.e2e
@pytest.mark.slurm
@pytest.mark.skipif(slurm_cluster.why_not() is not None, reason=f"no Slurm cluster: {slurm_cluster.why_not()}")
def test_the_sweep_runs_on_a_real_slurm_cluster_and_matches_a_local_run(tmp_path, snakemade):
    (tmp_path / "project").mkdir()
    params = copy.deepcopy(TINY)
    params["sweep"].update(architectures=["attention_unet"], losses=["dice"])  # one of the local run's pairs
    params["tracking"] = {"mlflow": False}  # a mirror: the results must match the local run's, which tracked
    params["train"]["device"] = "cpu"  # Slurm gives each GPU job a pretend GPU (/dev/null): train on the CPU on purpose
    root = new_project(tmp_path / "project", params)
    pairs = [("attention_unet", "dice")]
    profile = root / "workflow/profiles/slurm/config.yaml"  # the README's one-line partition change
    profile.write_text(profile.read_text().replace("# slurm_partition: gpu", "slurm_partition: gpu"))
    # sacct needs slurmdbd: this cluster keeps no accounting, so the executor asks squeue. CPU results are
    # reproducible for one torch thread count: train with the local run's.
    with slurm_cluster.cluster(tmp_path / "slurm"):
        # status checks every 2 s, not the executor's default 40 s (a test's jobs take seconds, a real sweep's hours)
        run(root, "snakemake", "--profile", "workflow/profiles/slurm", "--jobs", "4", "--slurm-status-command",
            "squeue", "--slurm-keep-successful-logs", "--set-threads", "train=1",
            "--slurm-init-seconds-before-status-checks", "2", "--seconds-between-status-checks", "2")
        logs = sorted((root / ".snakemake/slurm_logs").rglob("*.log"))  # <rule>/[<wildcards>/]<job id>.log
        jobs = {int(p.stem): p.relative_to(root / ".snakemake/slurm_logs").parts[0] for p in logs}
        granted = {job: subprocess.run(["scontrol", "--details", "show", "job", str(job)], capture_output=True,
                                       text=True).stdout for job in jobs}
    assert sorted(jobs.values()).count("rule_train") == len(pairs)
    assert {"rule_download", "rule_preprocess", "rule_split", "rule_evaluate", "rule_report"} <= set(jobs.values())
    asked = yaml.safe_load(profile.read_text())
    for job, rule in jobs.items():  # what the profile asked for is what Slurm gave
        assert "JobState=COMPLETED" in granted[job]
        mem_mb = asked["set-resources"].get(rule.removeprefix("rule_"), {}).get("mem_mb", asked[
            "default-resources"]["mem_mb"])
        assert f"MinMemoryNode={mem_mb}M " in granted[job], granted[job]
        on_gpu = rule in ("rule_train", "rule_evaluate", "rule_latency")
        assert ("JOB_GRES=gpu:1" in granted[job]) == on_gpu, granted[job]
        assert f"Partition={'gpu' if on_gpu else 'debug'} " in granted[job], granted[job]
    assert metrics_of(root, pairs=pairs) == metrics_of(snakemade, pairs=pairs)
