"""Snakemake and DVC as two orchestrators of one pipeline definition: the same stages and outputs, `dvc exp run
--set-param` reaching the job, and seeds x folds giving byte-identical metrics through either."""

from __future__ import annotations

import copy
import json

import pandas as pd
import yaml

from segbench import paths, pipeline
from support import SWEEP, TINY, metrics_of, new_project, planned_jobs, run


def test_snakefile_and_dvc_yaml_have_the_same_stages_and_outputs(tmp_path):
    from dvc.repo import Repo

    root = new_project(tmp_path)
    summary = run(root, "snakemake", "--cores", "1", "--summary").splitlines()
    header = summary.index(next(line for line in summary if line.startswith("output_file")))
    snakemake = {tuple(line.split("\t")[:3:2]) for line in summary[header + 1:] if "\t" in line}
    dvc = {(str(out.def_path), stage.name.split("@")[0]) for stage in Repo(root).index.stages for out in stage.outs}
    assert snakemake == dvc
    # no baseline, reference, rung or tuning stage has a job here (tests/e2e/test_baseline.py, test_datasets.py,
    # test_budget.py and test_tune.py run them)
    assert not TINY["sweep"]["baselines"] and not TINY["sweep"].get("references")
    assert not TINY["sweep"].get("budget") and not TINY["sweep"].get("tune")
    assert {stage for _, stage in dvc} == {s.name for s in pipeline.STAGES if "baseline" not in s.fields
                                           and s.datasets == pipeline.AXES["dataset"] and s.when is None}


def test_dvc_exp_run_set_param_reaches_the_job(tmp_path):
    root = new_project(tmp_path)
    run(root, "git", "add", "--all")  # `dvc exp` needs a commit
    run(root, "git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "--quiet", "-m", "project")
    run(root, "dvc", "exp", "run", "-S", "synthetic.n_images=20", "preprocess@synthetic")
    assert len(pd.read_csv(root / paths.processed_dir("synthetic") / "meta.csv")) == 18


def test_seeds_and_folds_in_both_orchestrators_give_byte_identical_metrics(tmp_path):
    """One pair with 2 seeds and 2-fold cross-validation, through Snakemake and through `dvc repro`:
    the same runs, byte for byte the same metrics; the test images predicted by each seed's fold ensemble; after
    `dvc repro`, Snakemake has nothing left to do."""
    import numpy as np

    outcomes = {}
    for tool in ("snakemake", "dvc"):
        (tmp_path / tool).mkdir()
        params = copy.deepcopy(TINY)
        params["split"]["folds"] = 2
        params["sweep"].update(architectures=["unet"], losses=["dice"], seeds=[0, 1], folds=[0, 1])
        params["architectures"]["unet"] = {"base_channels": 4}
        params["tracking"] = {"mlflow": False}  # a mirror: no stage's output depends on it
        root = new_project(tmp_path / tool, params)
        run(root, *(["snakemake", "--cores", "2"] if tool == "snakemake" else ["dvc", "repro"]))
        outcomes[tool] = root
    pairs = [("unet", "dice")]
    for seed in (0, 1):
        snake, dvc = (metrics_of(outcomes[t], pairs=pairs, seed=seed) for t in outcomes)
        assert snake == dvc and all(m["folds"] == [0, 1] for m in snake.values())
        for pair in pairs:
            metrics = SWEEP.seed(*pair, seed) / "metrics.json"
            assert (outcomes["snakemake"] / metrics).read_bytes() == (outcomes["dvc"] / metrics).read_bytes(), pair
        folds = [json.loads((outcomes["dvc"] / SWEEP.fold("unet", "dice", seed, f) / "train.json").read_text())
                 for f in (0, 1)]
        assert [f["fold"] for f in folds] == [0, 1] and {f["seed"] for f in folds} == {seed}
    split = pd.read_csv(outcomes["dvc"] / paths.split_csv("synthetic"))
    with np.load(outcomes["dvc"] / SWEEP.seed("unet", "dice", 0) / "val_predictions.npz") as oof:
        assert set(oof.files) == set(split.loc[split["subset"] != "test", "sample_id"])  # every fold's val images
    statistics = json.loads((outcomes["snakemake"] / SWEEP.report / "statistics.json").read_text())
    assert statistics["seeds"] == [0, 1] and set(statistics["per_pair"]) == {"unet__dice"}
    assert "up to date" in run(outcomes["dvc"], "dvc", "status")
    assert planned_jobs(outcomes["dvc"]) == []


TOY = '''
STAGES = (*STAGES, Stage("toy", ("dataset",), ("split.seed",), (Input(paths.SPLIT),),
                         (Output("results/{dataset}/toy.txt"),), "segbench.apps.toy", help="count the test images",
                         run="segbench.apps.toy:toy"))
BY_NAME = {stage.name: stage for stage in STAGES}
'''
TOY_COMMAND = '''
import pandas as pd

from segbench import paths


def toy(params, args):
    split = pd.read_csv(paths.split_csv(args.dataset))
    paths.at("results/{dataset}/toy.txt", dataset=args.dataset).write_text(str((split["subset"] == "test").sum()))
'''


def test_a_new_stage_is_one_entry_in_stages_and_every_tool_runs_it(tmp_path):
    """A toy stage added to STAGES (and its function): no edit in the CLI, the Snakefile, the profiles or the
    report's inputs. Its command has its fields as options, Snakemake runs it, dvc.yaml holds it."""
    root = new_project(tmp_path)
    pipeline_py = root / "src/segbench/pipeline.py"
    pipeline_py.write_text(pipeline_py.read_text() + TOY)
    (root / "src/segbench/apps/toy.py").write_text(TOY_COMMAND)
    assert "--dataset DATASET" in run(root, "segbench", "toy", "--help")
    run(root, "snakemake", "--cores", "1", "--profile", "workflow/profiles/default", "results/synthetic/toy.txt")
    assert int((root / "results/synthetic/toy.txt").read_text()) > 0
    run(root, "segbench", "dag", "--write")
    stages = yaml.safe_load((root / "dvc.yaml").read_text())["stages"]
    assert stages["toy"]["cmd"] == "segbench toy --dataset ${item.dataset}"
    assert "src/segbench/apps/toy.py" in stages["toy"]["deps"]  # its code
    assert "toy" not in " ".join(pipeline.job_inputs(pipeline.stage("report"), TINY, {"dataset": "synthetic"}))
