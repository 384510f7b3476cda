"""A long sweep survives one bad job: with the default profile (keep-going), a job that crashes stops only what
depends on it, and a pair that runs out of GPU memory is a failed pair the report marks, not a failed sweep.

Faults are injected into the real `snakemake` jobs through a ``sitecustomize`` module on their PYTHONPATH, which
patches segbench in the one job it targets: a CUDA out-of-memory error in one pair's training, a crash in another
pair's evaluation."""

import copy
import json
import subprocess

from segbench import paths
from support import SWEEP, TINY, new_project, run, tool_env

FAULTS = '''
import os, sys

argv = " ".join(sys.argv)
if "segbench train" in argv and "--arch attention_unet --loss dice " in argv + " ":
    import torch
    from segbench.training import trainer

    def out_of_memory(*args, **kwargs):
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB (injected)")

    trainer.Session.train_epoch = out_of_memory
if os.environ.get("CRASH_EVALUATE") and "segbench evaluate" in argv and "--arch smp_unet --loss dice " in argv + " ":
    from segbench.evaluation import evaluate

    def crash(*args, **kwargs):
        raise RuntimeError("injected crash")

    evaluate.evaluate_replicate = crash
'''


def test_one_crashed_job_stops_only_its_dependents_and_an_out_of_memory_pair_is_marked(tmp_path):
    params = copy.deepcopy(TINY)
    params["tracking"] = {"mlflow": False}
    (tmp_path / "project").mkdir()
    root = new_project(tmp_path / "project", params)
    faults = tmp_path / "faults"
    faults.mkdir()
    (faults / "sitecustomize.py").write_text(FAULTS)
    env = tool_env(root, PYTHONPATH=f"{faults}:{root / 'src'}", CRASH_EVALUATE="1")
    first = subprocess.run(["snakemake", "--profile", "workflow/profiles/default"], cwd=root, env=env,
                           capture_output=True, text=True)
    assert first.returncode != 0  # the crash is reported ...
    crashed = (root / "logs/evaluate/synthetic/smp_unet/dice/seed0.log").read_text().strip().splitlines()
    assert crashed[-1] == "segbench evaluate: failed: RuntimeError: injected crash"  # ... in one line, last
    for pair in [("smp_unet", "dice_focal"), ("attention_unet", "dice"), ("attention_unet", "dice_focal")]:
        assert (root / SWEEP.seed(*pair, 0) / paths.METRICS).exists(), pair  # every other pair went on
    assert not (root / SWEEP.report / "report.html").exists()  # it needs the crashed pair

    env.pop("CRASH_EVALUATE")
    run(root, "snakemake", "--profile", "workflow/profiles/default", env=env)  # the crash fixed: the rest runs
    trained = json.loads((root / SWEEP.fold("attention_unet", "dice", 0, 0) / paths.TRAINED).read_text())
    assert trained["failed"]["reason"].startswith("out of GPU memory training attention_unet__dice/seed0/fold0 at "
                                                  "batch size 8")
    log = (root / "logs/train/synthetic/attention_unet/dice/seed0/fold0.log").read_text().strip().splitlines()
    assert "attention_unet__dice failed, recorded: out of GPU memory" in log[-1]
    statistics = json.loads((root / SWEEP.report / "statistics.json").read_text())
    assert any(reason.startswith("training stopped at epoch 1, out of GPU memory")
               for reason in statistics["failed"]["attention_unet__dice"])
    page = (root / SWEEP.report / "report.html").read_text()
    assert "training stopped at epoch 1, out of GPU memory" in page
