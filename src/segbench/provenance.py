"""Which code made a result: the git commit of the checkout, and a digest of the source files a result depends on
(a job's code dependencies, ``segbench.pipeline``), so that a recorded figure can say when its code changed."""

from __future__ import annotations

import hashlib
import subprocess
from pathlib import Path


def git_commit(short: bool = False) -> str | None:
    """The checkout's commit (``git describe --always --dirty`` when ``short``: e.g. ``a1b2c3d-dirty``), or None
    outside a git checkout."""
    command = ["git", "describe", "--always", "--dirty"] if short else ["git", "rev-parse", "HEAD"]
    try:
        return subprocess.run(command, capture_output=True, text=True, check=True).stdout.strip() or None
    except (OSError, subprocess.CalledProcessError):
        return None


def code_digest(files: list[str | Path], root: Path) -> str:
    """A short SHA-256 of the files' paths (relative to ``root``) and contents: it changes when any of them does."""
    digest = hashlib.sha256()
    for path in sorted(Path(f) for f in files):
        digest.update(str(path.relative_to(root) if path.is_absolute() else path).encode())
        digest.update((path if path.is_absolute() else root / path).read_bytes())
    return digest.hexdigest()[:16]
