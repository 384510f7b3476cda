"""Successive halving's schedule and decisions (``sweep.budget``; Jamieson & Talwalkar, AISTATS 2016, the inner
loop of Hyperband, Li et al., JMLR 2018): the rungs' epochs, and after each rung the pairs that go on.

Rung r trains every pair still in the race to ``min_epochs * eta**r`` epochs (``rungs``); after it, the best
``ceil(n / eta)`` pairs by mean val Dice over their seeds and folds (the best epoch so far; test images are never
read) go on, the rest are pruned (``select``). The final rung is the ``train`` stage itself, to ``train.epochs``.
How a run trains through the rungs: ``segbench.training.halving``.
"""

from __future__ import annotations

import logging
import math

from segbench import SegbenchError, paths
from segbench.io import read_json, write_json
from segbench.paths import run_name

log = logging.getLogger(__name__)


def rungs(params: dict) -> list[int]:
    """The epochs each rung trains to, before the final one (``train.epochs``); [] without ``sweep.budget``."""
    budget, epochs, out = params["sweep"]["budget"], params["train"]["epochs"], []
    if budget:
        reach = budget["min_epochs"]
        while reach < epochs:
            out.append(reach)
            reach *= budget["eta"]
    return out


def select(params: dict, where: paths.Sweep, rung: int, tracker=None) -> dict:
    """Rung ``rung``'s decision from its runs' train.json: the pairs that go on and those pruned, with each
    candidate's mean val Dice; written to ``paths.SELECTION``, and mirrored to each run's MLflow run (``tracker``).

    Raises:
        SegbenchError: a run of a candidate has no train.json (its rung job did not finish).
    """
    sweep = params["sweep"]
    pairs = [(a, l) for a in sweep["architectures"] for l in sweep["losses"]]
    alive = read_json(where.selection(rung - 1))["promoted"] if rung else [run_name(a, l) for a, l in pairs]
    scores, records = {}, {}
    for arch, loss in pairs:
        if run_name(arch, loss) not in alive:
            continue
        runs = [where.rung(rung, arch, loss, s, f) / paths.TRAINED for s in sweep["seeds"] for f in sweep["folds"]]
        missing = [str(r) for r in runs if not r.exists()]
        if missing:
            raise SegbenchError(f"{missing[0]}: missing; run `segbench rung --rung {rung}` for {run_name(arch, loss)}")
        records[run_name(arch, loss)] = [read_json(r) for r in runs]
        scores[run_name(arch, loss)] = sum(r["best_val_dice"] for r in records[run_name(arch, loss)]) / len(runs)
    order = sorted(scores, key=lambda p: -scores[p])  # stable: a tie keeps the sweep's order
    kept = math.ceil(len(order) / sweep["budget"]["eta"])
    decision = {"rung": rung, "epochs": rungs(params)[rung], "eta": sweep["budget"]["eta"],
                "score": "mean over seeds and folds of the best val Dice so far",
                "val_dice": {p: round(scores[p], 6) for p in order}, "promoted": order[:kept], "pruned": order[kept:]}
    write_json(where.selection(rung), decision)
    for pair, runs in records.items():
        for record in runs:
            if tracker and record.get("mlflow_run_id"):
                tracker.log_rung(record["mlflow_run_id"], decision, pair, record["best_val_dice"])
    log.info("rung %d (%d epochs): %s go on; pruned: %s", rung, decision["epochs"], decision["promoted"],
             decision["pruned"] or "none")
    return decision


def pruned_record(decision: dict, pair: str) -> dict:
    """What train.json records of a pair ``decision`` pruned."""
    return {"rung": decision["rung"], "epochs": decision["epochs"], "val_dice": decision["val_dice"][pair]}
