"""HD95, ASSD and NSD on BTXRD-sized masks: segbench's one pass against MONAI's three calls.

Masks as BTXRD's largest X-rays give them at the original resolution: 4,000 x 3,000 pixels, with a
small lesion (about 0.05 % of the image) and a large one (about 8 %); the prediction is the truth
shifted and grown, as a real one is. Both sides run in one process, interleaved, and must agree to
1e-6 (relative). Prints each side's images per second and the ratio.

    python benchmarks/evaluate.py [--repeats 5]
"""

from __future__ import annotations

import statistics
import time
import warnings

import _common as bench
import numpy as np
import torch
from monai.metrics import compute_average_surface_distance, compute_hausdorff_distance, compute_surface_dice
from scipy import ndimage

from segbench.metrics.boundary import boundary_scores

H, W = 3000, 4000


def lesion(radius: float, centre: tuple[int, int], seed: int) -> np.ndarray:
    """An irregular blob: a disc whose radius wobbles with the angle."""
    yy, xx = np.ogrid[:H, :W]
    angle = np.arctan2(yy - centre[0], xx - centre[1])
    wobble = 1 + 0.15 * np.sin(3 * angle + seed) + 0.08 * np.cos(7 * angle)
    return (yy - centre[0]) ** 2 + (xx - centre[1]) ** 2 < (radius * wobble) ** 2


def cases() -> dict[str, tuple[np.ndarray, np.ndarray]]:
    small, large = lesion(28, (2100, 1300), 0), lesion(480, (1400, 2200), 1)
    return {"small lesion": (ndimage.binary_dilation(np.roll(small, (3, -2), (0, 1)), iterations=2), small),
            "large lesion": (ndimage.binary_dilation(np.roll(large, (25, 18), (0, 1)), iterations=6), large)}


def monai(pred: np.ndarray, truth: np.ndarray, tolerance: float) -> dict[str, float]:
    p, t = (torch.from_numpy(np.stack([~m, m]).astype(np.float32))[None] for m in (pred, truth))
    return {"hd95": compute_hausdorff_distance(p, t, percentile=95).item(),
            "assd": compute_average_surface_distance(p, t, symmetric=True).item(),
            "nsd": compute_surface_dice(p, t, [tolerance]).item()}


def main() -> None:
    parser = bench.parser(__doc__, repeats=1)
    parser.add_argument("--repeats", type=int, default=5)
    args = bench.parse(parser)
    print(bench.heading(__doc__.splitlines()[0]))
    warnings.filterwarnings("ignore")
    torch.set_num_threads(1)
    print(f"masks {W}x{H}, boundary metrics (HD95, ASSD, NSD@2 px), median of {args.repeats} interleaved runs")
    ratios = []
    for name, (pred, truth) in cases().items():
        times = {"segbench": [], "MONAI": []}
        for _ in range(args.repeats):
            for side, fn in (("segbench", lambda p=pred, t=truth: boundary_scores(p, t, 2.0)),
                             ("MONAI", lambda p=pred, t=truth: monai(p, t, 2.0))):
                start = time.perf_counter()
                values = fn()
                times[side].append(time.perf_counter() - start)
                if side == "segbench":
                    ours = values
            for key, value in values.items():
                assert abs(ours[key] - value) <= 1e-6 * max(1.0, abs(value)), (name, key, ours[key], value)
        ours_s, monai_s = statistics.median(times["segbench"]), statistics.median(times["MONAI"])
        ratios.append(monai_s / ours_s)
        print(f"{name:13}: segbench {1 / ours_s:7.2f} images/s   MONAI {1 / monai_s:6.2f} images/s   "
              f"ratio {monai_s / ours_s:5.1f}x   (HD95 {ours['hd95']:.2f} px, ASSD {ours['assd']:.2f} px, "
              f"NSD {ours['nsd']:.4f}; equal to 1e-6)")
    print(f"throughput ratio: {min(ratios):.1f}x to {max(ratios):.1f}x (target >= 3x)")


if __name__ == "__main__":
    main()
