"""How long `segbench` takes to answer, from a cold process: listing, and reporting a mistake.

Each command runs 5 times in a fresh process in a scratch project; the median wall time is printed.
Target: under 2 s for `list losses`, `list architectures` and any params or name error.

    python benchmarks/cli.py [--repeats 5]
"""

from __future__ import annotations

import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import _common as bench
import yaml

REPO = Path(__file__).resolve().parents[1]
SEGBENCH = str(Path(sys.executable).parent / "segbench")


def commands(root: Path) -> dict[str, list[str]]:
    bad_key = root / "bad_key.yaml"
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    bad_key.write_text(yaml.safe_dump({**params, "train": {**params["train"], "learning_rate": 0.1}}))
    bad_option = root / "bad_option.yaml"
    params["architectures"]["attention_unet"]["base_chanels"] = 8
    bad_option.write_text(yaml.safe_dump(params))
    return {
        "segbench list losses": ["list", "losses"],
        "segbench list architectures": ["list", "architectures"],
        "segbench train --arch nosuch ...": ["train", "--arch", "nosuch", "--loss", "dice"],
        "params key error (train.learning_rate)": ["--params", str(bad_key), "train", "--arch", "smp_unet",
                                                   "--loss", "dice"],
        "architecture option error (base_chanels)": ["--params", str(bad_option), "download"],
    }


def main() -> None:
    parser = bench.parser(__doc__, repeats=1)
    parser.add_argument("--repeats", type=int, default=5)
    args = bench.parse(parser)
    print(bench.heading(__doc__.splitlines()[0]))
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        shutil.copy(REPO / "params.yaml", root / "params.yaml")
        print(f"cold `segbench` processes, median of {args.repeats} (target < 2 s)")
        for name, argv in commands(root).items():
            times, code = [], None
            for _ in range(args.repeats):
                start = time.perf_counter()
                code = subprocess.run([SEGBENCH, *argv], cwd=root, capture_output=True).returncode
                times.append(time.perf_counter() - start)
            print(f"  {name:42} {statistics.median(times):5.2f} s   (exit {code})")
        assert not (root / "mlflow.db").exists() and not (root / "data").exists()  # nothing made on a mistake


if __name__ == "__main__":
    main()
