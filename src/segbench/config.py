"""Load params.yaml, fill defaults and validate it against the workflow's schema."""

from __future__ import annotations

import difflib
from pathlib import Path

import jsonschema
import yaml

from segbench import SegbenchError

SCHEMA_PATH = Path(__file__).resolve().parents[2] / "workflow" / "schemas" / "params.schema.yaml"


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


def load_schema() -> dict:
    if not SCHEMA_PATH.exists():
        raise SegbenchError(f"params schema not found at {SCHEMA_PATH}; install segbench "
                            "from its checkout with `pip install -e .`")
    return yaml.safe_load(SCHEMA_PATH.read_text())


def validate_params(params: dict, source: str = "params.yaml") -> dict:
    """Fill defaults in ``params`` (in place) and check it; return it.

    Raises:
        SegbenchError: naming the offending key, e.g. ``params.yaml: train.lr: ...``.
    """
    schema = load_schema()
    validator = _with_defaults(jsonschema.Draft202012Validator)(schema)
    error = jsonschema.exceptions.best_match(validator.iter_errors(params))
    if error is not None:
        key = ".".join(str(p) for p in error.absolute_path) or "<top level>"
        raise SegbenchError(f"{source}: {key}: {error.message}")
    for kind in ("architectures", "losses"):
        for name in params["sweep"][kind]:
            if name not in params[kind]:
                hint = difflib.get_close_matches(name, params[kind], n=1)
                hint = f"; did you mean {hint[0]!r}?" if hint else ""
                empty = f" (`{name}: {{}}` takes a registry entry's defaults)" if kind == "architectures" else ""
                raise SegbenchError(f"{source}: sweep.{kind}: {name!r} is not defined under "
                                    f"'{kind}:'{empty} (defined: {sorted(params[kind])}){hint}")
    for name, options in params["architectures"].items():
        options.setdefault("family", name)  # an entry's options, or a variant of the entry 'family' names
    return params


def load_params(path: str | Path = "params.yaml") -> dict:
    """Read, default-fill and validate a params file."""
    path = Path(path)
    if not path.exists():
        raise SegbenchError(f"{path}: params file not found")
    try:
        params = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise SegbenchError(f"{path}: not valid YAML: {exc}") from None
    if not isinstance(params, dict):
        raise SegbenchError(f"{path}: expected a mapping at the top level")
    return validate_params(params, source=str(path))


def run_name(arch: str, loss: str) -> str:
    """Folder name of one pair under results/runs/."""
    return f"{arch}__{loss}"
