"""The leakage audit's speed: perceptual hashes and the pairwise near-duplicate search on 10,000 images.

    python benchmarks/audit.py [--images 10000] [--size 512] [--planted 100]

Makes ``--images`` distinct ``--size`` px grey images (smooth random fields: no two alike), plus ``--planted``
near-duplicates (a copy at 80 % size, JPEG quality 70), hashes them as preprocessing does
(``audit.image_hashes``, one process) and searches every pair (``audit.near_duplicates``). Prints images/s
for each part and overall, and how many planted copies were found.
"""

from __future__ import annotations

import io
import time

import _common as bench
import numpy as np
from PIL import Image
from tqdm import tqdm

from segbench.data.audit import image_hashes, near_duplicates


def field(rng: np.random.Generator, size: int) -> Image.Image:
    """A smooth random grey image: 8 x 8 noise, bicubically enlarged."""
    return Image.fromarray(rng.integers(0, 256, (8, 8), np.uint8)).resize((size, size), Image.Resampling.BICUBIC)


def copy_of(image: Image.Image) -> Image.Image:
    small = image.resize((round(image.width * 0.8), round(image.height * 0.8)), Image.Resampling.BILINEAR)
    buffer = io.BytesIO()
    small.save(buffer, "JPEG", quality=70)
    return Image.open(buffer)


def main() -> None:
    parser = bench.parser(__doc__, images=60, size=64, planted=5)
    parser.add_argument("--images", type=int, default=10_000)
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--planted", type=int, default=100)
    args = bench.parse(parser)
    print(bench.heading(__doc__.splitlines()[0]))
    rng = np.random.default_rng(0)
    hashes, seconds = [], 0.0
    originals = {}
    for i in tqdm(range(args.images + args.planted), desc="hash"):
        if i < args.images:
            image = field(rng, args.size)
            if i < args.planted:
                originals[i] = image
        else:
            image = copy_of(originals[i - args.images])
        start = time.perf_counter()
        hashes.append(image_hashes(image))
        seconds += time.perf_counter() - start
    n = len(hashes)
    start = time.perf_counter()
    pairs = near_duplicates(np.stack(hashes))
    search = time.perf_counter() - start
    found = {(a, b) for a, b in pairs[["a", "b"]].itertuples(index=False)}
    planted = sum((i, args.images + i) in found for i in range(args.planted))
    print(f"{n:,} images of {args.size} px, 1 process")
    print(f"  hashing        {seconds:7.1f} s   {n / seconds:8.0f} images/s")
    print(f"  pair search    {search:7.1f} s   {n / search:8.0f} images/s   ({n * (n - 1) // 2:,} pairs)")
    print(f"  audit          {seconds + search:7.1f} s   {n / (seconds + search):8.0f} images/s")
    print(f"  planted copies found: {planted} / {args.planted}; other pairs flagged: {len(pairs) - planted}")


if __name__ == "__main__":
    main()
