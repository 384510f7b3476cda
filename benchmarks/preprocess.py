"""Preprocessing throughput and peak memory on BTXRD-sized X-rays.

    python benchmarks/preprocess.py [--images 60] [--side 4000] [--size 512] [--workers 1 2]

Builds a synthetic BTXRD-format tree whose JPEGs are upscaled so the longest side is
``--side`` px (BTXRD's largest are over 4,000 px), then runs the preprocess stage once per
worker count, each in a fresh process. Reports images per second and the peak resident
memory of the stage's processes (the main one and the largest worker).
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import _common as bench
from PIL import Image

from segbench.data import synthetic
from segbench.data.download import EXTRACTED, extract


def build_tree(root: Path, images: int, side: int) -> Path:
    raw = root / "raw"
    raw.mkdir()
    synthetic.build_archive(raw / "demo.zip", n_images=images, normal_fraction=0.0, seed=0)
    extract([raw / "demo.zip"], ["sha256:benchmark"], raw / EXTRACTED)
    for path in sorted((raw / EXTRACTED / "BTXRD" / "images").iterdir()):
        image = Image.open(path)
        scale = side / max(image.size)  # LabelMe points are rescaled from the JSON's size
        image.resize((round(image.width * scale), round(image.height * scale)), Image.Resampling.BICUBIC) \
            .save(path, "JPEG", quality=90)
    return raw


def child(raw: Path, out: Path, size: int, workers: int) -> None:
    from segbench.data.preprocess import preprocess

    start = time.perf_counter()
    meta = preprocess(raw, out, size, {"name": "synthetic", "include_normal": False}, workers=workers)
    seconds = time.perf_counter() - start
    usage = [resource.getrusage(who).ru_maxrss for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)]
    peak = max(usage)  # KiB on Linux
    print(json.dumps({"images": len(meta), "seconds": seconds, "peak_mb": peak / 1024}))


def main() -> None:
    parser = bench.parser(__doc__, images=4, side=300, size=64, workers=[1])
    parser.add_argument("--images", type=int, default=60)
    parser.add_argument("--side", type=int, default=4000)
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--child", nargs=3, metavar=("RAW", "OUT", "WORKERS"), help=argparse.SUPPRESS)
    args = bench.parse(parser)
    if args.child:
        child(Path(args.child[0]), Path(args.child[1]), args.size, int(args.child[2]))
        return
    print(bench.heading(__doc__.splitlines()[0]))
    with tempfile.TemporaryDirectory() as tmp:
        raw = build_tree(Path(tmp), args.images, args.side)
        print(f"{args.images} JPEGs, longest side {args.side} px -> {args.size} px")
        for workers in args.workers:
            out = Path(tmp) / f"out{workers}"
            run = subprocess.run([sys.executable, __file__, "--size", str(args.size), "--child", str(raw), str(out),
                                  str(workers)], check=True, capture_output=True, text=True)
            result = json.loads(run.stdout.strip().splitlines()[-1])
            print(f"workers {workers}: {result['images'] / result['seconds']:6.1f} images/s "
                  f"({result['seconds']:.1f} s), peak memory {result['peak_mb']:.0f} MB per process")


if __name__ == "__main__":
    main()
