"""The pipeline definition: dvc.yaml is what it generates, each job's code is what it runs, layers import one
way."""

import pytest

from segbench import paths, pipeline
from segbench.config import validate_params
from support import REPO, SWEEP, TINY, tiny_params

# Lower layers never import higher ones.
LAYERS = [
    ["segbench", "segbench.labels", "segbench.registry", "segbench.io", "segbench.paths", "segbench.tracking"],
    ["segbench.data"],
    ["segbench.models", "segbench.losses", "segbench.metrics", "segbench.baselines"],
    ["segbench.predict"],
    ["segbench.training", "segbench.evaluation"],
    ["segbench.report"],
    ["segbench.apps", "segbench.config", "segbench.pipeline"],
]
# the registry tables are read when params are checked; they import nothing heavy
ALLOWED_UPWARD = {("segbench.config", "segbench.models"), ("segbench.config", "segbench.losses"),
                  ("segbench.pipeline", "segbench.models"), ("segbench.pipeline", "segbench.losses")}


def layer(module: str) -> int:
    matches = [(len(prefix), i) for i, names in enumerate(LAYERS) for prefix in names
               if module == prefix or module.startswith(prefix + ".")]
    return max(matches)[1]


def modules() -> list[str]:
    return sorted(".".join(p.relative_to(REPO / "src").with_suffix("").parts).removesuffix(".__init__")
                  for p in (REPO / "src" / "segbench").rglob("*.py"))


def package(module: str) -> str:
    return ".".join(module.split(".")[:2])


def test_dvc_yaml_is_what_the_pipeline_definition_generates():
    from segbench.config import load_params

    pipeline.check_dvc_yaml(load_params(REPO / "params.yaml"), REPO / "dvc.yaml")  # else: `segbench dag --write`


def budgeted(eta: int = 3) -> dict:
    params = tiny_params(epochs=9)
    params["sweep"]["budget"] = {"strategy": "successive_halving", "eta": eta, "min_epochs": 1}
    return params


def test_dvc_yaml_spells_out_the_rungs_of_a_budget_and_names_the_rung_before(tmp_path):
    """eta 3 and 9 epochs: rungs 0 (1 epoch) and 1 (3 epochs) before train; rung 0 does not read eta, so changing it
    keeps rung 0's runs; a dvc.yaml of another budget is refused, naming the fix."""
    import yaml

    stages = yaml.safe_load(pipeline.dvc_yaml(budgeted()))["stages"]
    assert [s for s in stages if s.startswith(("rung", "select"))] == ["rung0", "rung1", "select0", "select1"]
    assert stages["rung1"]["cmd"].endswith("--rung 1") and "rung" not in stages["rung1"]["matrix"]
    deps = stages["rung1"]["deps"]
    assert "results/${item.dataset}/${sweep.name}/rungs/selection0.json" in deps
    assert "results/${item.dataset}/${sweep.name}/rungs/rung0/${item.arch}__${item.loss}/seed${item.seed}/" \
           "fold${item.fold}" in deps
    assert "sweep.budget.eta" not in stages["rung0"]["params"] and "sweep.budget.eta" in stages["rung1"]["params"]
    assert "results/${item.dataset}/${sweep.name}/rungs/rung1" in stages["select1"]["deps"]
    assert "results/${item.dataset}/${sweep.name}/rungs" in stages["train"]["deps"]
    unbudgeted = yaml.safe_load(pipeline.dvc_yaml(tiny_params()))["stages"]
    assert "rung0" not in unbudgeted
    assert "results/${item.dataset}/${sweep.name}/rungs" not in unbudgeted["train"]["deps"]
    (tmp_path / "dvc.yaml").write_text(pipeline.dvc_yaml(budgeted(3)))
    pipeline.check_dvc_yaml(budgeted(3), tmp_path / "dvc.yaml")
    with pytest.raises(Exception, match=r"dvc.yaml: not what the pipeline definition generates .*segbench dag --write"):
        pipeline.check_dvc_yaml(budgeted(2), tmp_path / "dvc.yaml")


def test_snakemake_jobs_of_a_budget_read_the_rung_before():
    params = budgeted()
    fields = {"dataset": "synthetic", "arch": "smp_unet", "loss": "dice", "seed": 0, "fold": 0}
    rung0 = pipeline.job_inputs(pipeline.stage("rung"), params, {**fields, "rung": "0"})
    rung1 = pipeline.job_inputs(pipeline.stage("rung"), params, {**fields, "rung": "1"})
    assert not [f for f in rung0 if "/rungs/" in f]
    assert {f for f in rung1 if "/rungs/" in f} == {str(SWEEP.selection(0)), str(SWEEP.rung(0, "smp_unet", "dice", 0,
                                                                                              0))}
    train = [f for f in pipeline.job_inputs(pipeline.stage("train"), params, fields) if "/rungs/" in f]
    assert train == [str(SWEEP.selection(1)), *(str(SWEEP.rung(r, "smp_unet", "dice", 0, 0)) for r in (0, 1))]
    assert not [f for f in pipeline.job_inputs(pipeline.stage("train"), tiny_params(), fields) if "/rungs/" in f]
    assert "sweep.budget.eta" not in pipeline.job_params(pipeline.stage("rung"), params, {**fields, "rung": "0"})
    assert "sweep.budget.eta" in pipeline.job_params(pipeline.stage("rung"), params, {**fields, "rung": "1"})


def train_code(arch: str, loss: str, **architectures) -> set[str]:
    params = tiny_params()
    params["architectures"].update(architectures)
    return set(pipeline.job_code(pipeline.stage("train"), validate_params(params), {"arch": arch, "loss": loss}))


def test_a_pair_depends_on_its_own_architecture_and_loss_terms_not_on_the_others():
    code = {f.removeprefix("src/segbench/") for f in train_code("attention_unet", "dice_focal")}
    assert {"models/attention_unet.py", "models/blocks.py", "models/base.py", "losses/region.py",
            "losses/distribution.py", "training/trainer.py", "metrics/overlap.py", "data/dataset.py"} <= code
    assert not code & {"models/unet3plus.py", "models/smp_models.py", "losses/boundary.py", "losses/compound.py",
                       "models/catalog.py", "losses/catalog.py", "report/build.py", "evaluation/evaluate.py",
                       "apps/cli.py", "config.py"}
    variant = {f.removeprefix("src/segbench/") for f in train_code("deep", "dice", deep={"family": "unet3plus"})}
    assert "models/unet3plus.py" in variant and "models/attention_unet.py" not in variant


# Each stage's own code (its module and what it imports, registry entries aside): a new file here is a review
# question, "does this job really run it?", since editing it reruns every job of the stage.
_DATA = {"data", "io", "segbench"}
_PREDICT = {"predict", "predict.outputs", "predict.postprocess", "predict.predictor", "models", "registry", "paths",
            "baselines", "data.images", "devices", "metrics", "metrics.detection"}
_SCORE = {*_PREDICT, "data.processed", "data.metadata", "labels", "evaluation", "evaluation.evaluate",
          "evaluation.summary", "metrics.boundary", "metrics.image", "metrics.overlap", *_DATA}
_REPORT = {"report", "report.analysis", "report.build", "report.collect", "report.figures", "report.html",
           "report.latex", "report.tables", "report.workbook", "evaluation", "evaluation.statistics", "data.images",
           "data.processed", "labels", "paths", *_DATA}
STAGE_CODE = {
    "download": {*_DATA, "data.btxrd", "data.download", "data.sample", "data.sources", "data.synthetic"},
    "preprocess": {*_DATA, "data.audit", "data.btxrd", "data.download", "data.folder", "data.images",
                   "data.labelmaps", "data.metadata", "data.nnunet", "data.pets", "data.preprocess", "data.readers",
                   "data.sample", "labels", "paths", "registry"},
    "split": {*_DATA, "data.audit", "data.metadata", "data.split", "paths"},
    "train": {*_DATA, "data.dataset", "data.distance", "data.images", "data.processed", "devices", "labels", "losses",
              "losses.weighted_sum", "metrics", "metrics.overlap", "models", "models.complexity", "paths", "predict",
              "predict.outputs", "provenance", "records", "registry", "training", "training.callbacks",
              "training.checkpoint",
              "training.device", "training.optim", "training.trainer", "training.validation", "training.halving",
              "training.final", "budget", "tuning"},
    "rung": set(),  # train's: below
    "select": {"budget", "evaluation", "evaluation.selection", "evaluation.statistics", "io", "paths", "records",
               "segbench", "tuning"},
    "tune": set(),  # train's: below
    "choose": {"tuning", "io", "paths", "records", "segbench"},
    "evaluate": _SCORE,
    "reference": set(),  # train's and evaluate's code: below
    "latency": {*_PREDICT, "evaluation", "evaluation.latency", *_DATA},
    "baseline_prepare": {"baselines", "segbench"},
    "baseline_train": {"baselines", "segbench"},
    "baseline_evaluate": _SCORE,
    "report": _REPORT,
    "summary": {*_REPORT, "report.cross_dataset"},
}

STAGE_CODE["reference"] = (STAGE_CODE["train"] - {"training.halving", "training.final", "budget", "tuning"}) | _SCORE \
    | {"evaluation.reference"}
STAGE_CODE["rung"] = STAGE_CODE["tune"] = STAGE_CODE["train"] - {"training.final"}
STAGE_CODE["report"] = STAGE_CODE["report"] | {"budget", "records", "tuning"}
STAGE_CODE["summary"] = STAGE_CODE["summary"] | {"budget", "records", "tuning"}


def test_each_stage_runs_exactly_its_own_code_and_no_side_channel():
    """The MLflow mirror, the apps, the CLI and the baselines' modules are no stage's code (a baseline's jobs add
    their own module as a registry entry): editing them reruns nothing."""
    assert set(STAGE_CODE) == {s.name for s in pipeline.STAGES}
    for stage in pipeline.STAGES:
        found = {m.removeprefix("segbench.") if m != "segbench" else m for m in pipeline.closure(stage.module)}
        assert found == STAGE_CODE[stage.name], (stage.name, found ^ STAGE_CODE[stage.name])
        assert not found & {"tracking", "baselines.nnunet", "apps", "apps.cli", "config"}, stage.name


def test_a_baseline_job_depends_on_its_own_module():
    code = pipeline.job_code(pipeline.stage("baseline_train"), tiny_params(), {"baseline": "nnunet"})
    assert "src/segbench/baselines/nnunet.py" in code and "src/segbench/baselines/catalog.py" not in code


def test_data_stages_depend_on_no_model_or_loss_code():
    for name in ("download", "preprocess", "split"):
        code = pipeline.job_code(pipeline.stage(name), tiny_params(), {"dataset": "synthetic"})
        assert code and not [f for f in code if "/models/" in f or "/losses/" in f], name
        assert not [f for f in pipeline.stage_code(pipeline.stage(name)) if "models" in f or "losses" in f], name


def test_a_module_named_as_a_registry_target_is_code_its_stage_depends_on():
    """The readers are loaded by name from the registry, not imported: preprocessing still reruns when one
    changes."""
    code = pipeline.job_code(pipeline.stage("preprocess"), tiny_params(), {"dataset": "synthetic"})
    assert {f"src/segbench/data/{m}.py" for m in ("btxrd", "pets", "folder", "nnunet")} <= set(code)


def test_a_pair_depends_on_its_lines_of_the_registry_tables():
    params = tiny_params()
    train = pipeline.stage("train")
    lines = pipeline.job_entries(train, params, {"arch": "attention_unet", "loss": "dice_focal"})
    assert len(lines) == 3 and '"attention_unet", "segbench.models.attention_unet:AttentionUNet"' in lines[0]
    assert lines == pipeline.job_entries(train, params, {"arch": "attention_unet", "loss": "dice_focal"})
    assert lines[0] != pipeline.job_entries(train, params, {"arch": "smp_unet", "loss": "dice"})[0]


def test_jobs_read_the_params_of_their_own_entries():
    from segbench.config import dataset_params

    view = dataset_params(tiny_params(), "synthetic")
    values = pipeline.job_params(pipeline.stage("train"), view, {"arch": "smp_unet", "loss": "dice"})
    assert values["architectures.smp_unet"] == view["architectures"]["smp_unet"]
    assert values["losses.dice"][0]["term"] == "dice" and "losses.dice_focal" not in values
    download = pipeline.job_params(pipeline.stage("download"), view, {"dataset": "synthetic"})
    assert download == {"dataset.name": "synthetic", "dataset.source": None, "dataset.checksum": None,
                        "synthetic": view["synthetic"]}


def test_every_stage_runs_one_segbench_command_over_its_fields():
    assert [s.name for s in pipeline.STAGES] == ["download", "preprocess", "split", "rung", "select", "tune", "choose",
                                                 "train", "evaluate", "reference", "latency", "baseline_prepare",
                                                 "baseline_train", "baseline_evaluate", "report", "summary"]
    assert pipeline.stage("train").command() == ("segbench train --dataset {dataset} --arch {arch} --loss {loss} "
                                                 "--seed {seed} --fold {fold}")
    with pytest.raises(Exception, match="unknown stage 'deploy'"):
        pipeline.stage("deploy")


def test_layers_import_one_way():
    wrong = [f"{module} -> {imported}" for module in modules() for imported in pipeline.imports(module)
             if layer(imported) > layer(module) and (package(module), package(imported)) not in ALLOWED_UPWARD]
    assert wrong == []


def test_no_import_cycles_between_packages():
    packages = {}
    for module in modules():
        packages.setdefault(package(module), set()).update(package(m) for m in pipeline.imports(module))
    for a, imported in packages.items():
        for b in imported - {a, "segbench"}:
            assert a not in packages.get(b, set()), f"{a} <-> {b}"


def test_tracking_packages_no_model_and_imports_no_torch():
    assert not any(m.startswith(("segbench.apps", "segbench.predict")) for m in pipeline.imports("segbench.tracking"))
    assert "import torch" not in (REPO / "src/segbench/tracking.py").read_text()


def test_the_tiny_params_name_every_key_the_dvc_stages_read():
    import yaml

    for stage in yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"].values():
        for key in stage["params"]:
            section = key.split(".")[0]
            assert section in TINY, key


def test_a_run_name_is_spelled_and_parsed_in_one_place():
    from segbench.paths import RunId

    for name in ("smp_unet__dice", "smp_unet__dice_focal/seed2", "attention_unet__dice/seed0/fold3"):
        assert str(RunId.parse(name)) == name
    assert RunId.parse("a_b__c_d/seed1") == RunId("a_b", "c_d", 1) and RunId("a", "b", 0, 2).pair == "a__b"
    for bad in ("smp_unet", "a__b/fold1", "a__b/seed1/fold", "a__b/seedx", "a__b/seed1/fold1/x"):
        with pytest.raises(ValueError, match="is not <arch>__<loss>"):
            RunId.parse(bad)


def test_the_report_reads_nothing_its_stage_does_not_declare():
    from pathlib import Path

    from segbench import SegbenchError
    from segbench.report.collect import Inputs

    inputs = Inputs(pipeline.job_inputs(pipeline.stage("report"), tiny_params(), {"dataset": "synthetic"}))
    declared = Path("data/splits/synthetic_leakage.json")
    assert inputs.check(declared) == declared
    assert inputs.check(SWEEP.seed("smp_unet", "dice", 0) / "generalisation" / "in_group.csv")  # in a declared folder
    with pytest.raises(SegbenchError, match="does not declare as an input"):
        inputs.check(Path("data/splits/synthetic_notes.txt"))


def test_every_figure_has_a_section_a_caption_and_its_outputs():
    from importlib.resources import files

    captions = files("segbench.report").joinpath("captions")
    sections = {"comparison", "distributions", "statistics", "cost", "training", "cases", "leakage"}
    report = pipeline.stage("report")
    for name, section in paths.FIGURES.items():
        assert section in sections and captions.joinpath(f"{name}.rst").is_file(), name
        assert [o.figure for o in report.outputs if o.figure == name] == [name]  # one png shown by Snakemake's report


def test_a_tuned_sweep_trains_every_candidate_and_its_train_jobs_read_the_choice():
    import yaml

    params = tiny_params()
    params["sweep"]["tune"] = {"train.lr": [1.0e-3, 1.0e-2], "train.batch_size": [4]}
    stages = yaml.safe_load(pipeline.dvc_yaml(params))["stages"]
    assert stages["tune"]["matrix"]["candidate"] == [0, 1] and "sweep.tune" in stages["tune"]["params"]
    assert "results/${item.dataset}/${sweep.name}/runs/${item.arch}__${item.loss}/tuning" in stages["choose"]["deps"]
    fields = {"dataset": "synthetic", "arch": "smp_unet", "loss": "dice", "seed": 0, "fold": 0}
    train = pipeline.job_inputs(pipeline.stage("train"), params, fields)
    assert str(SWEEP.tuning("smp_unet", "dice")) in train
    assert {str(SWEEP.tune("smp_unet", "dice", c, 0, 0)) for c in (0, 1)} <= set(train)
    assert "tune" not in yaml.safe_load(pipeline.dvc_yaml(tiny_params()))["stages"]
