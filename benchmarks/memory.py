"""Peak resident memory of a real `segbench train` job at BTXRD scale, for two dataset sizes.

Builds preprocessed data as BTXRD gives it (512 px canvases, original X-rays about 2,000 x 1,600 px
whose masks are kept for validation at the original resolution), then runs `segbench train` for one
epoch of 25 steps (batch 4, CPU) in a fresh process and reads its peak RSS: the per-channel statistics
and class frequencies read every train image, and validation predicts every val image. Run at two
sizes, the figure shows whether memory grows with the number of images: it must not.

    python benchmarks/memory.py [--train 1344 336] [--arch attention_unet]
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import _common as bench
import numpy as np
import pandas as pd
import yaml

REPO = Path(__file__).resolve().parents[1]
ORIGINAL = 2000 / 512, 1600 / 512  # the original X-ray's height and width, in canvas sizes (BTXRD's)


def build(root: Path, n_train: int, n_val: int, size: int) -> None:
    """data/processed/synthetic/ and data/splits/synthetic.csv for n_train + n_val (+ 8 test) images of ``size``."""
    SIZE, ORIG_H, ORIG_W = size, round(ORIGINAL[0] * size), round(ORIGINAL[1] * size)  # noqa: N806
    out = root / "data/processed/synthetic"
    out.mkdir(parents=True)
    n = n_train + n_val + 8
    rng = np.random.default_rng(0)
    images = np.lib.format.open_memmap(out / "images.npy", "w+", np.uint8, (n, SIZE, SIZE))
    masks = np.lib.format.open_memmap(out / "masks.npy", "w+", np.uint8, (n, SIZE, SIZE))
    scale = SIZE / ORIG_H
    width = round(ORIG_W * scale)
    pad_left = (SIZE - width) // 2
    yy, xx = np.ogrid[:SIZE, :SIZE]
    oy, ox = np.ogrid[:ORIG_H, :ORIG_W]
    from segbench.io import MaskZip, png_bytes, write_json

    with MaskZip.writer(out / "masks_original.zip") as add_original:
        for i in range(n):
            cy = rng.integers(SIZE // 5, 4 * SIZE // 5)
            cx = rng.integers(pad_left + SIZE // 8, pad_left + width - SIZE // 8)
            r = rng.integers(max(2, SIZE // 50), max(3, SIZE // 10))
            images[i] = rng.integers(0, 80, (SIZE, SIZE), np.uint8)
            images[i, :, :pad_left] = images[i, :, pad_left + width:] = 0
            masks[i] = (yy - cy) ** 2 + (xx - cx) ** 2 < r * r
            images[i][masks[i] > 0] += 120
            add_original(f"IMG{i:06d}", png_bytes(((oy - cy / scale) ** 2 + (ox - (cx - pad_left) / scale) ** 2
                                                    < (r / scale) ** 2).astype(np.uint8)))
    images.flush(), masks.flush()
    ids = [f"IMG{i:06d}" for i in range(n)]
    pd.DataFrame({"sample_id": ids, "tumor_type": "osteochondroma", "orig_h": ORIG_H, "orig_w": ORIG_W,
                  "scale": scale, "pad_top": 0, "pad_left": pad_left, "lesion_area_px": 1,
                  "lesion_ratio": 1e-3}).to_csv(out / "meta.csv", index=False)
    write_json(out / "info.json", {"class_names": ["background", "tumour"], "channels": 1, "strata": ["tumor_type"],
                                   "stratify": "tumor_type", "groups": [], "skipped": [], "source_checksum": None})
    (root / "data/splits").mkdir(parents=True)
    subsets = ["train"] * n_train + ["val"] * n_val + ["test"] * 8
    pd.DataFrame({"sample_id": ids, "subset": subsets}).to_csv(root / "data/splits/synthetic.csv", index=False)


def peak_rss_of_train(root: Path, arch: str, size: int, steps: int) -> tuple[float, float]:
    """(peak RSS in MB, seconds) of `segbench train` for one epoch of ``steps`` in ``root``."""
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    params["preprocess"]["size"] = size
    params["train"].update(epochs=1, batch_size=4, threads=2, steps_per_epoch=steps)
    params["architectures"]["bench"] = {"family": arch, "base_channels": 8}
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    start = time.time()
    with open(root / "train.log", "w") as log:
        job = subprocess.Popen([sys.executable, "-m", "segbench.apps.cli", "train", "--arch", "bench", "--loss", "dice",
                                "--threads", "2"], cwd=root, stdout=log, stderr=log,
                               env={**os.environ, "MLFLOW_TRACKING_URI": f"sqlite:///{root}/mlflow.db"})
        _, status, usage = os.wait4(job.pid, 0)  # this child's own resource usage
    if status:
        raise SystemExit((root / "train.log").read_text()[-3000:])
    return usage.ru_maxrss / 1024, time.time() - start


MODEL_ONLY = """
import os, resource, sys, torch
import segbench.training.trainer  # the train job's imports: torch, smp, albumentations, ...
from segbench.models import create_model
torch.set_num_threads(2)
model = create_model(sys.argv[1], 1, 1, base_channels=8)
model(torch.randn(4, 1, {size}, {size})).mean().backward()
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
"""


def model_only_peak(arch: str, size: int) -> float:
    """Peak RSS of the same imports and one training step of the model, with no dataset at all."""
    done = subprocess.run([sys.executable, "-c", MODEL_ONLY.format(size=size), arch], capture_output=True,
                          text=True, check=True)
    return float(done.stdout.split()[-1])


def main() -> None:
    parser = bench.parser(__doc__, train=[16], size=64, steps=2)
    parser.add_argument("--train", type=int, nargs="+", default=[1344, 336], help="train images per run")
    parser.add_argument("--arch", default="attention_unet", help="a registry entry (built with 8 base channels)")
    parser.add_argument("--size", type=int, default=512, help="canvas size (BTXRD's: 512)")
    parser.add_argument("--steps", type=int, default=25, help="training steps; memory does not grow with them, the "
                                                              "statistics and validation read every image")
    args = bench.parse(parser)
    height, width = round(ORIGINAL[0] * args.size), round(ORIGINAL[1] * args.size)
    print(bench.heading(f"segbench train, {args.arch} (8 base channels), {args.size} px, batch 4, 1 epoch of "
                        f"{args.steps} steps, CPU; train-set statistics over every image; val on every val image at "
                        f"the original resolution ({width}x{height})"))
    for n_train in args.train:
        with tempfile.TemporaryDirectory() as tmp:
            build(Path(tmp), n_train, n_train // 4, args.size)
            peak, seconds = peak_rss_of_train(Path(tmp), args.arch, args.size, args.steps)
        data_mb = (n_train + n_train // 4) * args.size * args.size / 2**20
        print(f"{n_train:5d} train + {n_train // 4:4d} val images ({data_mb:6.0f} MB of images): "
              f"peak RSS {peak:6.0f} MB   ({seconds:.0f} s)")
    print(f"no dataset, the same imports and one training step of the model: peak RSS "
          f"{model_only_peak(args.arch, args.size):6.0f} MB")


if __name__ == "__main__":
    main()
