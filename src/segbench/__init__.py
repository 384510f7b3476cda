"""segbench: a reproducible architecture x loss benchmark for 2D segmentation."""

import difflib
import os

__version__ = "0.2.0"  # the package's version (pyproject reads it); the CHANGELOG heads with it


class SegbenchError(Exception):
    """A user-facing error: bad params, bad input file, missing stage output."""


def did_you_mean(name, choices) -> str:
    """"; did you mean 'x'?" for the closest of ``choices``, or ""."""
    hint = difflib.get_close_matches(str(name), [str(c) for c in choices], n=1)
    return f"; did you mean {hint[0]!r}?" if hint else ""


def look_up(name: str, table: dict, what: str):
    """``table[name]``, or a SegbenchError naming the ``what`` and listing the known names (MONAI-style)."""
    if name not in table:
        raise SegbenchError(f"unknown {what} {name!r}; available: {sorted(table)}{did_you_mean(name, table)}")
    return table[name]


def usable_cores() -> int:
    """The CPU cores this process may run on (its affinity where the OS has one)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def visible_gpus() -> int:
    """The GPUs a job started here would see: nvidia-smi's, within CUDA_VISIBLE_DEVICES; 0 without a driver. Read
    without torch (the Snakefile asks, and importing torch takes seconds)."""
    import shutil
    import subprocess

    if not shutil.which("nvidia-smi"):
        return 0
    try:
        listed = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired):
        return 0
    present = sum(line.startswith("GPU ") for line in listed.stdout.splitlines()) if listed.returncode == 0 else 0
    allowed = os.environ.get("CUDA_VISIBLE_DEVICES")
    if allowed is None:
        return present
    return min(present, len([d for d in allowed.split(",") if d.strip() and d.strip() != "-1"]))
