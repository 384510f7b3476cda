"""The code stays lint-clean and its imports sorted (ruff, configured in pyproject.toml)."""

import subprocess

from support import BIN, REPO


def test_ruff_finds_nothing():
    result = subprocess.run([str(BIN / "ruff"), "check", "--output-format", "concise", "."], cwd=REPO,
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
