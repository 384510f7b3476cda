"""The `reference` stage: the generalisation gap at equal training size (the datasets of ``sweep.references``).

A group hold-out's models train on the other groups, usually on more images than the held-out group could give
a model of its own, so "a model trained in the domain against the sweep's" mixes the domain shift with the
training size. This stage trains the pair twice more, with the same recipe and seed: ``in``, inside the
held-out groups, and ``out``, on a subsample of the other groups' images of the same sizes (split.csv's columns
``paths.REFERENCES``). Both score the held-out images ``in`` never saw, one model each, without post-processing,
scored as the evaluation scores (``evaluate.score``): their paired difference is the shift alone. The report sets
it beside the raw gap, ``in`` against the sweep's own models on the same images.
"""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

from segbench import SegbenchError, devices, paths
from segbench.data.processed import Processed
from segbench.evaluation.evaluate import Protocol, Scored, score
from segbench.evaluation.summary import degenerate
from segbench.io import write_csv, write_json
from segbench.predict.predictor import Predictor
from segbench.training.trainer import train_pair

log = logging.getLogger(__name__)


def sizes(data: Processed) -> dict[str, dict[str, int]]:
    """Train and val images of each reference training, and of the sweep's own models (the split's subsets)."""
    counted = {side: data.meta[column].value_counts() for side, column in paths.REFERENCES.items()}
    counted["sweep"] = data.meta["subset"].value_counts()
    return {side: {part: int(counts.get(part, 0)) for part in ("train", "val")} for side, counts in counted.items()}


def reference_replicate(arch: str, loss: str, seed: int, params: dict, out_dir: Path, processed_dir: Path,
                        split_csv: Path, device: str | None = None) -> dict:
    """Train the pair's two reference models of ``seed`` into ``out_dir/<side>`` and score both on the reference's
    test images: ``scores.csv`` (sample_id, lesion, model, dice) and ``reference.json`` (the sizes; why a reference
    did not learn, as ``summary.degenerate`` says of a pair), written last. ``params``: one dataset's. Returns
    reference.json.

    Raises:
        SegbenchError: the split has no reference columns (no split.holdout when it ran).
    """
    data = Processed.load(processed_dir, split_csv)
    if not set(paths.REFERENCES.values()) <= set(data.meta):
        raise SegbenchError(f"{split_csv}: no reference columns; rerun `segbench split` with split.holdout set")
    trained = {side: train_pair(arch, loss, params, processed_dir, split_csv, out_dir / side, seed, column,
                                device=device) for side, column in paths.REFERENCES.items()}
    tested = np.flatnonzero(data.meta[paths.REFERENCES["in"]].to_numpy() == "test")
    protocol, tables, failed = Protocol.of(params, data.class_names), [], {}
    with tempfile.TemporaryDirectory(dir=out_dir, prefix=".forward-") as folder:
        with devices.device(device or params["train"]["device"]) as dev:
            for side, record in trained.items():
                if record["failed"] or record["diverged"]:  # stopped early: no model worth scoring
                    failed[side] = degenerate(pd.DataFrame({"lesion": [], "foreground_fraction": []}), [record])
                    continue
                scored = Scored(f"reference {side}", data, tested,
                                Predictor.from_folds([out_dir / side], source=str(out_dir / side), map_location=dev))
                scored.forward(params["train"]["batch_size"], Path(folder))
                scored.predictor = None
                table = score(scored, {"name": "none"}, protocol, [])
                if reasons := degenerate(table, [record]):  # as the report marks a pair that did not learn
                    failed[side] = reasons
                tables.append(table[["sample_id", "lesion", "dice"]].assign(model=side))
    write_csv(out_dir / paths.REFERENCE_SCORES,
              pd.concat(tables) if tables else pd.DataFrame(columns=["sample_id", "lesion", "dice", "model"]))
    summary = {"reference": params["split"]["holdout"]["reference"], "sizes": sizes(data), "tested": len(tested),
               "failed": failed}
    write_json(out_dir / paths.REFERENCE_SUMMARY, summary)
    for side, reasons in failed.items():
        log.error("%s__%s seed %d: the reference %s did not learn (%s); the report leaves the pair out of the gap at "
                  "equal training size", arch, loss, seed, side, "; ".join(reasons))
    return summary
