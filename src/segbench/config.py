"""Load params.yaml, fill defaults and validate it: the schema, then every name and option.

Nothing here imports torch: a bad key, name or option fails in a fraction of a second, before
anything is downloaded or trained (Snakemake's common.smk calls the same function).
"""

from __future__ import annotations

import copy
import difflib
import importlib.util
from importlib.resources import files
from pathlib import Path

import jsonschema
import yaml

from segbench import SegbenchError, did_you_mean

SCHEMA = "params.schema.yaml"  # shipped inside the package: every key, its type, default and description


def _with_defaults(validator_class):
    """Extend a jsonschema validator to fill in ``default`` values (jsonschema FAQ recipe)."""
    validate_properties = validator_class.VALIDATORS["properties"]

    def set_defaults(validator, properties, instance, schema):
        if isinstance(instance, dict):
            for key, sub in properties.items():
                if "default" in sub and key not in instance:
                    instance[key] = sub["default"]
        yield from validate_properties(validator, properties, instance, schema)

    return jsonschema.validators.extend(validator_class, {"properties": set_defaults})


OVERRIDABLE = ("synthetic", "preprocess", "split")  # sections a `datasets:` entry may override for itself


def _overriding(section: dict) -> dict:
    """A section's schema as a ``datasets:`` entry overrides it: its keys without their defaults (an unset key is
    the section's), their nested keys with theirs (an override's value replaces the section's whole)."""
    out = {k: v for k, v in copy.deepcopy(section).items() if k != "default"}
    for key in out.get("properties", {}).values():
        key.pop("default", None)
    return out


def load_schema() -> dict:
    """The params schema; a ``datasets:`` entry takes the dataset section's keys plus partial overrides."""
    schema = yaml.safe_load(files("segbench").joinpath(SCHEMA).read_text())
    entry = copy.deepcopy(schema["definitions"]["dataset"])
    entry["properties"].update({k: _overriding(schema["properties"][k]) for k in OVERRIDABLE})
    schema["definitions"]["dataset_entry"] = entry
    return schema


def _key_hint(key: str, properties: dict) -> str:
    """"did you mean" by spelling, or by a key whose description says what ``key`` says (learning_rate -> lr)."""
    close = did_you_mean(key, properties)
    if close:
        return close
    words = key.lower().replace("_", " ")
    described = [k for k, p in properties.items() if words in str(p.get("description", "")).lower()]
    return f"; did you mean {described[0]!r}?" if described else ""


def _schema_error(error: jsonschema.ValidationError, source: str) -> SegbenchError:
    key = ".".join(str(p) for p in error.absolute_path) or "<top level>"
    if error.validator == "additionalProperties" and isinstance(error.instance, dict):
        properties = error.schema.get("properties", {})
        unknown = [k for k in error.instance if k not in properties]
        if unknown:
            return SegbenchError(f"{source}: {key}: unknown key {unknown[0]!r}; known: {sorted(properties)}"
                                 f"{_key_hint(unknown[0], properties)}")
    if error.validator == "enum":
        return SegbenchError(f"{source}: {key}: {error.instance!r} is not one of {error.validator_value}"
                             f"{did_you_mean(error.instance, error.validator_value)}")
    return SegbenchError(f"{source}: {key}: {error.message}")


def _check_names(params: dict, source: str) -> None:
    """Every baseline is a registry entry; every architecture and loss the sweep names is defined, and every
    definition's options are valid."""
    from segbench.baselines.catalog import BASELINES
    from segbench.losses import check_spec
    from segbench.models import MODELS

    built_in = load_schema()["properties"]["baselines"]["properties"]  # the rest take their entry's options
    for name in params["sweep"]["baselines"]:
        if name not in BASELINES:
            raise SegbenchError(f"{source}: sweep.baselines: {name!r} is not a baseline; baselines: "
                                f"{list(BASELINES)}{did_you_mean(name, list(BASELINES))}")
        entry = BASELINES.entry(name)
        if name not in built_in:
            if name not in params["baselines"]:
                raise SegbenchError(f"{source}: sweep.baselines: {name!r}: add `{name}: {{}}` under 'baselines:' "
                                    "(dvc.yaml tracks each baseline's options by that key; {} takes the entry's "
                                    "defaults)")
            entry.check(params["baselines"][name], f"{source}: baselines.{name}")
            params["baselines"][name] = {**entry.options, **params["baselines"][name]}
        missing = [m for m in entry.requires if importlib.util.find_spec(m) is None]
        if missing:
            raise SegbenchError(f"{source}: sweep.baselines: {name} needs {', '.join(missing)}, which this Python "
                                f"cannot import: reinstall segbench's dependencies (`pip install -e .`, as `make "
                                f"install` does), or remove {name} from sweep.baselines")

    for kind in ("architectures", "losses"):
        for name in params["sweep"][kind]:
            if name in params[kind]:
                continue
            if kind == "architectures" and name in MODELS:
                raise SegbenchError(f"{source}: sweep.architectures: {name!r} is a registry entry; add "
                                    f"`{name}: {{}}` under 'architectures:' (dvc.yaml tracks each architecture's "
                                    f"options by that key; {{}} takes the entry's defaults)")
            close = difflib.get_close_matches(name, [*params[kind], *(MODELS.names() if kind == "architectures"
                                                                      else [])], n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise SegbenchError(f"{source}: sweep.{kind}: {name!r} is not defined under '{kind}:' "
                                f"(defined: {sorted(params[kind])}){hint}")
    for name, options in params["architectures"].items():
        options = dict(options)
        family = options.pop("family", name)
        try:
            entry = MODELS.entry(family)
        except SegbenchError as exc:
            what = "family" if family != name else "name"
            raise SegbenchError(f"{source}: architectures.{name}: its {what} {family!r} is not a registry entry "
                                f"({exc}); a variant names its entry with `family:`") from None
        entry.check(options, f"{source}: architectures.{name}")
    for name, spec in params["losses"].items():
        check_spec(spec, f"{source}: losses.{name}")


def _check_replicates(params: dict, source: str) -> None:
    folds, k = params["sweep"]["folds"], params["split"]["folds"]
    if isinstance(k, dict):  # leave-one-group-out: the groups are known once the data is; the split checks
        return
    allowed = list(range(k)) if k else [0]
    wrong = [f for f in folds if f not in allowed]
    if wrong:
        raise SegbenchError(f"{source}: sweep.folds: {wrong} not among the split's folds {allowed}"
                            + ("" if k else " (set split.folds for cross-validation)"))


def _check_external(params: dict, source: str) -> None:
    """``evaluate.external`` names defined datasets, each preprocessed like every dataset of the sweep and with
    the same pixel spacing (the models take its canvases; boundary metrics keep one unit)."""
    for name in params["evaluate"]["external"]:
        if name not in params["datasets"]:
            raise SegbenchError(f"{source}: evaluate.external: {name!r} is not defined under 'datasets:' (defined: "
                                f"{sorted(params['datasets'])}){did_you_mean(name, params['datasets'])}")
        other = dataset_params(params, name)
        for key in params["sweep"]["datasets"]:
            own = dataset_params(params, key)
            for what, a, b in (("preprocess.size", own["preprocess"]["size"], other["preprocess"]["size"]),
                               ("spacing_mm", own["dataset"]["spacing_mm"], other["dataset"]["spacing_mm"])):
                if a != b:
                    raise SegbenchError(f"{source}: evaluate.external: {name!r} has {what} {b}, dataset {key!r} "
                                        f"{a}: models trained on {key!r} are scored on {name!r} as they are")


def _check_references(params: dict, source: str) -> None:
    """``sweep.references`` names datasets of the sweep that hold out groups (``split.holdout``)."""
    for name in params["sweep"]["references"]:
        if name not in params["sweep"]["datasets"]:
            raise SegbenchError(f"{source}: sweep.references: {name!r} is not in sweep.datasets "
                                f"{params['sweep']['datasets']}{did_you_mean(name, params['sweep']['datasets'])}")
        if not dataset_params(params, name)["split"]["holdout"]:
            raise SegbenchError(f"{source}: sweep.references: {name!r} has no split.holdout; the references train "
                                "in its held-out groups: set split.holdout: {by: <column>, values: [...]} for it")


def _check_budget(params: dict, source: str) -> None:
    """``sweep.budget`` leaves at least one rung before the full schedule; only a race has an alpha."""
    budget = params["sweep"]["budget"]
    if budget and "alpha" in budget and budget["strategy"] != "race":
        raise SegbenchError(f"{source}: sweep.budget.alpha: only strategy race tests its entrants; "
                            f"{budget['strategy']} keeps the best 1/eta: remove alpha, or set strategy: race")
    if budget and budget["min_epochs"] >= params["train"]["epochs"]:
        raise SegbenchError(f"{source}: sweep.budget.min_epochs {budget['min_epochs']} is not below train.epochs "
                            f"{params['train']['epochs']}: no pair would be pruned; lower it, or set "
                            "sweep.budget: null")


def _check_tune(params: dict, source: str) -> None:
    """``sweep.tune`` names train options, each candidate a valid recipe."""
    from segbench.tuning import candidates, with_candidate

    grid = params["sweep"]["tune"]
    if not grid:
        return
    if params["sweep"]["budget"] and "train.epochs" in grid:
        raise SegbenchError(f"{source}: sweep.tune: 'train.epochs' with sweep.budget: the rungs are set by "
                            "train.epochs, so every candidate must share it; tune another option or set "
                            "sweep.budget: null")
    options = load_schema()["properties"]["train"]["properties"]
    for key in grid:
        name = key.removeprefix("train.")
        if name not in options:
            raise SegbenchError(f"{source}: sweep.tune: {key!r} is not a train option{did_you_mean(name, options)}")
    for index, settings in enumerate(candidates(params)):
        trial = with_candidate(params, index)
        trial["sweep"]["tune"] = {}
        try:
            validate_params(trial, source)
        except SegbenchError as exc:
            raise SegbenchError(f"{source}: sweep.tune: candidate {index} ({settings}): {exc}") from None


def _named_datasets(params: dict, source: str) -> None:
    """The one ``dataset:`` section becomes ``datasets: {<its name>: ...}`` run by ``sweep.datasets``; every
    name ``sweep.datasets`` lists must be defined."""
    if "dataset" in params:
        if "datasets" in params:
            raise SegbenchError(f"{source}: dataset and datasets: use one (dataset: is the shorthand for one "
                                "entry of datasets:)")
        single = params.pop("dataset")
        params["datasets"] = {single["name"]: single}
        params["sweep"].setdefault("datasets", [single["name"]])
    params["sweep"].setdefault("datasets", sorted(params["datasets"])[:1])
    for name in params["sweep"]["datasets"]:
        if name not in params["datasets"]:
            raise SegbenchError(f"{source}: sweep.datasets: {name!r} is not defined under 'datasets:' (defined: "
                                f"{sorted(params['datasets'])}){did_you_mean(name, params['datasets'])}")


def dataset_params(params: dict, key: str) -> dict:
    """``params`` as one dataset's stages see them: ``dataset`` is the entry ``datasets.<key>`` (with its
    ``key``), and its synthetic / preprocess / split overrides are merged over the global sections.

    Raises:
        SegbenchError: ``key`` is not a dataset of the sweep.
    """
    if key not in params["datasets"]:
        raise SegbenchError(f"dataset {key!r}: not defined under 'datasets:' (defined: {sorted(params['datasets'])})"
                            f"{did_you_mean(key, params['datasets'])}")
    entry = dict(params["datasets"][key])
    view = {k: v for k, v in params.items() if k != "datasets"}
    for section in OVERRIDABLE:
        view[section] = {**params[section], **entry.pop(section, {})}
    view["dataset"] = {**entry, "key": key}
    return view


def validate_params(params: dict, source: str = "params.yaml") -> dict:
    """Fill defaults in ``params`` (in place) and check it; return it in the named form (``datasets:``,
    ``sweep.datasets``), whichever form it was written in.

    Raises:
        SegbenchError: naming the offending key, e.g. ``params.yaml: train.lr: ...``, with a "did you mean".
    """
    if params.get("sweep", {}).get("folds") == "all":
        raise SegbenchError(f"{source}: sweep.folds: list the folds, e.g. [0, 1, 2, 3, 4] for split.folds: 5 "
                            "(dvc.yaml's matrix iterates over the list itself)")
    if "dataset" not in params:
        params.setdefault("datasets", {"synthetic": {}})  # the demo's, filled in by the schema's defaults
    validator = _with_defaults(jsonschema.Draft202012Validator)(load_schema())
    error = jsonschema.exceptions.best_match(validator.iter_errors(params))
    if error is not None:
        raise _schema_error(error, source)
    _named_datasets(params, source)
    _check_names(params, source)
    _check_replicates(params, source)
    _check_external(params, source)
    _check_references(params, source)
    _check_budget(params, source)
    _check_tune(params, source)
    for name, options in params["architectures"].items():
        options.setdefault("family", name)  # an entry's options, or a variant of the entry 'family' names
    return params


def typed(value):
    """Snakemake's ``--config key=value`` parses a structured value with YAML's BaseLoader, which leaves
    every nested scalar a string; read each such string as YAML would (``'2'`` -> 2, ``'true'`` -> True)."""
    if isinstance(value, dict):
        return {k: typed(v) for k, v in value.items()}
    if isinstance(value, list):
        return [typed(v) for v in value]
    if isinstance(value, str):
        try:
            parsed = yaml.safe_load(value)
        except yaml.YAMLError:
            return value
        return parsed if parsed is None or isinstance(parsed, (bool, int, float)) else value
    return value


def _read(path: Path) -> dict:
    if not path.exists():
        raise SegbenchError(f"{path}: params file not found")
    try:
        params = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise SegbenchError(f"{path}: not valid YAML: {exc}") from None
    if not isinstance(params, dict):
        raise SegbenchError(f"{path}: expected a mapping at the top level")
    return params


def overlay(base: dict, extra: dict) -> dict:
    """``base`` updated by ``extra``, mappings merged key by key, anything else replaced: Snakemake's
    ``update_config``, as ``--configfile`` and ``--config`` update its config."""
    merged = dict(base)
    for key, value in extra.items():
        merged[key] = overlay(merged[key], value) if isinstance(value, dict) and isinstance(merged.get(key), dict) \
            else value
    return merged


def config_setting(item: str) -> dict:
    """One ``--config key=value`` as Snakemake reads it (the value YAML, nested values typed).

    Raises:
        SegbenchError: no ``=``.
    """
    key, equals, value = item.partition("=")
    if not equals or not key:
        raise SegbenchError(f"--config {item!r}: expected key=value, e.g. train={{epochs: 2}}")
    return {key: typed(yaml.load(value, Loader=yaml.BaseLoader))}


def load_params(path: str | Path = "params.yaml", configfiles: list[str | Path] = (),
                settings: list[str] = ()) -> dict:
    """Read a params file, update it with ``configfiles`` and ``settings`` (``key=value``) in that order, exactly as
    Snakemake's ``--configfile`` and ``--config`` update the Snakefile's config, then default-fill and validate."""
    params = _read(Path(path))
    for extra in configfiles:
        params = overlay(params, _read(Path(extra)))
    for item in settings:
        params = overlay(params, config_setting(item))
    sources = [str(path), *map(str, configfiles), *(f"--config {s}" for s in settings)]
    return validate_params(params, source=" + ".join(sources))
