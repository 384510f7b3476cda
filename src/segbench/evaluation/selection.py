"""The ``select`` stage: a rung's decision (``sweep.budget``; the schedule: ``segbench.budget``), which entrants
go on and which are pruned, from their runs' val scores (test images are never read).

Successive halving keeps the best ``ceil(n / eta)`` of each race by mean val Dice. A race (``strategy: race``)
drops only the entrants that the report's own test (``evaluation.statistics.versus_best``) finds worse than the
leader on the val images.
"""

from __future__ import annotations

import logging
import math

import pandas as pd

from segbench import SegbenchError, paths
from segbench.budget import entrant, races, rungs
from segbench.evaluation.statistics import versus_best
from segbench.io import read_json, write_json
from segbench.paths import run_name
from segbench.records import mean_val_dice, read_runs

log = logging.getLogger(__name__)


def select(params: dict, where: paths.Sweep, rung: int, tracker=None) -> dict:
    """Rung ``rung``'s decision from its runs' train.json: in each race, the entrants that go on and those pruned,
    with each one's mean val Dice; written to ``paths.SELECTION``, and mirrored to each run's MLflow run
    (``tracker``).

    Raises:
        SegbenchError: a run of an entrant has no train.json (its rung job did not finish).
    """
    sweep = params["sweep"]
    alive = set(read_json(where.selection(rung - 1))["promoted"]) if rung else None
    scores, records, promoted, pruned, tested, leaders = {}, {}, [], [], {}, {}
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
        if sweep["budget"]["strategy"] == "race":
            out, p_holm, leaders[order[0]] = race_out({e: records[e] for e in order}, sweep["budget"]["alpha"])
            tested |= p_holm
        else:
            out = order[math.ceil(len(order) / sweep["budget"]["eta"]):]
        promoted += [e for e in order if e not in out]
        pruned += [e for e in order if e in out]
        scores |= {e: round(entrants[e], 6) for e in order}
    decision = {"rung": rung, "epochs": rungs(params)[rung], "strategy": sweep["budget"]["strategy"],
                "eta": sweep["budget"]["eta"], "score": "mean over seeds and folds of the best val Dice so far",
                "val_dice": scores, "promoted": promoted, "pruned": pruned}
    if sweep["budget"]["strategy"] == "race":
        decision |= {"test": RACE_TEST.format(alpha=sweep["budget"]["alpha"]), "leaders": list(leaders.values()),
                     "p_holm": tested}
    write_json(where.selection(rung), decision)
    for name, runs in records.items():
        for record in runs:
            if tracker and record.get("mlflow_run_id"):
                tracker.log_rung(record["mlflow_run_id"], decision, name, record["best_val_dice"])
    log.info("rung %d (%d epochs): %s go on; pruned: %s", rung, decision["epochs"], decision["promoted"],
             decision["pruned"] or "none")
    return decision


RACE_TEST = ("dropped: worse than the leader at Holm-adjusted p < {alpha:g} (the report's Wilcoxon signed-rank "
             "test over every pair of entrants, paired by val image, each image's Dice at the run's best epoch "
             "averaged over seeds)")


def race_out(records: dict[str, list[dict]], alpha: float) -> tuple[list[str], dict[str, float | None], str]:
    """The entrants of one race that the report's test (``statistics.versus_best``) finds worse than the leader on
    the val images, each entrant's Holm-adjusted p against the leader, and the leader. ``records``: each entrant's
    train.json per seed and fold; an image's score is its Dice at the run's best epoch, averaged over seeds (images
    are paired across entrants: every run of a fold validates on the same images). An entrant with a run that
    validated no epoch (it diverged in its first) is out, its p None.

    Raises:
        SegbenchError: a run's train.json has no per-image val Dice (written by an older segbench).
    """
    unscored = [name for name, runs in records.items() if any(not r["best_epoch"] for r in runs)]
    scored = {name: runs for name, runs in records.items() if name not in unscored}
    if len(scored) < 2:
        return (unscored, dict.fromkeys(unscored), next(iter(scored))) if scored else ([], {}, next(iter(records)))
    columns = {}
    for name, runs in scored.items():
        if any(r.get("best_val_images") is None for r in runs):
            raise SegbenchError(f"{name}: its train.json has no per-image val Dice (best_val_images), which the race "
                                "tests; delete the sweep's rungs folder and rerun")
        per_run = pd.DataFrame([{"fold": r["fold"], "image": i, "dice": d}
                                for r in runs for i, d in r["best_val_images"].items()])
        columns[name] = per_run.groupby(["fold", "image"])["dice"].mean()
    scores = pd.DataFrame(columns)
    if scores.isna().any().any():
        raise SegbenchError(f"the race's entrants were validated on different images: {sorted(scored)}")
    table = versus_best(scores, alpha)
    leader = table.attrs["best"]
    p_holm = {name: float(f"{table.loc[name, 'p_holm']:.6g}") for name in scored if name != leader}
    out = [n for n, p in p_holm.items() if p < alpha and table.loc[n, "direction"] < 0]
    return unscored + out, p_holm | dict.fromkeys(unscored), leader
