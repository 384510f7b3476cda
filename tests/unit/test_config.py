import copy

import pytest
import yaml

from segbench import SegbenchError
from segbench.config import dataset_params, load_params, typed, validate_params
from support import REPO, TINY


def test_defaults_are_filled():
    params = validate_params({})
    assert params["datasets"]["synthetic"]["name"] == "synthetic" and params["sweep"]["datasets"] == ["synthetic"]
    assert params["train"]["lr"] == 1.0e-4
    assert params["split"]["test_fraction"] == 0.10
    assert params["sweep"]["seeds"] == [0] and params["sweep"]["folds"] == [0]
    assert params["evaluate"]["resolution"] == "original"


def test_repository_params_are_valid():
    params = load_params(REPO / "params.yaml")
    assert params["sweep"]["architectures"] == ["smp_unet", "attention_unet"]
    assert params["architectures"]["smp_unet"]["family"] == "smp_unet"


@pytest.mark.parametrize("patch, key", [
    ({"train": {"lr": "fast"}}, "train.lr"),
    ({"train": {"epochs": 0}}, "train.epochs"),
    ({"train": {"epoch": 3}}, "train"),  # unknown key
    ({"preprocess": {"size": 100}}, "preprocess.size"),  # not a multiple of 32
    ({"datasets": {"synthetic": {"name": "imagenet"}}}, "datasets.synthetic.name"),
    ({"datasets": {"synthetic": {"name": "synthetic", "split": {"seed": "x"}}}}, "datasets.synthetic.split.seed"),
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


@pytest.mark.parametrize("patch, message", [
    ({"train": {"learning_rate": 0.1}}, r"train: unknown key 'learning_rate'.*did you mean 'lr'"),
    ({"train": {"epochz": 3}}, r"train: unknown key 'epochz'.*did you mean 'epochs'"),
    ({"datasets": {"synthetic": {"name": "btxdr"}}},
     r"datasets.synthetic.name: 'btxdr' is not one of .*did you mean 'btxrd'"),
    ({"sweep": {"datasets": ["synthetc"]}}, r"sweep.datasets: 'synthetc' is not defined.*did you mean 'synthetic'"),
    ({"architectures": {"attention_unet": {"base_chanels": 8}}},
     r"architectures.attention_unet.base_chanels: attention_unet takes no option 'base_chanels'.*"
     r"did you mean 'base_channels'"),
    ({"architectures": {"unet": {"depth": 0}}}, r"architectures.unet.depth: 0 must be at least 1"),
    ({"architectures": {"transunet": {"hidden": 100, "heads": 8}}}, r"architectures.transunet.hidden: 100 must be"),
    ({"architectures": {"unet_typo": {"family": "unett"}}}, r"architectures.unet_typo: its family 'unett' is not a "
                                                            r"registry entry.*did you mean 'unet'"),
    ({"losses": {"dice_focal": [{"term": "focal", "gama": 2}]}},
     r"losses.dice_focal\[0\].gama: focal takes no option 'gama'.*did you mean 'gamma'"),
    ({"losses": {"dice": [{"term": "tversky", "alpha": 0, "beta": 0}]}}, r"losses.dice\[0\].beta: .*alpha \+ beta"),
    ({"sweep": {"folds": [1]}}, r"sweep.folds: \[1\] not among the split's folds \[0\].*set split.folds"),
    ({"sweep": {"folds": "all"}}, r"sweep.folds: list the folds, e.g. \[0, 1, 2, 3, 4\]"),
    ({"sweep": {"budget": {"strategy": "successive_halving", "min_epochs": 1}}},
     r"sweep.budget.min_epochs 1 is not below train.epochs 1: no pair would be pruned"),
    ({"sweep": {"budget": {"strategy": "hyperband"}}}, r"sweep.budget.strategy: .*successive_halving"),
    ({"sweep": {"tune": {"train.lrr": [0.1]}}}, r"sweep.tune: 'train.lrr' is not a train option.*did you mean 'lr'"),
    ({"sweep": {"tune": {"train.lr": [0.001, -1]}}}, r"sweep.tune: candidate 1 \(\{'train.lr': -1\}\): .*train.lr"),
    ({"sweep": {"tune": {"train.epochs": [3, 9]}, "budget": {"strategy": "successive_halving"}},
      "train": {"epochs": 3}}, r"sweep.tune: 'train.epochs' with sweep.budget: the rungs are set by train.epochs"),
])
def test_mistakes_are_named_with_a_hint_before_anything_heavy_is_imported(patch, message):
    import subprocess
    import sys

    params = copy.deepcopy(TINY)
    for section, values in patch.items():
        params[section] = {**params.get(section, {}), **values}
    with pytest.raises(SegbenchError, match=rf"params.yaml: {message}"):
        validate_params(params)
    # validation imports no torch, MONAI or MLflow (their import takes seconds)
    code = ("import sys, yaml; from segbench.config import validate_params\n"
            f"try: validate_params(yaml.safe_load({yaml.safe_dump(params)!r}))\nexcept Exception: pass\n"
            "print(sorted(m for m in ('torch', 'monai', 'mlflow', 'pandas') if m in sys.modules))")
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout.strip() == "[]"


def test_a_registry_entry_in_the_sweep_needs_its_key_and_the_error_says_so():
    params = copy.deepcopy(TINY)
    params["sweep"]["architectures"] = ["unet3plus"]
    del params["architectures"]["unet3plus"]
    with pytest.raises(SegbenchError, match=r"'unet3plus' is a registry entry; add `unet3plus: \{\}` under "
                                            r"'architectures:'"):
        validate_params(params)


def test_the_repository_params_list_every_registry_entry():
    """So any entry of `segbench list architectures` can be named in sweep.architectures."""
    from segbench.models import MODELS

    params = load_params(REPO / "params.yaml")
    assert set(MODELS.names()) <= set(params["architectures"])


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


@pytest.mark.parametrize("name", ["thesis.yaml", "zoo.yaml"])
def test_shipped_params_files_are_valid_and_name_every_key_dvc_tracks(name):
    full = yaml.safe_load((REPO / "workflow" / "params" / name).read_text())
    params = load_params(REPO / "workflow" / "params" / name)
    for key in ("evaluate", "sweep.folds", "sweep.seeds", "sweep.datasets", "datasets", "train"):
        section, *rest = key.split(".")
        assert section in full and (not rest or rest[0] in full[section]), key
    if name == "thesis.yaml":
        assert params["preprocess"]["size"] == 512 and params["train"]["epochs"] == 300


def test_one_dataset_section_is_shorthand_for_a_named_dataset():
    params = copy.deepcopy(TINY)
    del params["datasets"], params["sweep"]["datasets"]
    params["dataset"] = {"name": "folder", "source": "mine"}
    params = validate_params(params)
    assert params["sweep"]["datasets"] == ["folder"] and "dataset" not in params
    assert params["datasets"]["folder"]["source"] == "mine" and params["datasets"]["folder"]["channels"] is None
    both = {**copy.deepcopy(TINY), "dataset": {"name": "folder"}}
    with pytest.raises(SegbenchError, match="dataset and datasets: use one"):
        validate_params(both)


def test_a_dataset_overrides_the_global_sections_for_itself_only():
    params = copy.deepcopy(TINY)
    params["datasets"]["small"] = {"name": "synthetic", "synthetic": {"seed": 7}, "preprocess": {"size": 64}}
    params = validate_params(params)
    small, demo = dataset_params(params, "small"), dataset_params(params, "synthetic")
    assert small["synthetic"] == {**params["synthetic"], "seed": 7} and small["preprocess"]["size"] == 64
    assert demo["synthetic"] == params["synthetic"] and demo["preprocess"] == params["preprocess"]
    assert small["dataset"]["key"] == "small" and "synthetic" not in small["dataset"]
    with pytest.raises(SegbenchError, match="dataset 'smal': not defined.*did you mean 'small'"):
        dataset_params(params, "smal")


def test_a_held_out_dataset_override_gets_its_nested_defaults_and_references_need_a_hold_out():
    params = copy.deepcopy(TINY)
    params["datasets"]["held"] = {"name": "synthetic", "split": {"holdout": {"by": "center", "values": [3]}}}
    params["sweep"].update(datasets=["synthetic", "held"], references=["held"])
    held = dataset_params(validate_params(copy.deepcopy(params)), "held")
    assert held["split"]["holdout"] == {"by": "center", "values": [3], "reference": 0.5}  # the override's default
    assert held["split"]["test_fraction"] == TINY["split"]["test_fraction"]  # the section's, not the schema's
    for references, message in ((["synthetic"], "'synthetic' has no split.holdout"),
                                (["hold"], "'hold' is not in sweep.datasets.*did you mean 'held'")):
        params["sweep"]["references"] = references
        with pytest.raises(SegbenchError, match=f"sweep.references: {message}"):
            validate_params(copy.deepcopy(params))


def test_snakemakes_string_config_values_get_their_yaml_types():
    assert typed({"train": {"epochs": "2", "lr": "1.0e-3", "amp": "false", "scheduler": "none"},
                  "sweep": {"seeds": ["0", "1"], "name": "demo"}}) == {
        "train": {"epochs": 2, "lr": 1.0e-3, "amp": False, "scheduler": "none"},
        "sweep": {"seeds": [0, 1], "name": "demo"}}


def test_the_schemas_choices_are_the_registries_entries():
    """dataset.name, train.optimizer, train.scheduler and evaluate.postprocessing list exactly what is registered
    (the schema keeps its own copy: reading params must not import the readers)."""
    from segbench.config import load_schema
    from segbench.data.readers import READERS
    from segbench.predict.postprocess import POSTPROCESSING
    from segbench.training.optim import OPTIMIZERS, SCHEDULERS

    schema = load_schema()
    dataset = schema["definitions"]["dataset"]["properties"]
    train, evaluate = (schema["properties"][k]["properties"] for k in ("train", "evaluate"))
    assert dataset["name"]["enum"] == list(READERS)
    assert train["optimizer"]["enum"] == list(OPTIMIZERS)
    assert train["scheduler"]["enum"] == list(SCHEDULERS)
    assert evaluate["postprocessing"]["items"]["enum"] == [c for c in POSTPROCESSING if c != "none"]


def test_a_reader_without_the_protocols_functions_is_refused_as_it_is_registered():
    from segbench.data.readers import Reader
    from segbench.registry import Registry

    readers = Registry("dataset", protocol=Reader)
    lacks = r"dataset 'json': json lacks \['SKIP_UNREADABLE', 'describe', 'load_mask'\]"
    with pytest.raises(SegbenchError, match=lacks):
        readers.add("json", "json", "Python", "has neither")


def test_a_baseline_is_an_entry_of_the_baseline_registry():
    params = copy.deepcopy(TINY)
    params["sweep"]["baselines"] = ["nnuent"]
    with pytest.raises(SegbenchError, match=r"sweep.baselines: 'nnuent' is not a baseline; baselines: \['nnunet', "
                                            r"'nnunet_resenc_m'\]; did you mean 'nnunet'"):
        validate_params(params)


def test_a_baseline_whose_package_is_missing_is_refused_with_the_params(monkeypatch):
    import importlib.util

    params = copy.deepcopy(TINY)
    params["sweep"]["baselines"] = ["nnunet_resenc_m"]
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "nnunetv2" else real(name, *a))
    with pytest.raises(SegbenchError, match=r"sweep.baselines: nnunet_resenc_m needs nnunetv2, which this Python "
                                            r"cannot import: reinstall segbench's dependencies \(`pip install -e \.`"):
        validate_params(params)


def test_configfile_and_config_update_the_params_as_snakemake_updates_its_config(tmp_path):
    from snakemake.utils import update_config

    (tmp_path / "params.yaml").write_text(yaml.safe_dump(TINY))
    mine = {"sweep": {"name": "mine"}, "train": {"epochs": 3}, "datasets": {"other": {"name": "btxrd"}}}
    (tmp_path / "mine.yaml").write_text(yaml.safe_dump(mine))
    params = load_params(tmp_path / "params.yaml", [tmp_path / "mine.yaml"], ["train={lr: 0.5, epochs: 4}"])
    expected = copy.deepcopy(TINY)
    update_config(expected, mine)
    update_config(expected, {"train": {"lr": 0.5, "epochs": 4}})
    assert params == validate_params(expected)
    assert params["train"]["epochs"] == 4 and params["sweep"]["name"] == "mine" and "other" in params["datasets"]
    with pytest.raises(SegbenchError, match="--config 'train': expected key=value"):
        load_params(tmp_path / "params.yaml", settings=["train"])


def test_a_registered_baselines_options_are_its_entrys_checked_and_filled(monkeypatch):
    from segbench.baselines.catalog import BASELINES
    from segbench.registry import Entry

    monkeypatch.setitem(BASELINES._entries, "mean_mask", Entry("mean_mask", "tests", "tests", options={"smooth": 0.5}))
    params = copy.deepcopy(TINY)
    params["sweep"]["baselines"] = ["mean_mask"]
    with pytest.raises(SegbenchError, match=r"'mean_mask': add `mean_mask: \{\}` under 'baselines:'"):
        validate_params(copy.deepcopy(params))
    params["baselines"]["mean_mask"] = {"smoth": 1.0}
    with pytest.raises(SegbenchError, match=r"baselines.mean_mask.smoth: mean_mask takes no option 'smoth'.*smooth"):
        validate_params(copy.deepcopy(params))
    params["baselines"]["mean_mask"] = {}
    assert validate_params(params)["baselines"]["mean_mask"] == {"smooth": 0.5}
