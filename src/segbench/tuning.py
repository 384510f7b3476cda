"""Equal tuning (``sweep.tune``): every pair tries the same candidate configurations, and keeps the one with the
best mean val Dice over its seeds and folds.

The choice is nested inside the sweep's split: candidates are compared on the val images only, so the test images
never inform it ("nnU-Net Revisited", Isensee et al., MICCAI 2024, on baselines run at someone else's settings).
The pair then competes with its chosen candidate's models, on the same test images, through the same statistics.
Each candidate is one training per (seed, fold) in ``paths.TUNE`` (``segbench.training.halving``); the decision is
``paths.TUNING``, kept in git. Under ``sweep.budget``, successive halving races each pair's candidates
(``segbench.budget``): the choice is among those it trained in full.
"""

from __future__ import annotations

import copy
import logging
from itertools import product

from segbench import SegbenchError, paths
from segbench.io import write_json
from segbench.records import mean_val_dice, read_runs

log = logging.getLogger(__name__)


def candidates(params: dict) -> list[dict]:
    """The grid of ``sweep.tune``: one {"train.<option>": value} per candidate, in the order the values are listed
    (the first key varies slowest); [] without tuning."""
    grid = params["sweep"].get("tune") or {}
    keys = sorted(grid)
    return [dict(zip(keys, values)) for values in product(*(grid[k] for k in keys))] if keys else []


def with_candidate(params: dict, candidate: int) -> dict:
    """A copy of ``params`` with candidate ``candidate``'s train options.

    Raises:
        SegbenchError: no such candidate.
    """
    grid = candidates(params)
    if not 0 <= candidate < len(grid):
        raise SegbenchError(f"--candidate {candidate}: sweep.tune has candidates 0 to {len(grid) - 1}"
                            if grid else f"--candidate {candidate}: sweep.tune is empty: no candidates")
    out = copy.deepcopy(params)
    for key, value in grid[candidate].items():
        out["train"][key.removeprefix("train.")] = value
    return out


def describe(settings: dict) -> str:
    """A candidate's settings in words: "lr 0.0003, batch_size 4"."""
    return ", ".join(f"{k.removeprefix('train.')} {v:g}" if isinstance(v, float) else f"{k.removeprefix('train.')} {v}"
                     for k, v in settings.items())


def choose(params: dict, where: paths.Sweep, arch: str, loss: str) -> dict:
    """The pair's decision from its candidates' train.json: each candidate's mean val Dice over seeds and folds (and
    the epochs and seconds its runs took; under ``sweep.budget``, the rung that pruned it), and the best of those
    trained in full (the first listed on a tie); written to ``paths.TUNING``.

    Raises:
        SegbenchError: a candidate's run has no train.json (its tune job did not finish).
    """
    sweep, rows = params["sweep"], []
    for index, settings in enumerate(candidates(params)):
        runs = [where.tune(arch, loss, index, s, f) for s in sweep["seeds"] for f in sweep["folds"]]
        records = read_runs(runs, f"`segbench tune --candidate {index}` for {paths.run_name(arch, loss)}")
        rows.append({"candidate": index, "settings": settings, "val_dice": round(mean_val_dice(records), 6),
                     "epochs": sum(r["epochs"] for r in records),
                     "train_seconds": round(sum(r["train_seconds"] for r in records), 1),
                     "pruned": records[0].get("pruned")})
    best = max((r for r in rows if not r["pruned"]), key=lambda r: r["val_dice"])  # max keeps the first of equals
    decision = {"pair": paths.run_name(arch, loss), "score": "mean over seeds and folds of the best val Dice",
                "candidates": rows, "chosen": best["candidate"], "settings": best["settings"]}
    write_json(where.tuning(arch, loss), decision)
    log.info("%s: candidate %d (%s), val Dice %.4f", decision["pair"], best["candidate"], describe(best["settings"]),
             best["val_dice"])
    return decision
