"""Every benchmark's quick mode, so that a change of the code a benchmark calls breaks a test, not a published
figure; and the verdict's calibration at that small scale."""

import re
import subprocess
import sys

import pytest

from support import REPO

SCRIPTS = sorted(p.name for p in (REPO / "benchmarks").glob("*.py") if not p.name.startswith("_"))


def quick(script: str) -> str:
    done = subprocess.run([sys.executable, str(REPO / "benchmarks" / script), "--quick"], cwd=REPO,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    return done.stdout


HEADING = r"\d{4}-\d\d-\d\d \d\d:\d\d UTC, code \S+, \d+ CPU cores; "


@pytest.mark.parametrize("script", [s for s in SCRIPTS if s not in ("verdict_calibration.py", "nnunet_cost.py")])
def test_every_benchmark_runs_quickly_and_says_when_and_on_which_code(script):
    out = quick(script)
    assert re.match(HEADING, out), out[:300]


def test_the_baseline_runs_beside_the_pairs_on_two_cores():
    """The demo with the nnU-Net baseline, as Snakemake schedules it: its preparation and training overlap the
    pairs' jobs (the log's start and end times), and its extra time is the difference of two whole runs."""
    out = quick("nnunet_cost.py")
    assert re.match(HEADING, out), out[:300]
    beside = dict(re.findall(r"\| `(baseline_\w+)` \| \d+ min \d\d s \| (\d+) \|", out))
    assert set(beside) == {"baseline_prepare", "baseline_train", "baseline_evaluate"}, out
    assert int(beside["baseline_prepare"]) + int(beside["baseline_train"]) > 0, out
    assert re.search(r"\*\*the baseline's extra time\*\* \| \*\*-?\d+ min \d\d s\*\*", out), out


def test_the_verdict_is_calibrated_under_the_null_and_has_power_under_a_shift():
    out = quick("verdict_calibration.py")
    cells = re.findall(r"pairs=(\d+) images=(\d+) fwer=([\d.]+) power=([\d.]+)", out)
    assert [(k, n) for k, n, _, _ in cells] == [("2", "20"), ("4", "20")]
    for _, _, fwer, power in cells:
        assert float(fwer) <= 0.05 + 3 * (0.05 * 0.95 / 200) ** 0.5  # 200 tables: alpha plus 3 standard errors
        assert float(power) > 0.05  # the 0.05 shift is found more often than a false difference
