"""How long the test tiers take: `make test-fast` and `make test`, with the host's speed beside them.

    python benchmarks/test_suite.py [--tiers test-fast test] [--quick]

Each tier runs once through make, in this checkout; the wall time, the CPU time of everything it started and
pytest's summary line are printed, under a line naming the time and the commit. The same suite's time moves with
the host: on shared machines a process that imports torch, smp and timm (as every train, evaluate and latency job
does first) has taken from 4 s to over 15 s on different hours of one day. So the cold import is timed before
and after each tier, median of 3, and printed beside it. Target (2 CPU cores): `make test-fast` under 3 min,
`make test` at most 15 min.
"""

from __future__ import annotations

import re
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

import _common as bench

REPO = Path(__file__).resolve().parents[1]
SUMMARY = re.compile(r"=+ (\d+ passed.*) in [\d.]+s")


def cold_import_seconds(repeats: int = 3) -> float:
    """Median wall time of a fresh Python importing segmentation_models_pytorch (torch, timm, torchvision)."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        subprocess.run([sys.executable, "-W", "ignore", "-c", "import segmentation_models_pytorch"], check=True)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


TIERS = {"test-fast": ["make", "--no-print-directory", "test-fast"], "test": ["make", "--no-print-directory", "test"],
         "quick": [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "tests/unit/test_project.py"]}


def run_tier(tier: str) -> tuple[float, float, str]:
    """(wall s, CPU s, pytest's summary) of a tier (``make <tier>``; ``quick``: one small test module); raises if it
    fails."""
    start, cpu = time.perf_counter(), children_cpu()
    done = subprocess.run(TIERS[tier], cwd=REPO, capture_output=True, text=True)
    wall, cpu = time.perf_counter() - start, children_cpu() - cpu
    found = SUMMARY.findall(done.stdout)
    if done.returncode or not found:
        sys.exit(f"{tier} failed (exit {done.returncode}):\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
    return wall, cpu, found[-1]


def main() -> None:
    parser = bench.parser(__doc__, tiers=["quick"], imports=1)
    parser.add_argument("--tiers", nargs="+", default=["test-fast", "test"], choices=list(TIERS))
    parser.add_argument("--imports", type=int, default=3, help="cold imports timed before and after each tier")
    args = bench.parse(parser)
    print(bench.heading(f"cold `import segmentation_models_pytorch`: median of {args.imports} before | after each "
                        "tier"))
    for tier in args.tiers:
        before = cold_import_seconds(args.imports)
        wall, cpu, summary = run_tier(tier)
        after = cold_import_seconds(args.imports)
        print(f"  {'make ' + tier if tier != 'quick' else tier:14} {bench.minutes(wall):>12} wall  {cpu:6.0f} s CPU   "
              f"import {before:4.1f} | {after:4.1f} s   {summary}")


if __name__ == "__main__":
    main()
