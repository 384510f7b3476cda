"""A sweep's results made up on disk, for report tests: any number of pairs, any per-image Dice, without
training them. The data, the fold folders and the latency files are copies of a real tiny sweep's."""

from __future__ import annotations

import copy
import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd

from segbench import paths
from segbench.config import dataset_params, validate_params
from support import DATASET, SWEEP, TINY

TEMPLATE = ("attention_unet", "dice")


def fabricate(swept: Path, root: Path, dice: pd.DataFrame, failed: dict[str, list[str]] | None = None,
              sweep: str = "made_up") -> tuple[dict, paths.Sweep]:
    """Write a sweep's results under ``root``: ``dice`` holds one column per pair ("<arch>__<loss>") and one row
    per test image (index: sample ids of the tiny dataset), every image with a lesion. Returns the dataset's
    params and where the sweep is, ready for ``build_report``."""
    failed = failed or {}
    shutil.copytree(swept / "data", root / "data", dirs_exist_ok=True)
    pairs = [tuple(c.split("__")) for c in dice.columns]
    architectures, losses = list(dict.fromkeys(a for a, _ in pairs)), list(dict.fromkeys(l for _, l in pairs))
    params = copy.deepcopy(TINY)
    params["sweep"].update(name=sweep, architectures=architectures, losses=losses)
    params["architectures"].update({a: {"family": "attention_unet", "base_channels": 4} for a in architectures
                                    if a not in params["architectures"]})
    params["losses"].update({l: [{"term": "dice"}] for l in losses if l not in params["losses"]})
    params["tracking"] = {"mlflow": False}
    view = dataset_params(validate_params(params), DATASET)
    where = paths.Sweep(DATASET, sweep)
    template = swept / SWEEP.seed(*TEMPLATE, 0)
    metrics = json.loads((template / paths.METRICS).read_text())
    meta = pd.read_csv(root / paths.processed_dir(DATASET) / paths.META).astype({"sample_id": str})
    row_of = {sid: i for i, sid in enumerate(meta["sample_id"])}
    for arch, loss in pairs:
        seed_dir = where.seed(arch, loss, 0)
        shutil.copytree(template / "folds", root / seed_dir / "folds", dirs_exist_ok=True)
        scores = dice[f"{arch}__{loss}"]
        table = pd.DataFrame({"sample_id": scores.index, "lesion": True, "dice": scores.to_numpy(float),
                              "iou": scores.to_numpy(float) / (2 - scores.to_numpy(float))})
        table.to_csv(root / seed_dir / paths.PER_IMAGE, index=False)
        (root / seed_dir / paths.METRICS).write_text(json.dumps(
            {**metrics, "dice": float(scores.mean()), "iou": float(table["iou"].mean()), "n_images": len(table),
             "n_lesion_images": len(table), "degenerate": failed.get(f"{arch}__{loss}", []),
             "run": f"{arch}__{loss}/seed0"}))
        np.savez(root / seed_dir / paths.TEST_PROBABILITIES,
                 **{sid: np.zeros(_crop(meta, row_of[sid]), np.uint8) for sid in scores.index})
        np.savez(root / seed_dir / paths.TEST_PREDICTIONS, **{sid: np.zeros(
            (int(meta["orig_h"][row_of[sid]]), int(meta["orig_w"][row_of[sid]])), np.uint8) for sid in scores.index})
    for arch in architectures:
        target = root / where.latency(arch)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(swept / SWEEP.latency(TEMPLATE[0]), target)
    return view, where


def _crop(meta: pd.DataFrame, index: int) -> tuple[int, int]:
    from segbench.data.images import Geometry

    geometry = Geometry.of(meta.iloc[index], TINY["preprocess"]["size"])
    return geometry.height, geometry.width
