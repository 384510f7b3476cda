"""The README's cross-dataset table: the demo sweep on three synthetic domains, through the real Snakemake.

    python benchmarks/domains.py [--quick] [--check]

Copies the workflow into a scratch folder, runs `snakemake --cores all --configfile workflow/params/domains.yaml`
there (as the README does), and prints the heading (time, commit, cores), the digest of the code the numbers
depend on (every job's code: training, evaluation, report), the wall time and the summary's table
(``cross_dataset.md``), the held-out dataset's gap at equal training size and every report's Generalisation section.
Recorded in ``benchmarks/results/domains.md``, which the README and the how-to embed.
``--check`` recomputes the digest and fails when the code changed since the recorded run: rerun this script.
``--quick``: the same on tiny datasets, one pair, one epoch.
"""

from __future__ import annotations

import re
import tempfile
from pathlib import Path

import _common as bench
import yaml

from segbench import pipeline
from segbench.config import load_params, validate_params
from segbench.provenance import code_digest
from segbench.report.tables import EQUAL_SIZE

REPO = bench.REPO
RECORDED = REPO / "benchmarks/results/domains.md"
CONFIG = REPO / "workflow/params/domains.yaml"
QUICK = {"synthetic": {"n_images": 40}, "train": {"epochs": 1}, "preprocess": {"size": 32},
         "sweep": {"architectures": ["attention_unet"], "losses": ["dice"]}}


def config(quick: bool) -> dict:
    """The README's overlay (domains.yaml), tiny with ``quick``."""
    params = yaml.safe_load(CONFIG.read_text())
    return bench.overlay(params, QUICK) if quick else params


def digest(params: dict) -> str:
    """The digest of the params and every job's code in the sweep: what the table's numbers depend on."""
    return code_digest([*pipeline.sweep_code(params), "params.yaml", str(CONFIG.relative_to(REPO))], REPO)


def main() -> None:
    parser = bench.parser(__doc__, quick_run=True)
    parser.add_argument("--check", action="store_true", help="fail if the code changed since the recorded run")
    parser.set_defaults(quick_run=False)
    args = bench.parse(parser)
    overlay_params = config(args.quick_run)
    with tempfile.TemporaryDirectory() as tmp:
        root = bench.scratch_project(Path(tmp))
        (root / "overlay.yaml").write_text(yaml.safe_dump(overlay_params))
        params = load_params(root / "params.yaml")
        merged = bench.overlay(params, overlay_params)
        merged = validate_params(merged, "params.yaml + domains.yaml")
        code = digest(merged)
        if args.check:
            bench.check_recording(RECORDED, code)
            return
        seconds = bench.run_tool(root, ["snakemake", "--cores", "all", "--configfile", "overlay.yaml"], "snakemake")
        sweep = merged["sweep"]
        table = (root / "results/_all" / sweep["name"] / sweep["datasets"][0] / "cross_dataset.md").read_text()
        shifts = {d: section(root / "results" / d / sweep["name"] / "report/comparison.md", "Generalisation")
                  for d in sweep["datasets"]}
    print(bench.heading(f"`snakemake --cores all --configfile workflow/params/domains.yaml`"
                        f"{' (--quick: tiny)' if args.quick_run else ''}: {bench.minutes(seconds)}; code digest "
                        f"{code}"))
    print("\n<!-- part: summary -->\n")
    print(table.split("\n", 2)[2].split("\n## ")[0].strip())  # the verdict, the caveats and the table
    print("\n<!-- part: equal_size -->\n")  # the held-out report's gap at equal training size
    print("\n\n".join(block.strip() for text in shifts.values() for block in re.split(r"\n(?=\*\w)", text)
                      if block.startswith(f"*{EQUAL_SIZE}")))
    print("\n<!-- part: generalisation -->")
    for dataset, text in shifts.items():
        print(f"\n**{dataset}**: its report's Generalisation section\n\n{text}" if text else "")


def section(page: Path, title: str) -> str:
    """The text under ``## title`` in a report's Markdown, up to the next ``## `` heading ("" when absent)."""
    text = page.read_text()
    start = text.find(f"\n## {title}\n")
    body = "" if start < 0 else text[start + len(title) + 5:].split("\n## ")[0].strip()
    return re.sub(r"^### (.*)$", r"*\1*:", body, flags=re.M)  # no headings of their own in the page embedding it


if __name__ == "__main__":
    main()
