import copy

import pytest
import yaml

from conftest import TINY
from segbench import SegbenchError
from segbench.config import load_params, validate_params


def test_defaults_are_filled():
    params = validate_params({})
    assert params["dataset"]["name"] == "synthetic"
    assert params["train"]["lr"] == 1.0e-4
    assert params["split"]["test_fraction"] == 0.10


def test_repository_params_are_valid():
    params = load_params(__import__("conftest").REPO / "params.yaml")
    assert params["sweep"]["architectures"] == ["smp_unet", "attention_unet"]
    assert params["architectures"]["smp_unet"]["family"] == "smp_unet"


@pytest.mark.parametrize("patch, key", [
    ({"train": {"lr": "fast"}}, "train.lr"),
    ({"train": {"epochs": 0}}, "train.epochs"),
    ({"train": {"epoch": 3}}, "train"),  # unknown key
    ({"preprocess": {"size": 100}}, "preprocess.size"),  # not a multiple of 32
    ({"dataset": {"name": "imagenet"}}, "dataset.name"),
])
def test_bad_values_name_the_key(patch, key):
    params = copy.deepcopy(TINY)
    for section, values in patch.items():
        params[section] = {**params.get(section, {}), **values}
    with pytest.raises(SegbenchError, match=rf"params.yaml: {key}:"):
        validate_params(params)


def test_sweep_name_missing_from_definitions_suggests_the_closest():
    params = copy.deepcopy(TINY)
    params["sweep"]["losses"] = ["dice_focall"]
    with pytest.raises(SegbenchError, match=r"sweep.losses: 'dice_focall'.*did you mean 'dice_focal'"):
        validate_params(params)


def test_load_params_reports_file_problems(tmp_path):
    with pytest.raises(SegbenchError, match="not found"):
        load_params(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("train: [unclosed")
    with pytest.raises(SegbenchError, match=f"{bad}: not valid YAML"):
        load_params(bad)
    bad.write_text(yaml.safe_dump({"sweep": {"architectures": ["a__b"]}}))
    with pytest.raises(SegbenchError, match="sweep.architectures.0"):
        load_params(bad)


def test_thesis_params_are_valid():
    params = load_params(__import__("conftest").REPO / "workflow" / "params" / "thesis.yaml")
    assert params["preprocess"]["size"] == 512 and params["train"]["epochs"] == 300
