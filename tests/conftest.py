"""The fixtures the tiers share: a project folder, the tiny dataset prepared once, the tiny sweep run once.
Helpers are in the importable package ``support``."""

from __future__ import annotations

import copy
import os
import shutil
from pathlib import Path

import pytest
import yaml

from support import DATASET, TINY, make_project, new_project, run
from support.once import built_once


def pytest_configure(config):
    """Under xdist a worker per core already fills the cores: torch's default of a thread per core in each
    worker (and in its pipeline jobs) would oversubscribe them, and OpenMP's spinning threads then slow a
    model's forward pass tenfold (measured: 3 s alone, 36 s beside a worker running a sweep)."""
    if os.environ.get("PYTEST_XDIST_WORKER"):
        os.environ["OMP_NUM_THREADS"] = "1"  # the jobs the tests start, and torch if not yet imported
        import torch

        torch.set_num_threads(1)


@pytest.fixture
def project(tmp_path, monkeypatch) -> Path:
    """A tiny project folder, as the working directory, tracking to its own mlflow.db."""
    make_project(tmp_path, copy.deepcopy(TINY))
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    return tmp_path


def _in_process(root: Path, *commands: list[str]) -> None:
    """Run segbench ``commands`` in ``root`` through the CLI's entry point, in this process."""
    from segbench.apps.cli import main

    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(root)
        mp.delenv("MLFLOW_TRACKING_URI", raising=False)
        for command in commands:
            assert main(command) == 0, command


@pytest.fixture(scope="session")
def prepared(tmp_path_factory) -> Path:
    """A folder where download -> preprocess -> split already ran on the tiny params (read-only use)."""
    def build(root: Path) -> None:
        make_project(root, copy.deepcopy(TINY))
        _in_process(root, ["download"], ["preprocess"], ["split"])

    return built_once(tmp_path_factory, "prepared", build)


@pytest.fixture(scope="session")
def swept(prepared, tmp_path_factory) -> Path:
    """A project where the tiny sweep (2 architectures x 2 losses, 2 epochs) was trained, evaluated and
    reported through the CLI, tracking to its own mlflow.db (read-only use)."""
    def build(root: Path) -> None:
        shutil.copytree(prepared / "data", root / "data")
        params = copy.deepcopy(TINY)
        params["train"]["epochs"] = 2
        (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
        architectures, losses = params["sweep"]["architectures"], params["sweep"]["losses"]
        _in_process(root, *[[stage, "--arch", a, "--loss", l] for a in architectures for l in losses
                            for stage in ("train", "evaluate")], *[["latency", "--arch", a] for a in architectures],
                    ["report"])

    return built_once(tmp_path_factory, "swept", build)


@pytest.fixture(scope="session")
def snakemade(tmp_path_factory) -> Path:
    """A git + DVC project where the real `snakemake --cores 2` ran the tiny sweep, built once per test run and
    copied for each worker. Shared by a worker's tests: a test that changes it puts it back."""
    built = built_once(tmp_path_factory, "snakemade", lambda root: run(new_project(root), "snakemake", "--cores", "2"))
    return shutil.copytree(built, tmp_path_factory.mktemp("snakemake") / "project", symlinks=True)


@pytest.fixture
def data(prepared) -> tuple[Path, Path]:
    """(processed dir, split csv) of the prepared tiny dataset."""
    from segbench import paths

    return prepared / paths.processed_dir(DATASET), prepared / paths.split_csv(DATASET)

