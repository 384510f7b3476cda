"""The fixtures the tiers share: a project folder, the tiny dataset prepared once, the tiny sweep run once.
Helpers are in the importable package ``support``."""

from __future__ import annotations

import copy
import shutil
from pathlib import Path

import pytest
import yaml

from support import DATASET, TINY, make_project, new_project, run


@pytest.fixture
def project(tmp_path, monkeypatch) -> Path:
    """A tiny project folder, as the working directory, tracking to its own mlflow.db."""
    make_project(tmp_path, copy.deepcopy(TINY))
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    return tmp_path


@pytest.fixture(scope="session")
def prepared(tmp_path_factory) -> Path:
    """A folder where download -> preprocess -> split already ran on the tiny params (read-only use)."""
    from segbench.apps.cli import main

    root = make_project(tmp_path_factory.mktemp("prepared"), copy.deepcopy(TINY))
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(root)
        for stage in ("download", "preprocess", "split"):
            assert main([stage]) == 0
    return root


@pytest.fixture(scope="session")
def swept(prepared, tmp_path_factory) -> Path:
    """A project where the tiny sweep (2 architectures x 2 losses, 2 epochs) was trained, evaluated and
    reported through the CLI, tracking to its own mlflow.db (read-only use)."""
    from segbench.apps.cli import main

    root = tmp_path_factory.mktemp("swept")
    shutil.copytree(prepared / "data", root / "data")
    params = copy.deepcopy(TINY)
    params["train"]["epochs"] = 2
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(root)
        mp.delenv("MLFLOW_TRACKING_URI", raising=False)
        for arch in params["sweep"]["architectures"]:
            for loss in params["sweep"]["losses"]:
                assert main(["train", "--arch", arch, "--loss", loss]) == 0
                assert main(["evaluate", "--arch", arch, "--loss", loss]) == 0
            assert main(["latency", "--arch", arch]) == 0
        assert main(["report"]) == 0
    return root


@pytest.fixture(scope="session")
def snakemade(tmp_path_factory) -> Path:
    """A git + DVC project where the real `snakemake --cores 2` ran the tiny sweep. Shared: a test that
    changes it puts it back."""
    root = new_project(tmp_path_factory.mktemp("snakemake"))
    run(root, "snakemake", "--cores", "2")
    return root


@pytest.fixture
def data(prepared) -> tuple[Path, Path]:
    """(processed dir, split csv) of the prepared tiny dataset."""
    from segbench import paths

    return prepared / paths.processed_dir(DATASET), prepared / paths.split_csv(DATASET)

