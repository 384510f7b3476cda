"""The verdict's calibration: how often it calls a pair significantly different when no pair is, and its power.

    python benchmarks/verdict_calibration.py [--tables 5000] [--quick]

Simulates tables of per-image Dice (one row per test image, one column per pair) and runs each through
``statistics.versus_best``, the function the report's verdict comes from, at alpha 0.05:

- null tables: every pair equal (each image's difficulty, uniform on 0.3-0.9, plus the pair's own noise,
  normal with SD 0.1, clipped to 0-1); ``fwer`` is the share of tables where any pair is called "significantly
  lower than the best" or "higher than the mean-best": a false claim, since no pair differs;
- shifted tables: the same, with one pair 0.05 Dice higher on every image; ``power`` is the share of the other
  pairs called "significantly lower than the best".

One line per cell, ``pairs=K images=N fwer=X power=Y``, with the Monte-Carlo standard error of the FWER. The
target: fwer at most 0.06 (alpha plus Monte-Carlo error) at 5,000 tables per cell. ``--quick``: two small cells,
200 tables each, in seconds (the test suite runs it).
"""

from __future__ import annotations

import math
from concurrent.futures import ProcessPoolExecutor

import _common as bench
import numpy as np
import pandas as pd

from segbench import usable_cores
from segbench.evaluation.statistics import versus_best

ALPHA, NOISE, SHIFT = 0.05, 0.1, 0.05
CELLS = [(k, n) for k in (2, 4, 6, 12) for n in (20, 50)]
QUICK = [(2, 20), (4, 20)]


def simulate(rng: np.random.Generator, pairs: int, images: int, shift: float) -> pd.DataFrame:
    """One table: pair 0 is ``shift`` higher than the others, which are equal."""
    base = rng.uniform(0.3, 0.9, images)
    return pd.DataFrame({f"pair{j}": np.clip(base + (shift if j == 0 else 0.0) + rng.normal(0, NOISE, images), 0, 1)
                         for j in range(pairs)})


def cell(pairs: int, images: int, tables: int, seed: int) -> tuple[float, float]:
    """(family-wise error on null tables, power on shifted tables) of one cell."""
    rng = np.random.default_rng([seed, pairs, images])
    false = found = 0
    for _ in range(tables):
        verdicts = versus_best(simulate(rng, pairs, images, 0.0), ALPHA)["verdict"]
        false += any(v.startswith(("significantly", "higher than")) for v in verdicts)
        verdicts = versus_best(simulate(rng, pairs, images, SHIFT), ALPHA)["verdict"].drop("pair0")
        found += sum(v.startswith("significantly lower") for v in verdicts)
    return false / tables, found / (tables * (pairs - 1))


def main() -> None:
    parser = bench.parser(__doc__, tables=200, cells=QUICK)
    parser.add_argument("--tables", type=int, default=5000, help="null (and as many shifted) tables per cell")
    parser.add_argument("--seed", type=int, default=0)
    parser.set_defaults(cells=CELLS)
    args = bench.parse(parser)
    print(bench.heading(f"{args.tables:,} null and {args.tables:,} shifted tables per cell (shift {SHIFT} Dice, noise "
                        f"SD {NOISE}), alpha {ALPHA}; verdict: two-sided Wilcoxon, Holm over every pair of pairs"))
    with ProcessPoolExecutor(usable_cores()) as pool:
        results = pool.map(cell, *zip(*args.cells), [args.tables] * len(args.cells), [args.seed] * len(args.cells))
        for (pairs, images), (fwer, power) in zip(args.cells, results):
            error = math.sqrt(fwer * (1 - fwer) / args.tables)
            print(f"pairs={pairs} images={images} fwer={fwer:.4f} power={power:.4f}   (fwer's standard error "
                  f"{error:.4f})")


if __name__ == "__main__":
    main()
