"""The DAG's code dependencies come from the real imports, dvc.yaml agrees, and layers import one way."""

from pathlib import Path

import pytest
import yaml

from conftest import REPO
from segbench import dag

DVC = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]

# Lower layers never import higher ones: core -> data -> models / losses / metrics -> inference -> training
# -> evaluation -> report -> config / cli.
LAYERS = [
    ["segbench", "segbench.labels", "segbench.registry", "segbench.io", "segbench.paths", "segbench.tracking",
     "segbench.dag"],
    ["segbench.data"],
    ["segbench.models", "segbench.losses", "segbench.metrics"],
    ["segbench.inference"],
    ["segbench.training"],
    ["segbench.evaluation"],
    ["segbench.report"],
    ["segbench.config", "segbench.cli", "segbench.serve"],
]
# the registry tables are read when params are checked; they import nothing heavy
ALLOWED_UPWARD = {("segbench.config", "segbench.models"), ("segbench.config", "segbench.losses")}


def layer(module: str) -> int:
    matches = [(len(prefix), i) for i, names in enumerate(LAYERS) for prefix in names
               if module == prefix or module.startswith(prefix + ".")]
    return max(matches)[1]


def expand(deps: list[str]) -> set[str]:
    """dvc.yaml's code deps as files: a listed folder stands for every .py file under it."""
    files = set()
    for dep in deps:
        path = REPO / dep
        if dep.startswith("src/"):
            files |= {str(p.relative_to(REPO)) for p in path.rglob("*.py")} if path.is_dir() else {dep}
    return files


@pytest.mark.parametrize("stage", dag.STAGES)
def test_dvc_yaml_lists_each_stages_real_imports(stage):
    expected = set(dag.code_dependencies(stage))
    assert expand(DVC[stage]["deps"]) == expected, (
        f"dvc.yaml stage {stage!r}: its src deps should be (python -m segbench.dag): {dag.compact(sorted(expected))}")


def test_code_dependencies_follow_imports_function_level_and_registry_ones_included():
    train = dag.code_dependencies("train")
    for module in ("metrics/overlap.py", "data/dataset.py", "cli.py", "config.py", "io.py", "tracking.py",
                   "models/unet3plus.py", "losses/boundary.py", "inference/predictor.py"):
        assert f"src/segbench/{module}" in train, module
    assert "src/segbench/report/build.py" not in train and "src/segbench/evaluation/evaluate.py" not in train
    report = dag.code_dependencies("report")
    assert "src/segbench/models/unet.py" not in report and "src/segbench/report/figures.py" in report
    with pytest.raises(ValueError, match="unknown stage"):
        dag.code_dependencies("deploy")


def modules() -> list[str]:
    return sorted(".".join(p.relative_to(REPO / "src").with_suffix("").parts).removesuffix(".__init__")
                  for p in (REPO / "src" / "segbench").rglob("*.py"))


def package(module: str) -> str:
    return ".".join(module.split(".")[:2])


def test_layers_import_one_way():
    wrong = [f"{module} -> {imported}" for module in modules() for imported in dag.imports(module)
             if layer(imported) > layer(module) and (package(module), package(imported)) not in ALLOWED_UPWARD]
    assert wrong == []


def test_no_import_cycles_between_packages():
    packages = {}
    for module in modules():
        packages.setdefault(package(module), set()).update(package(m) for m in dag.imports(module))
    for a, imported in packages.items():
        for b in imported - {a, "segbench"}:
            assert a not in packages.get(b, set()) or {a, b} <= {"segbench.config", "segbench.models",
                                                                  "segbench.losses"}, f"{a} <-> {b}"


def test_snakemake_fails_at_parse_time_naming_the_key(tmp_path):
    """A bad option stops the workflow before any job, with segbench's message."""
    import copy
    import subprocess
    import sys

    from conftest import TINY, make_project

    params = copy.deepcopy(TINY)
    params["architectures"]["attention_unet"]["base_chanels"] = 8
    make_project(tmp_path, params)
    done = subprocess.run([str(Path(sys.executable).parent / "snakemake"), "--cores", "1", "--dry-run"],
                          cwd=tmp_path, capture_output=True, text=True)
    assert done.returncode != 0
    assert "architectures.attention_unet.base_chanels: attention_unet takes no option 'base_chanels'" in \
        done.stdout + done.stderr
    assert not (tmp_path / "data").exists() and not (tmp_path / "mlflow.db").exists()
