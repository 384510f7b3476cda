"""What a maintainer relies on beside the code: the changelog's version is the package's, the licence is stated,
the tests share helpers through one package."""

import ast
import importlib.metadata
import re

import pytest

from support import REPO

tomllib = pytest.importorskip("tomllib", reason="tomllib is in the standard library from Python 3.11")


def test_the_changelog_heads_with_the_packages_version_in_keep_a_changelog_form(capsys):
    """One version: segbench.__version__, which pyproject reads, the installed metadata and `segbench --version`
    report, and the CHANGELOG's newest release names."""
    import segbench
    from segbench.apps.cli import main

    project = tomllib.loads((REPO / "pyproject.toml").read_text())
    assert "version" in project["project"]["dynamic"] and "version" not in project["project"]
    assert project["tool"]["setuptools"]["dynamic"]["version"] == {"attr": "segbench.__version__"}
    assert importlib.metadata.version("segbench") == segbench.__version__  # as installed (reinstall after a bump)
    with pytest.raises(SystemExit) as done:
        main(["--version"])
    assert done.value.code == 0 and capsys.readouterr().out == f"segbench {segbench.__version__}\n"
    released = re.findall(r"^## \[(\d+\.\d+\.\d+)\] - (\d{4}-\d{2}-\d{2})$", (REPO / "CHANGELOG.md").read_text(),
                          re.MULTILINE)
    assert released and released[0][0] == segbench.__version__
    assert [v for v, _ in released] == sorted((v for v, _ in released), key=lambda v: tuple(map(int, v.split("."))),
                                              reverse=True)


def test_the_licence_is_stated_and_shipped():
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    assert project["license"] == "MIT" and (REPO / "LICENSE").read_text().startswith("MIT License")


def test_tests_share_helpers_only_through_the_support_package():
    """No test imports conftest or another test module (pytest's rootdir and xdist decide what those resolve to)."""
    for path in sorted((REPO / "tests").rglob("*.py")):
        tree = ast.parse(path.read_text())
        imported = [a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names]
        imported += [n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module]
        assert not [m for m in imported if m.split(".")[0] == "conftest" or m.startswith("test_")], path
