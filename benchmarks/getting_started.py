"""What a new user waits for and stores: `make demo` on a fresh clone, its install apart from its sweep.

    python benchmarks/getting_started.py [--quick]

Clones the checkout's HEAD into a scratch folder and runs `make demo` there, as the README's first command, with
pip's cache off (every package downloaded, as on a fresh machine). Prints the heading, the install's and the
sweep's wall times (the install ends where `make demo` says it runs the sweep), the venv's size on disk with the
part that is the CUDA libraries torch's PyPI wheel brings (nvidia-*, triton), and how many lines `make demo`
printed. Recorded in ``benchmarks/results/getting_started.md``, which the README embeds.
``--quick``: the project's own venv instead of a new one (no install), and a tiny demo (one pair, one epoch).
"""

from __future__ import annotations

import os
import subprocess
import tempfile
import time
from pathlib import Path

import _common as bench
import yaml

REPO = Path(__file__).resolve().parents[1]
SWEEP_STARTS = "running the demo sweep"  # make demo's line after the install
QUICK = {"synthetic": {"n_images": 40}, "train": {"epochs": 1}, "preprocess": {"size": 32},
         "sweep": {"architectures": ["attention_unet"], "losses": ["dice"]}}
CUDA = ("nvidia", "triton")  # site-packages folders of the CUDA libraries torch's wheel depends on


def size(path: Path) -> int:
    """Bytes the files under ``path`` take on disk (``du``)."""
    du = subprocess.run(["du", "-sk", str(path)], capture_output=True, text=True, check=True)
    return int(du.stdout.split()[0]) * 1024


def gigabytes(n: int) -> str:
    return f"{n / 1e9:.1f} GB"


def tiny(clone: Path) -> None:
    """The clone's params.yaml made tiny, and the project's venv lent to it (its install stamp kept newer than
    the clone's pyproject.toml, so make does not reinstall into it)."""
    params = yaml.safe_load((clone / "params.yaml").read_text())
    for section, values in QUICK.items():
        params.setdefault(section, {}).update(values)
    (clone / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    (clone / ".venv").symlink_to(REPO / ".venv")
    os.utime(clone / "pyproject.toml", (0, 0))


def run_demo(clone: Path) -> tuple[list[tuple[float, str]], float]:
    """``make demo`` in ``clone``: its printed lines with the seconds at which each came, and the total."""
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "MLFLOW_TRACKING_URI")}
    env.update(PIP_NO_CACHE_DIR="1", DVC_NO_ANALYTICS="1")
    start, lines = time.monotonic(), []
    with subprocess.Popen(["make", "demo"], cwd=clone, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          text=True) as make:
        for line in make.stdout:
            lines.append((time.monotonic() - start, line.rstrip("\n")))
    total = time.monotonic() - start
    if make.returncode:
        raise SystemExit("make demo failed:\n" + "\n".join(text for _, text in lines[-40:]))
    return lines, total


def main(argv=None) -> None:
    args = bench.parse(bench.parser(__doc__), argv)
    with tempfile.TemporaryDirectory(prefix="segbench-start-") as scratch:
        clone = Path(scratch) / "segbench"
        subprocess.run(["git", "clone", "--quiet", str(REPO), str(clone)], check=True)
        if args.quick:
            tiny(clone)
        lines, total = run_demo(clone)
        install = next((t for t, text in lines if text.startswith(SWEEP_STARTS)), None)
        if install is None:
            raise SystemExit(f"make demo never printed {SWEEP_STARTS!r}")
        venv = (clone / ".venv").resolve()
        site = next(venv.glob("lib/python*/site-packages"))
        cuda = sum(size(site / name) for name in CUDA if (site / name).exists())
        stored = size(venv)
    what = "tiny demo, the project's venv (--quick)" if args.quick else "a fresh clone, pip's cache off"
    print(bench.heading(f"`make demo` on {what}"))
    print()
    print("| step | measured |\n| --- | --- |")
    print(f"| install (`make demo`'s first step: a venv and every package) | {bench.minutes(install)} |")
    print(f"| the demo sweep (`snakemake --cores all`, then `segbench results`) | {bench.minutes(total - install)} |")
    print(f"| the venv on disk | {gigabytes(stored)}, of which {gigabytes(cuda)} CUDA libraries (torch's PyPI "
          "wheel brings them, also on a machine without a GPU) |")
    print(f"| lines `make demo` printed | {len(lines)} (the full logs: `.venv/install.log`, `logs/demo.log`) |")


if __name__ == "__main__":
    main()
