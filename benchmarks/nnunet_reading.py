"""Reading an nnU-Net raw dataset stays linear in its cases.

    python benchmarks/nnunet_reading.py [--cases 500 1000 2000] [--side 64]

Builds nnU-Net v2 raw 2D datasets (``imagesTr``/``labelsTr`` PNGs and ``dataset.json``) of each size and runs
the preprocess stage on each, one worker. Linear reading keeps the time per case flat as the cases grow.
"""

from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path

import _common as bench
import numpy as np
from PIL import Image

from segbench.data.download import EXTRACTED
from segbench.data.preprocess import preprocess


def build(root: Path, cases: int, side: int) -> Path:
    """An nnU-Net raw dataset of ``cases`` grey cases, each with a square lesion (label 1)."""
    dataset = root / EXTRACTED / "Dataset001_Bench"
    (dataset / "imagesTr").mkdir(parents=True)
    (dataset / "labelsTr").mkdir()
    rng = np.random.default_rng(0)
    for case in range(cases):
        image = rng.integers(0, 255, (side, side), np.uint8)
        mask = np.zeros((side, side), np.uint8)
        y, x = rng.integers(0, side // 2, 2)
        mask[y:y + side // 4, x:x + side // 4] = 1
        Image.fromarray(image).save(dataset / "imagesTr" / f"case{case:05d}_0000.png")
        Image.fromarray(mask).save(dataset / "labelsTr" / f"case{case:05d}.png")
    (dataset / "dataset.json").write_text(json.dumps({"channel_names": {"0": "X-ray"}, "file_ending": ".png",
                                                      "labels": {"background": 0, "lesion": 1},
                                                      "numTraining": cases}))
    return root


def main() -> None:
    parser = bench.parser(__doc__, cases=[10, 20], side=32)
    parser.add_argument("--cases", type=int, nargs="+", default=[500, 1000, 2000])
    parser.add_argument("--side", type=int, default=64)
    args = bench.parse(parser)
    print(bench.heading(__doc__.splitlines()[0]))
    print(f"nnU-Net raw 2D datasets of {args.side}x{args.side} PNG cases, preprocess stage, 1 worker")
    first = None
    for cases in args.cases:
        with tempfile.TemporaryDirectory() as tmp:
            raw = build(Path(tmp) / "raw", cases, args.side)
            start = time.perf_counter()
            preprocess(raw, Path(tmp) / "out", args.side, {"name": "nnunet", "include_normal": True}, workers=1)
            seconds = time.perf_counter() - start
        per_case = 1000 * seconds / cases
        first = first or per_case
        print(f"  {cases:5d} cases  {seconds:6.1f} s  {per_case:5.2f} ms per case  ({per_case / first:.2f}x the "
              "first size's)")


if __name__ == "__main__":
    main()
