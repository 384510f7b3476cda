"""What every benchmark script shares: ``--quick`` (tiny sizes, seconds: the test suite runs it, so an API change
breaks a test, not a published figure) and the heading of a recorded run (its time, commit and machine)."""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

from segbench import usable_cores
from segbench.provenance import git_commit

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent  # the venv's tools: snakemake, segbench


def parser(doc: str, **quick) -> argparse.ArgumentParser:
    """The script's argument parser, with ``--quick`` setting the options in ``quick`` (parse with ``parse``)."""
    out = argparse.ArgumentParser(description=doc.splitlines()[0])
    out.add_argument("--quick", action="store_true", help=f"tiny sizes, in seconds: {quick or 'as given'}")
    out.set_defaults(_quick=quick)
    return out


def parse(parser: argparse.ArgumentParser, argv=None) -> argparse.Namespace:
    args = parser.parse_args(argv)
    if args.quick:
        for key, value in args._quick.items():
            setattr(args, key, value)
    return args


def heading(what: str) -> str:
    """The first line of a recorded run: when, on which code and how many cores, then ``what``."""
    return (f"{time.strftime('%Y-%m-%d %H:%M', time.gmtime())} UTC, code {git_commit(short=True) or 'unknown'}, "
            f"{usable_cores()} CPU cores; {what}")


def minutes(seconds: float) -> str:
    whole, rest = divmod(round(seconds), 60)
    return f"{whole} min {rest:02d} s"


def overlay(base: dict, extra: dict) -> dict:
    """``base`` updated by ``extra`` key by key, nested sections merged (Snakemake's --configfile)."""
    return {k: overlay(base.get(k) or {}, v) if isinstance(v, dict) else v for k, v in {**base, **extra}.items()}


def check_recording(recorded: Path, code: str) -> None:
    """``--check``: exits unless ``recorded`` (benchmarks/results/<name>.md) was recorded on the code digest
    ``code``, naming the command that records it again."""
    found = re.search(r"code digest (\w+)", recorded.read_text()) if recorded.exists() else None
    name = recorded.relative_to(REPO)
    if not found or found[1] != code:
        sys.exit(f"{name}: recorded for code digest {found[1] if found else 'none'}, the code is now {code}: rerun "
                 f"`python benchmarks/{recorded.stem}.py > {name}`")
    print(f"{name} is current (code digest {code})")


def scratch_project(root: Path) -> Path:
    """A copy of the workflow, its params and the code in ``root``, as a checkout has them (no data, no results)."""
    for name in ("Snakefile", "dvc.yaml", "params.yaml"):
        shutil.copy(REPO / name, root / name)
    for name in ("workflow", "src"):
        shutil.copytree(REPO / name, root / name, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    return root


def run_tool(root: Path, command: list[str], what: str) -> float:
    """Run the venv's ``command`` in the scratch project ``root`` on its own copy of the code; its wall seconds.
    Exits with the tool's output's tail when it fails."""
    env = {**os.environ, "PYTHONPATH": str(root / "src"), "DVC_NO_ANALYTICS": "1",
           "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}"}
    env.pop("MLFLOW_TRACKING_URI", None)
    start = time.perf_counter()
    done = subprocess.run([str(BIN / command[0]), *command[1:]], cwd=root, capture_output=True, text=True, env=env)
    if done.returncode:
        sys.exit(f"{what} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
    return time.perf_counter() - start
