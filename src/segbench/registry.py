"""One generic name -> builder registry, for architectures and loss terms alike.

An entry names its builder as ``"package.module:callable"`` and is imported only when it is
built. The options it takes, their defaults and its one-line summary are read from the
builder's source with ``ast``, without importing it. Why: importing torch takes seconds
and MONAI ten, so listing the entries and checking a params file's options must not
import them; reading the signature itself keeps it the single source of the defaults.
"""

from __future__ import annotations

import ast
import importlib
import importlib.util
import json
import operator
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from segbench import SegbenchError, did_you_mean, look_up

REQUIRED = object()  # an option without a default


class Source(str):
    """A default that is not a literal, kept as its source text (e.g. ``4 / 3``)."""


@dataclass(frozen=True)
class Check:
    """A rule on an entry's options: ``test(options)`` must hold, else ``option`` gets ``message``."""

    option: str
    test: Callable[[dict], bool]
    message: str


def at_least(option: str, low: float) -> Check:
    return Check(option, lambda o: o[option] >= low, f"must be at least {low}")


def within(option: str, low: float, high: float) -> Check:
    return Check(option, lambda o: low <= o[option] <= high, f"must be in [{low}, {high}]")


def one_of(option: str, *allowed) -> Check:
    return Check(option, lambda o: o[option] in allowed, f"must be one of {list(allowed)}")


@dataclass(frozen=True)
class Entry:
    """A registered builder: ``target`` is ``"module:callable"``; ``bind`` fixes some of its arguments,
    ``defaults`` overrides some defaults, and ``extends`` names a callable whose keyword options the
    builder passes on (smp's model classes)."""

    name: str
    target: str
    source: str  # the paper or library it comes from
    family: str = ""
    checks: tuple[Check, ...] = ()
    bind: dict = field(default_factory=dict)
    defaults: dict = field(default_factory=dict)
    extends: str | None = None
    reserved: tuple[str, ...] = ()

    def options(self) -> dict[str, Any]:
        """Option -> default (``REQUIRED`` if none), in signature order."""
        own, _ = static_signature(self.target)
        passed = static_signature(self.extends)[0] if self.extends else {}
        skip = {*self.reserved, *self.bind, "self"}
        merged = {k: v for k, v in {**own, **{k: v for k, v in passed.items() if k not in own}}.items()
                  if k not in skip}
        return {**merged, **{k: v for k, v in self.defaults.items() if k in merged}}

    def summary(self) -> str:
        """The first paragraph of the builder's docstring, on one line."""
        return " ".join(static_docstring(self.target).split("\n\n")[0].split())

    def check(self, options: dict, where: str) -> None:
        """Raise a SegbenchError naming ``where.<option>``, its value and what is allowed."""
        known = self.options()
        for key, value in options.items():
            if key not in known:
                raise SegbenchError(f"{where}.{key}: {self.name} takes no option {key!r}; it takes "
                                    f"{sorted(known)}{did_you_mean(key, known)}")
            default = known[key]
            if isinstance(default, bool) and not isinstance(value, bool) or \
                    type(default) in (int, float) and (isinstance(value, bool) or not isinstance(value, (int, float))):
                raise SegbenchError(f"{where}.{key}: {value!r} is not a {type(default).__name__} "
                                    f"(the default is {default!r})")
        missing = [k for k, v in known.items() if v is REQUIRED and k not in options]
        if missing:
            raise SegbenchError(f"{where}: {self.name} needs the options {missing}")
        merged = {**known, **options}
        for rule in self.checks:
            try:
                ok = rule.test(merged)
            except TypeError:
                ok = False
            if not ok:
                raise SegbenchError(f"{where}.{rule.option}: {merged[rule.option]!r} {rule.message}")

    def fingerprint(self) -> str:
        """The entry's definition as text (its checks by option and message): what a job built from it
        depends on besides its module's code."""
        checks = [(c.option, c.message) for c in self.checks]
        return json.dumps([self.name, self.target, self.bind, self.defaults, self.extends, checks], sort_keys=True,
                          default=str)

    def load(self) -> Callable:
        module, _, attribute = self.target.partition(":")
        return getattr(importlib.import_module(module), attribute)

    def build(self, *args, **options):
        """Import the builder and call it with ``args``, the bound arguments and ``options``."""
        return self.load()(*args, **self.bind, **{**self.defaults, **options})


class Registry:
    """Entries of one kind (``what``: "architecture", "loss term"), looked up by name."""

    def __init__(self, what: str, reserved: tuple[str, ...] = ()):
        self.what, self.reserved = what, reserved
        self._entries: dict[str, Entry] = {}

    def add(self, name: str, target: str, source: str, **kw) -> None:
        if name in self._entries:
            warnings.warn(f"{self.what} {name!r} registered twice; the later one wins", stacklevel=2)
        self._entries[name] = Entry(name, target, source, reserved=self.reserved, **kw)

    def __contains__(self, name: str) -> bool:
        return name in self._entries

    def names(self, family: str | None = None) -> list[str]:
        return sorted(n for n, e in self._entries.items() if family is None or e.family == family)

    def entry(self, name: str) -> Entry:
        """Raises: SegbenchError naming the known entries, with a "did you mean"."""
        return look_up(name, self._entries, self.what)


def _module_file(module: str) -> Path:
    """The source file of ``module``, found without importing it or its parent packages."""
    top, *rest = module.split(".")
    spec = importlib.util.find_spec(top)  # a top-level find_spec imports nothing
    if spec is None or spec.origin is None:
        raise SegbenchError(f"module {top!r} is not installed")
    path = Path(spec.origin).parent.joinpath(*rest)
    return path.with_suffix(".py") if path.with_suffix(".py").is_file() else path / "__init__.py"


@cache
def _definition(target: str) -> ast.FunctionDef | ast.ClassDef:
    module, _, qualname = target.partition(":")
    scope: list[ast.stmt] = ast.parse(_module_file(module).read_text()).body
    node = None
    for part in qualname.split("."):
        node = next((n for n in scope if isinstance(n, (ast.FunctionDef, ast.ClassDef)) and n.name == part), None)
        if node is None:
            raise SegbenchError(f"{target}: no such function or class in {_module_file(module)}")
        scope = node.body
    return node


_ARITHMETIC = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv}


def _default(node: ast.expr):
    """A default's value: a literal, arithmetic on literals (``4 / 3``), else its source text."""
    try:
        return ast.literal_eval(node)
    except ValueError:
        if isinstance(node, ast.BinOp) and type(node.op) in _ARITHMETIC:
            left, right = _default(node.left), _default(node.right)
            if all(isinstance(v, (int, float)) for v in (left, right)):
                return _ARITHMETIC[type(node.op)](left, right)
        return Source(ast.unparse(node))


@cache
def static_signature(target: str) -> tuple[dict[str, Any], bool]:
    """(parameter -> default or REQUIRED, takes ``**kwargs``) of ``"module:callable"``; a class's
    ``__init__``. Read from source, so nothing is imported."""
    node = _definition(target)
    if isinstance(node, ast.ClassDef):
        node = next((n for n in node.body if isinstance(n, ast.FunctionDef) and n.name == "__init__"), None)
        if node is None:
            return {}, True
    a = node.args
    positional = a.posonlyargs + a.args
    defaults = [REQUIRED] * (len(positional) - len(a.defaults)) + [_default(d) for d in a.defaults]
    params = dict(zip((p.arg for p in positional), defaults))
    params.update({p.arg: REQUIRED if d is None else _default(d) for p, d in zip(a.kwonlyargs, a.kw_defaults)})
    return params, a.kwarg is not None


@cache
def static_docstring(target: str) -> str:
    return ast.get_docstring(_definition(target)) or ""
