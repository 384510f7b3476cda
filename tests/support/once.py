"""Session fixtures built once per test run, however many xdist workers share it."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path

from filelock import FileLock


def built_once(tmp_path_factory, name: str, build: Callable[[Path], object]) -> Path:
    """The folder ``name`` that ``build(folder)`` fills, built by the first worker that asks; the others wait
    for it and use the same folder (read-only use: copy it to change it). A failed build is not marked built,
    so the next worker that asks tries again and reports its own failure."""
    own = tmp_path_factory.getbasetemp()
    shared = own.parent if os.environ.get("PYTEST_XDIST_WORKER") else own  # the workers' common folder
    folder = shared / name
    with FileLock(shared / f"{name}.lock"):
        if not (shared / f"{name}.built").exists():
            shutil.rmtree(folder, ignore_errors=True)
            folder.mkdir()
            build(folder)
            (shared / f"{name}.built").touch()
    return folder
