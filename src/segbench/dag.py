"""Each stage's code dependencies, derived from its real imports.

A stage runs ``segbench <stage>``: cli.py with its module-level imports, then the imports of
its ``cmd_<stage>`` function (and of the cli helpers that calls), then everything those import,
transitively, function-level imports included. Registry
entries are imported by name when built, which no import statement shows: a module importing
``create_model``/``build_model`` depends on every module of ``segbench.models``, and one importing
``create_loss`` on every module of ``segbench.losses``. Read with ``ast``, nothing is imported.

The Snakefile's rules take their code inputs from ``code_dependencies``; a test checks that
dvc.yaml's stages list the same files.
"""

from __future__ import annotations

import ast
from functools import cache
from pathlib import Path

SRC = Path(__file__).resolve().parent.parent  # the folder holding the segbench package
STAGES = ("download", "preprocess", "split", "train", "evaluate", "report")
REGISTRIES = {("segbench.models", "create_model"): "segbench.models", ("segbench.models", "build_model"): "segbench.models",
              ("segbench.losses", "create_loss"): "segbench.losses"}


def module_file(module: str) -> Path:
    path = SRC.joinpath(*module.split("."))
    return path / "__init__.py" if path.is_dir() else path.with_suffix(".py")


def _package_modules(package: str) -> set[str]:
    folder = SRC.joinpath(*package.split("."))
    return {".".join(p.relative_to(SRC).with_suffix("").parts).removesuffix(".__init__") for p in folder.rglob("*.py")}


def _with_parents(module: str) -> set[str]:
    """Importing a.b.c runs a/__init__.py and a/b/__init__.py too."""
    parts = module.split(".")
    return {".".join(parts[:i]) for i in range(1, len(parts) + 1)}


def _imported(nodes) -> set[str]:
    """The segbench modules the import statements among ``nodes`` name (registry entries included)."""
    found: set[str] = set()
    for node in nodes:
        if isinstance(node, ast.Import):
            names = [(a.name, None) for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names = [(node.module, a.name) for a in node.names]
        else:
            continue
        for name, attribute in names:
            if not name.startswith("segbench"):
                continue
            found |= _with_parents(name)
            if attribute and module_file(f"{name}.{attribute}").exists():
                found.add(f"{name}.{attribute}")
            if (name, attribute) in REGISTRIES:
                found |= _package_modules(REGISTRIES[name, attribute])
    return found


@cache
def imports(module: str) -> frozenset[str]:
    """The segbench modules ``module`` imports anywhere in it."""
    return frozenset(_imported(ast.walk(ast.parse(module_file(module).read_text()))) - {module})


def stage_imports(stage: str) -> set[str]:
    """What ``segbench <stage>`` imports in cli.py: its module-level imports, and those inside
    ``cmd_<stage>`` and the cli functions it calls."""
    tree = ast.parse(module_file("segbench.cli").read_text())
    functions = {n.name: n for n in tree.body if isinstance(n, ast.FunctionDef)}
    found, todo, seen = _imported(tree.body), [f"cmd_{stage}"], set()
    while todo:
        name = todo.pop()
        if name in seen or name not in functions:
            continue
        seen.add(name)
        body = list(ast.walk(functions[name]))
        found |= _imported(body)
        todo += [n.func.id for n in body if isinstance(n, ast.Call) and isinstance(n.func, ast.Name)]
    return found


def closure(module: str) -> set[str]:
    """``module`` and everything it imports, transitively."""
    seen, todo = set(), [*_with_parents(module)]
    while todo:
        current = todo.pop()
        if current not in seen and module_file(current).exists():
            seen.add(current)
            todo.extend(imports(current))
    return seen


def code_dependencies(stage: str) -> list[str]:
    """The source files (relative to the project root, ``src/segbench/...``) whose edit must rerun ``stage``."""
    if stage not in STAGES:
        raise ValueError(f"unknown stage {stage!r}; stages: {STAGES}")
    modules = {"segbench.cli"}
    for dependency in stage_imports(stage):
        modules |= closure(dependency)
    return sorted(str(module_file(m).relative_to(SRC.parent)) for m in modules)


def compact(files: list[str]) -> list[str]:
    """``files`` with every package folder whose .py files are all listed written as the folder (dvc.yaml style)."""
    root, listed = SRC.parent, set(files)
    out = set(listed)
    for folder in sorted({str(Path(f).parent) for f in listed}, key=len):
        every = {str(p.relative_to(root)) for p in (root / folder).rglob("*.py")}
        if folder != "src/segbench" and every <= listed:
            out = {f for f in out if not f.startswith(folder + "/")} | {folder}
    return sorted(f for f in out if not any(f != g and f.startswith(g + "/") for g in out))


if __name__ == "__main__":  # python -m segbench.dag: each stage's code deps, as dvc.yaml lists them
    for name in STAGES:
        print(f"{name}:\n" + "\n".join(f"      - {f}" for f in compact(code_dependencies(name))))
