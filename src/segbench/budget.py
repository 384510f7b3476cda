"""Successive halving's schedule and decisions (``sweep.budget``; Jamieson & Talwalkar, AISTATS 2016, the inner
loop of Hyperband, Li et al., JMLR 2018): the rungs' epochs, and after each rung the pairs that go on.

Rung r trains every pair still in the race to ``min_epochs * eta**r`` epochs (``rungs``); after it, the best
``ceil(n / eta)`` pairs by mean val Dice over their seeds and folds (the best epoch so far; test images are never
read) go on, the rest are pruned (``select``). The final rung is the ``train`` stage itself, to ``train.epochs``.
Under ``sweep.tune`` the race is within each pair, among its candidates (``races``): the same budget per pair, and
the final rung is the ``tune`` stage.
How a run trains through the rungs: ``segbench.training.halving``.
"""

from __future__ import annotations

import logging
import math

from segbench import paths
from segbench.io import read_json, write_json
from segbench.paths import run_name
from segbench.records import mean_val_dice, read_runs
from segbench.tuning import candidates

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


def entrant(arch: str, loss: str, candidate: int | None = None) -> str:
    """A name in a rung's decision: the pair, or under ``sweep.tune`` its candidate ("unet__dice/candidate1")."""
    pair = run_name(arch, loss)
    return pair if candidate is None else f"{pair}/{paths.CANDIDATE.format(candidate=candidate)}"


def races(params: dict) -> list[list[tuple[str, str, int | None]]]:
    """Who races against whom, as (arch, loss, candidate): every pair in one race; under ``sweep.tune``, each
    pair's candidates in a race of their own (the pairs themselves are all compared in full)."""
    sweep, count = params["sweep"], len(candidates(params))
    pairs = [(a, l) for a in sweep["architectures"] for l in sweep["losses"]]
    if not count:
        return [[(a, l, None) for a, l in pairs]]
    return [[(a, l, k) for k in range(count)] for a, l in pairs]


def select(params: dict, where: paths.Sweep, rung: int, tracker=None) -> dict:
    """Rung ``rung``'s decision from its runs' train.json: in each race, the entrants that go on and those pruned,
    with each one's mean val Dice; written to ``paths.SELECTION``, and mirrored to each run's MLflow run
    (``tracker``).

    Raises:
        SegbenchError: a run of an entrant has no train.json (its rung job did not finish).
    """
    sweep = params["sweep"]
    alive = set(read_json(where.selection(rung - 1))["promoted"]) if rung else None
    scores, records, promoted, pruned = {}, {}, [], []
    for race in races(params):
        entrants = {}
        for arch, loss, candidate in race:
            name = entrant(arch, loss, candidate)
            if alive is not None and name not in alive:
                continue
            runs = [where.rung(rung, arch, loss, s, f, candidate) for s in sweep["seeds"] for f in sweep["folds"]]
            records[name] = read_runs(runs, f"`segbench rung --rung {rung}` for {run_name(arch, loss)}")
            entrants[name] = mean_val_dice(records[name])
        order = sorted(entrants, key=lambda e: -entrants[e])  # stable: a tie keeps the sweep's order
        kept = math.ceil(len(order) / sweep["budget"]["eta"])
        promoted += order[:kept]
        pruned += order[kept:]
        scores |= {e: round(entrants[e], 6) for e in order}
    decision = {"rung": rung, "epochs": rungs(params)[rung], "eta": sweep["budget"]["eta"],
                "score": "mean over seeds and folds of the best val Dice so far",
                "val_dice": scores, "promoted": promoted, "pruned": pruned}
    write_json(where.selection(rung), decision)
    for name, runs in records.items():
        for record in runs:
            if tracker and record.get("mlflow_run_id"):
                tracker.log_rung(record["mlflow_run_id"], decision, name, record["best_val_dice"])
    log.info("rung %d (%d epochs): %s go on; pruned: %s", rung, decision["epochs"], decision["promoted"],
             decision["pruned"] or "none")
    return decision


def pruned_record(decision: dict, name: str) -> dict:
    """What train.json records of an entrant (``entrant``) ``decision`` pruned."""
    return {"rung": decision["rung"], "epochs": decision["epochs"], "val_dice": decision["val_dice"][name]}
