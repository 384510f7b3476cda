"""How long the test tiers take: `make test-fast` and `make test`, with the host's speed beside them.

    python benchmarks/test_suite.py [--tiers test-fast test]

Each tier runs once through make, in this checkout; the wall time, the CPU time of everything it started and
pytest's summary line are printed, under a line naming the time and the commit. The same suite's time moves with
the host: on shared machines a process that imports torch, smp and timm (as every train, evaluate and latency job
does first) has taken from 4 s to over 15 s on different hours of one day. So the cold import is timed before
and after each tier, median of 3, and printed beside it. Target (2 CPU cores): `make test-fast` under 3 min,
`make test` at most 15 min.
"""

from __future__ import annotations

import argparse
import re
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

from segbench import usable_cores

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


def minutes(seconds: float) -> str:
    whole, rest = divmod(round(seconds), 60)
    return f"{whole} min {rest:02d} s"


def run_tier(target: str) -> tuple[float, float, str]:
    """(wall s, CPU s, pytest's summary) of `make <target>`; raises if it fails."""
    start, cpu = time.perf_counter(), children_cpu()
    done = subprocess.run(["make", "--no-print-directory", target], cwd=REPO, capture_output=True, text=True)
    wall, cpu = time.perf_counter() - start, children_cpu() - cpu
    found = SUMMARY.findall(done.stdout)
    if done.returncode or not found:
        sys.exit(f"make {target} failed (exit {done.returncode}):\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
    return wall, cpu, found[-1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tiers", nargs="+", default=["test-fast", "test"], choices=["test-fast", "test"])
    args = parser.parse_args()
    commit = subprocess.run(["git", "describe", "--always", "--dirty"], cwd=REPO, capture_output=True, text=True)
    print(f"{time.strftime('%Y-%m-%d %H:%M', time.gmtime())} UTC, code {commit.stdout.strip() or 'unknown'}, "
          f"{usable_cores()} CPU cores; cold `import segmentation_models_pytorch`: median of 3 before | after "
          "each tier")
    for target in args.tiers:
        before = cold_import_seconds()
        wall, cpu, summary = run_tier(target)
        after = cold_import_seconds()
        print(f"  make {target:9} {minutes(wall):>12} wall  {cpu:6.0f} s CPU   import {before:4.1f} | "
              f"{after:4.1f} s   {summary}")


if __name__ == "__main__":
    main()
