"""Shared fixtures: tiny params, a synthetic archive, preprocessed data and a project folder."""

from __future__ import annotations

import copy
import shutil
from pathlib import Path

import pytest
import yaml

from segbench.config import validate_params

REPO = Path(__file__).resolve().parents[1]

TINY = {
    "dataset": {"name": "synthetic"},
    "synthetic": {"n_images": 48, "normal_fraction": 0.1, "seed": 0},
    "preprocess": {"size": 32},
    "split": {"seed": 42},
    "train": {"epochs": 1, "batch_size": 8, "lr": 1.0e-3, "seed": 0},
    "sweep": {"name": "tiny", "architectures": ["unet", "attention_unet"], "losses": ["dice", "dice_focal"]},
    "architectures": {
        "unet": {"family": "smp", "arch": "Unet", "encoder": "resnet18", "encoder_weights": None},
        "attention_unet": {"family": "attention_unet", "base_channels": 4, "dropout": 0.3},
    },
    "losses": {
        "dice": [{"term": "dice"}],
        "dice_focal": [{"term": "dice", "weight": 0.7}, {"term": "focal", "weight": 0.3, "gamma": 2.0}],
    },
}


@pytest.fixture
def tiny_params() -> dict:
    """Validated params for a pipeline that runs in seconds."""
    return validate_params(copy.deepcopy(TINY))


def make_project(root: Path, params: dict) -> Path:
    """A copy of the workflow (Snakefile, dvc.yaml, workflow/, src/) with its own params.yaml."""
    for name in ("Snakefile", "dvc.yaml", ".dvcignore"):
        shutil.copy(REPO / name, root / name)
    for name in ("workflow", "src"):
        shutil.copytree(REPO / name, root / name, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    return root


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
    from segbench.cli import main

    root = make_project(tmp_path_factory.mktemp("prepared"), copy.deepcopy(TINY))
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(root)
        for stage in ("download", "preprocess", "split"):
            assert main([stage]) == 0
    return root
